"""Output paths, checked before any work starts.

Every command that writes something checks its output path first: it must be writable (the
nearest existing folder accepts files, nothing on the way is a file, a file path is not a
folder and vice versa) and it must not be, or lie inside, one of the command's inputs, so an
output can never overwrite the dataset, checkpoint or genotype it was computed from. A run
directory must not hold its inputs either (an overwrite would delete them), except inputs
inside a nested run directory, which keeps its own lock and is never deleted by its parent.
Problems are one `OutputError` line naming the path.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from workbench.errors import OutputError

Kind = Literal["file", "dir", "run"]


def _is_run_dir(path: Path) -> bool:
    from workbench.runs import LOCK_NAME

    return (path / "run_record.json").exists() or (path / LOCK_NAME).exists()


def _inside_nested_run(inp: Path, out: Path) -> bool:
    rel = inp.relative_to(out).parts
    return bool(rel) and (out / rel[0]).is_dir() and _is_run_dir(out / rel[0])


def check_output(path: str | Path, *, kind: Kind = "file",
                 inputs: Iterable[str | Path | None] = ()) -> Path:
    """Return `path` when it can be written as a `kind` without touching `inputs`; otherwise
    raise OutputError. `kind`: 'file', 'dir' (a folder of outputs) or 'run' (a run directory)."""
    shown = Path(path)
    out = shown.resolve()
    for inp in inputs:
        if inp is None or str(inp) == "":
            continue
        src = Path(inp).resolve()
        if out == src:
            raise OutputError(shown, f"is an input of this command ({inp}); choose another output")
        if src.is_dir() and out.is_relative_to(src):
            raise OutputError(shown, f"lies inside the input folder {inp}; choose another output")
        if kind == "run" and src.is_relative_to(out) and not _inside_nested_run(src, out):
            raise OutputError(shown, f"holds the input {inp}; a run directory must not contain its inputs")
    if kind == "file" and out.is_dir():
        raise OutputError(shown, "is a folder; expected a file path")
    if kind != "file" and out.exists() and not out.is_dir():
        raise OutputError(shown, "is a file; expected a folder")
    anchor = out.parent if kind == "file" else out
    while not anchor.exists():
        anchor = anchor.parent
    if not anchor.is_dir():
        raise OutputError(shown, f"cannot be created: {anchor} is a file")
    if not os.access(anchor, os.W_OK | os.X_OK):
        raise OutputError(shown, f"not writable ({anchor}: permission denied or read-only filesystem)")
    if kind == "file" and out.exists() and not os.access(out, os.W_OK):
        raise OutputError(shown, "not writable (permission denied or read-only filesystem)")
    return shown
