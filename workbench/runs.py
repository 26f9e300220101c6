"""Run directories: the contract between the core (which writes) and the views (which read).

Layout (see README, "Run directories"):
    config.json        the validated configuration of the step
    run_record.json    status, metrics, artifact paths, timings
    metrics.jsonl      one JSON object per line (per epoch or per evaluation)
    alphas.jsonl       architecture weights per epoch, per cell (search runs)
    genotype.json      derived architecture (search runs)
    latency_lut.json   the latency lookup table used (search runs)
    checkpoints/       torch checkpoints, loadable with weights_only=True

Every whole-file write is atomic (temp file in the same directory + fsync + rename), so a killed
process leaves either the previous file or the new one, never a truncated one. JSON-lines files
are appended line by line; readers skip a torn last line.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

RUN_SCHEMA = "workbench.run"
RUN_SCHEMA_VERSION = 1


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


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
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # torn last line of a killed writer
    return out


def truncate_jsonl(path: str | Path, keep: callable) -> None:
    """Rewrite a JSON-lines file keeping only records for which keep(record) is true.

    Used on resume so that epochs after the last checkpoint are not recorded twice.
    """
    path = Path(path)
    if path.exists():
        kept = [r for r in read_jsonl(path) if keep(r)]
        atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))


class RunDir:
    """A run directory. Cheap to construct; creates the folder on first write."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    # -- paths -------------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def record_path(self) -> Path:
        return self.path / "run_record.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def alphas_path(self) -> Path:
        return self.path / "alphas.jsonl"

    @property
    def genotype_path(self) -> Path:
        return self.path / "genotype.json"

    @property
    def lut_path(self) -> Path:
        return self.path / "latency_lut.json"

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoints"

    def exists(self) -> bool:
        return self.record_path.exists()

    # -- records -----------------------------------------------------------------------------
    def write_config(self, config: dict) -> None:
        atomic_write_json(self.config_path, config)

    def read_config(self) -> dict:
        return read_json(self.config_path) if self.config_path.exists() else {}

    def record(self) -> dict:
        return read_json(self.record_path) if self.record_path.exists() else {}

    def start(self, kind: str, name: str | None = None, **fields: Any) -> dict:
        """Mark the run as running (keeps metrics/artifacts of an earlier attempt on resume)."""
        rec = self.record()
        rec.setdefault("schema", RUN_SCHEMA)
        rec.setdefault("version", RUN_SCHEMA_VERSION)
        rec.setdefault("created", _now())
        rec.setdefault("metrics", {})
        rec.setdefault("artifacts", {})
        rec.update(kind=kind, name=name or self.path.name, status="running", error=None,
                   started=_now(), pid=os.getpid())
        rec.update(fields)
        rec["_t0"] = time.time()
        atomic_write_json(self.record_path, rec)
        return rec

    def update(self, *, metrics: dict | None = None, artifacts: dict | None = None,
               **fields: Any) -> dict:
        rec = self.record()
        if metrics:
            rec.setdefault("metrics", {}).update(metrics)
        if artifacts:
            rec.setdefault("artifacts", {}).update(
                {k: str(v) for k, v in artifacts.items()})
        rec.update(fields)
        rec["updated"] = _now()
        atomic_write_json(self.record_path, rec)
        return rec

    def finish(self, status: str = "finished", error: str | None = None, **fields: Any) -> dict:
        rec = self.record()
        t0 = rec.pop("_t0", None)
        if t0 is not None:
            rec["duration_s"] = round(rec.get("duration_s", 0.0) + time.time() - t0, 3)
        rec.update(status=status, error=error, finished=_now())
        rec.update(fields)
        atomic_write_json(self.record_path, rec)
        return rec

    def log_metrics(self, record: dict) -> None:
        append_jsonl(self.metrics_path, record)

    def metrics(self) -> list[dict]:
        return read_jsonl(self.metrics_path)

    def log_alphas(self, record: dict) -> None:
        append_jsonl(self.alphas_path, record)

    def alphas(self) -> list[dict]:
        return read_jsonl(self.alphas_path)

    # -- checkpoints ---------------------------------------------------------------------------
    def save_checkpoint(self, state: dict, name: str = "last.pt") -> Path:
        """Atomic torch.save; load it back with `load_checkpoint` (weights_only=True)."""
        import io

        import torch

        buf = io.BytesIO()
        torch.save(state, buf)
        path = self.checkpoint_dir / name
        atomic_write_bytes(path, buf.getvalue())
        return path

    def load_checkpoint(self, name: str = "last.pt", map_location: str = "cpu") -> dict | None:
        import torch

        from workbench.errors import CheckpointError

        path = self.checkpoint_dir / name
        if not path.exists():
            return None
        try:
            return torch.load(path, map_location=map_location, weights_only=True)
        except Exception as exc:  # corrupt or not a plain-state checkpoint
            raise CheckpointError(f"{path}: cannot load checkpoint ({exc.__class__.__name__}: "
                                  f"{str(exc).splitlines()[0] if str(exc) else ''})") from None


def iter_runs(root: str | Path) -> Iterator[RunDir]:
    """Every run directory (one holding run_record.json) under root, sorted by path."""
    root = Path(root)
    for rec in sorted(root.rglob("run_record.json")):
        yield RunDir(rec.parent)
