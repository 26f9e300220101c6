"""Files a killed process cannot tear: atomic whole-file writes and append-only JSON lines.

Every whole-file write goes to a temp file in the same directory, is fsynced and renamed over the
target, so a reader sees the previous file or the new one, never a truncated one; temp files a
kill leaves behind are named `.<name>.<random>.tmp` (run directories remove them when locked).
JSON-lines files are appended one fsynced line at a time and readers skip a torn last line.
Files get the usual umask permissions (group-readable on a shared filesystem) whichever way they
were written; mkstemp alone would give 0600.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from workbench.errors import DataError

_UMASK = os.umask(0o022)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK  # what open() gives a new file


def _to_jsonable(obj: Any) -> Any:
    """Convert numpy/torch scalars, tuples and paths so json.dumps never fails mid-write."""
    if isinstance(obj, dict):
        return {str(k): _to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):  # numpy arrays/scalars, torch tensors
        return _to_jsonable(obj.tolist())
    if isinstance(obj, float) and (obj != obj or obj in (float("inf"), float("-inf"))):
        return None
    return obj


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(_to_jsonable(obj), indent=2, sort_keys=False) + "\n")


def read_json(path: str | Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def read_json_object(path: str | Path) -> dict:
    """A JSON object (a record or a config), or DataError naming the file: a corrupt or
    list-valued record is one unreadable run, never a crash of whoever lists the runs."""
    try:
        data = read_json(path)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(path, f"unreadable ({exc.__class__.__name__}: {str(exc).splitlines()[0][:80]})") from None
    if not isinstance(data, dict):
        raise DataError(path, f"expected a JSON object, got {type(data).__name__}")
    return data


def append_jsonl(path: str | Path, record: dict) -> None:
    """Append one record as one line; a torn line from a kill is skipped by `read_jsonl`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(_to_jsonable(record)) + "\n"
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def read_jsonl(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # torn last line of a killed writer
            if isinstance(rec, dict):  # anything else is not a record of ours
                out.append(rec)
    return out


def truncate_jsonl(path: str | Path, keep: callable) -> None:
    """Rewrite a JSON-lines file keeping only records for which keep(record) is true.

    Used on resume so that epochs after the last checkpoint are not recorded twice.
    """
    path = Path(path)
    if path.exists():
        kept = [r for r in read_jsonl(path) if keep(r)]
        atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))
