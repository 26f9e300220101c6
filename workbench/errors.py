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


class OutputError(WorkbenchError):
    """An output path cannot be written, or would overwrite an input of the command."""

    def __init__(self, path: str | Path, problem: str):
        self.path, self.problem = Path(path), problem
        super().__init__(f"{path}: {problem}")


class DivergedError(WorkbenchError):
    """A loss or a parameter became NaN or infinite: the run stops as failed, and its last good
    checkpoint (from before the step that diverged) is kept."""


def check_finite(value: float, what: str) -> float:
    """`value` as is, or DivergedError naming `what` (e.g. 'train loss at epoch 3, step 17')."""
    if value != value or value in (float("inf"), float("-inf")):
        raise DivergedError(f"{what} is {value}: training diverged (lower the learning rate?); "
                            "the run is marked failed and its last checkpoint is kept")
    return value
