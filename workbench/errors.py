"""User-facing errors.

Anything a user can cause (a bad file, a bad parameter, a malformed genotype) raises a
`WorkbenchError` whose message is one line naming the file or parameter and the problem. The CLI
prints it without a traceback; notebooks show it as the cell's error.
"""

from __future__ import annotations

from pathlib import Path


class WorkbenchError(Exception):
    """Base class: the message is shown to the user as is."""


class DataError(WorkbenchError):
    """A dataset file or tree is missing, unreadable or inconsistent."""

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}" if path is not None else problem)


class ConfigError(WorkbenchError):
    """A parameter or configuration value is unknown, of the wrong type or out of range."""


class GenotypeError(WorkbenchError):
    """A genotype file is malformed, of an unknown version, or does not build."""


class CheckpointError(WorkbenchError):
    """A checkpoint is missing, corrupt or belongs to another model."""
