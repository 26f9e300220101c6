"""Run directories: the contract between the core (which writes) and the views (which read).

Layout (docs/run-directories.md):
    config.json        the validated configuration of the step
    run_record.json    status, metrics, artifact paths, timings
    metrics.jsonl      one JSON object per line (per epoch or per evaluation)
    alphas.jsonl       architecture weights per epoch, per cell (search runs)
    genotype.json      derived architecture (search runs)
    latency_lut.json   the latency lookup table used (search runs)
    checkpoints/       torch checkpoints, loadable with weights_only=True

Records are written with `workbench.jsonio` (atomic whole files, append-only JSON lines), so a
killed process never leaves a torn record.

A step owns its run directory through `RunDir.claim`: an exclusive lock (an OS file lock, which
the kernel drops when the holder dies, so a lock left by a killed run is taken over), and a
refusal to write into a directory that holds an earlier run unless the caller resumes it or
overwrites it.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import logging
import os
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from workbench import timelock
from workbench.errors import ConfigError, WorkbenchError
from workbench.jsonio import (
    FILE_MODE,
    append_jsonl,
    atomic_write_bytes,
    atomic_write_json,
    read_json_object,
    read_jsonl,
)

log = logging.getLogger(__name__)

RUN_SCHEMA = "workbench.run"
RUN_SCHEMA_VERSION = 1
LOCK_NAME = ".lock"


class RunDirError(WorkbenchError):
    """A run directory is in use by another process, or holds a run the caller did not ask to
    resume or overwrite."""


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class RunDir:
    """A run directory. Cheap to construct; creates the folder on first write."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.taken_over: dict | None = None  # the dead holder whose lock `lock()` took over

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

    def input_files(self) -> list[Path]:
        """The run's records and checkpoints: what later steps read, so never an output path."""
        return [self.config_path, self.record_path, self.metrics_path, self.alphas_path, self.genotype_path,
                self.lut_path, self.checkpoint_dir]

    @property
    def lock_path(self) -> Path:
        return self.path / LOCK_NAME

    def exists(self) -> bool:
        return self.record_path.exists()

    # -- ownership -------------------------------------------------------------------------------
    def own_entries(self) -> list[Path]:
        """What an earlier run left here: everything but the lock, executed notebooks (the
        notebook runner's) and nested run directories (sub-runs with their own lock)."""
        if not self.path.is_dir():
            return []
        return [e for e in sorted(self.path.iterdir())
                if e.name != LOCK_NAME and e.suffix != ".ipynb"
                and not (e.is_dir() and ((e / "run_record.json").exists() or (e / LOCK_NAME).exists()))]

    def require_empty(self) -> None:
        """RunDirError when an earlier run left files here (see own_entries)."""
        entries = self.own_entries()
        if entries:
            names = ", ".join(e.name + ("/" if e.is_dir() else "") for e in entries[:4])
            more = f" and {len(entries) - 4} more" if len(entries) > 4 else ""
            raise RunDirError(f"{self.path}: holds an earlier run ({names}{more}); resume it "
                              "(--resume, resume=True) or replace it (--overwrite, overwrite=True)")

    @contextlib.contextmanager
    def lock(self) -> Iterator[RunDir]:
        """Hold the directory's exclusive lock; RunDirError at once when another process holds it.

        An OS file lock (flock), so the kernel releases it when its holder dies: a lock file left
        by a killed run is taken over (with a warning naming the dead holder). Orphaned temp files
        of killed atomic writes are removed while the lock is held.
        """
        from workbench.outputs import check_output

        check_output(self.path, kind="dir")
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder_text(fd)
            os.close(fd)
            raise RunDirError(f"{self.path}: run directory is in use by {holder}; wait for it to finish or "
                              "choose another run directory") from None
        try:
            previous = _read_holder(fd)
            self.taken_over = previous or None
            if previous:
                log.warning("%s: taking over the lock of %s, which is no longer running (killed?)",
                            self.path, _holder_text(fd))
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                      "since": _now()}).encode(), 0)
            for tmp in [*self.path.glob(".*.tmp"), *self.checkpoint_dir.glob(".*.tmp")]:
                tmp.unlink(missing_ok=True)
            yield self
        finally:
            try:
                os.ftruncate(fd, 0)  # a clean release leaves no holder behind
            finally:
                os.close(fd)

    @contextlib.contextmanager
    def claim(self, *, resume: bool = False, overwrite: bool = False) -> Iterator[RunDir]:
        """Lock the directory for a step. It must hold no earlier run, unless `resume` (the step
        continues it) or `overwrite` (the earlier run's files are deleted first)."""
        with self.lock():
            entries = self.own_entries()
            if entries and not resume:
                if not overwrite:
                    self.require_empty()
                log.info("%s: overwriting the earlier run (%d entries)", self.path, len(entries))
                for entry in entries:
                    shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
            yield self

    # -- records -----------------------------------------------------------------------------
    def write_config(self, config: dict) -> None:
        atomic_write_json(self.config_path, config)

    def read_config(self) -> dict:
        return read_json_object(self.config_path) if self.config_path.exists() else {}

    def record(self) -> dict:
        return read_json_object(self.record_path) if self.record_path.exists() else {}

    def start(self, kind: str, name: str | None = None, **fields: Any) -> dict:
        """Mark the run as running (keeps metrics/artifacts of an earlier attempt on resume)."""
        rec = self.record()
        rec.setdefault("schema", RUN_SCHEMA)
        rec.setdefault("version", RUN_SCHEMA_VERSION)
        rec.setdefault("created", _now())
        rec.setdefault("metrics", {})
        rec.setdefault("artifacts", {})
        rec.update(kind=kind, name=name or self.path.name, status="running", error=None,
                   started=_now(), pid=os.getpid(), host=socket.gethostname(),
                   engine=os.environ.get("WORKBENCH_ENGINE", "serial"), timing_lock=timelock.active())
        rec.update(fields)
        if self.taken_over:
            rec["lock_taken_over"] = self.taken_over
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
        """Append one record to metrics.jsonl, and its numbers to the TensorBoard event file in
        the run directory (`workbench.scalars`)."""
        from workbench.scalars import write_scalars

        append_jsonl(self.metrics_path, record)
        write_scalars(self.path, record)

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
        path = self.checkpoint_dir / name
        if not path.exists():
            return None
        return load_state(path, map_location)


def _read_holder(fd: int) -> dict:
    try:
        data = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _holder_text(fd: int) -> str:
    h = _read_holder(fd)
    if not h:
        return "another process"
    return f"pid {h.get('pid', '?')} on {h.get('host', '?')} (since {h.get('since', '?')})"


def load_state(path: str | Path, map_location: str = "cpu", data: bytes | None = None) -> Any:
    """torch.load with weights_only=True, or one CheckpointError naming the file. A file holding
    pickled code is refused as such: never retry an untrusted file with weights_only=False.
    `data`: the file's bytes, already read (by a caller that also hashes them)."""
    import io
    import pickle

    import torch

    from workbench.errors import CheckpointError

    try:
        return torch.load(path if data is None else io.BytesIO(data), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only" in str(exc).lower():
            raise CheckpointError(f"{path}: refused: the file holds pickled Python objects, not only tensors; "
                                  "workbench loads checkpoints with weights_only=True, and an untrusted file "
                                  "must not be loaded any other way") from None
        raise CheckpointError(f"{path}: corrupt checkpoint (UnpicklingError)") from None
    except Exception as exc:  # truncated zip, not a torch file, ...
        first = str(exc).splitlines()[0][:120] if str(exc) else ""
        raise CheckpointError(f"{path}: cannot load checkpoint ({exc.__class__.__name__}: {first})") from None


def iter_runs(root: str | Path) -> Iterator[RunDir]:
    """Every run directory (one holding run_record.json) under root, sorted by path."""
    root = Path(root)
    for rec in sorted(root.rglob("run_record.json")):
        yield RunDir(rec.parent)


# -- the runs index ---------------------------------------------------------------------------
RUN_COLUMNS = ("run", "status", "kind", "preset", "latency_weight", "seed", "dataset", "miou", "search_miou",
               "latency_ms", "noisy", "expected_ms", "jf", "duration_s", "problem")
MEASURED = ("latency_ms", "fps", "gflops", "params_m", "expected_latency_ms")


def _alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, TypeError, ValueError):
        return False
    return True


def benchmark_of(run: RunDir) -> dict | None:
    """The newest finished benchmark record that measured this run: a run directory just below it
    of kind 'benchmark' whose config names it as `run` (the retrain notebook's `RUN/benchmark`,
    `workbench bench --run RUN --run-dir RUN/benchmark`)."""
    if not run.path.is_dir():
        return None
    here = run.path.resolve()
    best = None
    for child in sorted(run.path.iterdir()):
        if not (child / "run_record.json").is_file():
            continue
        sub = RunDir(child)
        try:
            rec, cfg = sub.record(), sub.read_config()
        except WorkbenchError:
            continue
        target = cfg.get("run")
        if rec.get("kind") != "benchmark" or rec.get("status") != "finished" or not isinstance(target, str):
            continue
        candidates = [Path(target)] if Path(target).is_absolute() else [child / target, Path(target), run.path.parent / target]
        if not any(c.exists() and c.resolve() == here for c in candidates):
            continue
        if best is None or str(rec.get("finished")) >= str(best.get("finished")):
            best = rec
    return best


def measured(run: RunDir, record: dict | None = None) -> dict:
    """Measured latency (and FPS, GFLOPs, params, the LUT's prediction, noisy, device) of a run:
    its own record's, else its benchmark sub-run's. {} when it was never benchmarked."""
    rec = record if record is not None else run.record()
    metrics = rec.get("metrics") if isinstance(rec.get("metrics"), dict) else {}
    if metrics.get("latency_ms") is not None:
        out = {k: metrics.get(k) for k in MEASURED if metrics.get(k) is not None}
        return out | {"latency_noisy": bool(rec.get("latency_noisy")), "device": rec.get("device"), "source": "record"}
    bench = benchmark_of(run)
    if bench is None:
        return {}
    bm = bench.get("metrics") or {}
    return ({k: bm.get(k) for k in MEASURED if bm.get(k) is not None}
            | {"latency_noisy": bool(bench.get("latency_noisy")), "device": bench.get("device"),
               "source": "benchmark", "size": bench.get("size")})


def dataset_name(value: Any) -> Any:
    """A dataset as the tables show it: its name, or the folder name of a dataset path."""
    if isinstance(value, str) and ("/" in value or os.sep in value):
        return Path(value.rstrip("/")).name or value
    return value


def list_runs(root: str | Path) -> list[dict]:
    """One row per run directory under root (a 'running' run whose process is gone is 'stale').
    A retrain row shows the latency its benchmark sub-run measured, beside the LUT's estimate."""
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"{root}: no such folder")
    rows = []
    for run in iter_runs(root):
        name = str(run.path.relative_to(root)) if run.path != root else run.path.name
        try:
            rec = run.record()
        except WorkbenchError as exc:  # one unreadable run; the others are still listed
            rows.append({"run": name, "status": "unreadable", "problem": str(exc)})
            continue
        metrics = rec.get("metrics") if isinstance(rec.get("metrics"), dict) else {}
        status = rec.get("status", "?")
        if status == "running" and not _alive(rec.get("pid")):
            status = "stale"
        meas = measured(run, rec) if rec.get("kind") in ("retrain", "baseline") else {}
        rows.append({"run": name, "status": status, "kind": rec.get("kind"), "preset": rec.get("preset") or rec.get("baseline"),
                     "latency_weight": rec.get("latency_weight"), "seed": rec.get("seed"),
                     "dataset": dataset_name(rec.get("dataset")),
                     "miou": None if rec.get("kind") == "search" else metrics.get("miou"),
                     "search_miou": metrics.get("miou") if rec.get("kind") == "search" else None,
                     "latency_ms": meas.get("latency_ms", metrics.get("latency_ms")),
                     "noisy": "yes" if rec.get("latency_noisy") or meas.get("latency_noisy") else None,
                     "expected_ms": meas.get("expected_latency_ms", metrics.get("expected_latency_ms")),
                     "jf": metrics.get("jf"), "duration_s": rec.get("duration_s"),
                     "problem": rec.get("error") if status == "failed" else None,
                     "path": str(run.path)})
    return sorted(rows, key=lambda r: tuple(r["run"].split("/")))


def format_table(rows: list[dict], columns: tuple[str, ...] = RUN_COLUMNS) -> str:
    if not rows:
        return "no runs found"

    from workbench.names import METRICS

    def cell(key: str, v: Any) -> str:
        if v is None:
            return "-"
        if key in METRICS and isinstance(v, float):
            return METRICS[key].format(v)
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    header = [METRICS[c].header if c in METRICS else c for c in columns]
    table = [header] + [[cell(c, r.get(c)) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(columns))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in table)
