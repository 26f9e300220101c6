"""TensorBoard scalars beside metrics.jsonl: `tensorboard --logdir runs` shows every run.

`RunDir.log_metrics` calls `write_scalars` for every record it appends, so each step that logs
metrics (search, retrain, OVS-Net training) also writes its numbers as TensorBoard event files in
its run directory, with no change to the step. The run directory stays the contract: metrics.jsonl
is the record, the event files are one more view of it. A tag is `<phase>/<key>` with the key of
metrics.jsonl (`search/val_miou`, `train/loss`, `val/miou`), the step is the record's epoch.
`WORKBENCH_TENSORBOARD=0` switches the event files off.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

log = logging.getLogger(__name__)

_LOCK = threading.Lock()
_WRITERS: dict[Path, object] = {}
SKIP = frozenset({"epoch", "step"})


def enabled() -> bool:
    return os.environ.get("WORKBENCH_TENSORBOARD", "1").lower() not in ("0", "false", "no", "off")


def scalars(record: dict) -> dict[str, float]:
    """{tag: value} of a metrics record's numbers (bools, strings, lists and None left out)."""
    phase = record.get("phase") if isinstance(record.get("phase"), str) else "metrics"
    return {f"{phase}/{k}": float(v) for k, v in record.items()
            if k not in SKIP and isinstance(v, (int, float)) and not isinstance(v, bool)}


def _writer(run_dir: Path):
    """One SummaryWriter per run directory and process; a new one when the directory or its event
    file was removed since (an overwritten run)."""
    from torch.utils.tensorboard import SummaryWriter

    key = run_dir.resolve()
    writer = _WRITERS.get(key)
    if writer is not None:
        name = getattr(writer.file_writer.event_writer, "_file_name", None)
        if name is None or not Path(name).exists():
            writer.close()
            writer = None
    if writer is None:
        writer = SummaryWriter(log_dir=str(run_dir), flush_secs=30)
        _WRITERS[key] = writer
    return writer


def write_scalars(run_dir: str | Path, record: dict) -> None:
    """Add the record's numbers to the run directory's event file and flush (a live TensorBoard
    sees each epoch as it lands). Never fails the step: a problem is logged once per call."""
    if not enabled():
        return
    values = scalars(record)
    if not values:
        return
    step = record.get("epoch") if isinstance(record.get("epoch"), int) else record.get("step")
    try:
        with _LOCK:
            writer = _writer(Path(run_dir))
            for tag, value in values.items():
                writer.add_scalar(tag, value, global_step=step if isinstance(step, int) else None)
            writer.flush()
    except Exception as exc:  # an event file is an extra view; the JSON record is already written
        log.warning("%s: TensorBoard scalars not written (%s: %s)", run_dir, exc.__class__.__name__, exc)


def close(run_dir: str | Path | None = None) -> None:
    """Close the writer of one run directory (all when None)."""
    with _LOCK:
        keys = list(_WRITERS) if run_dir is None else [Path(run_dir).resolve()]
        for key in keys:
            writer = _WRITERS.pop(key, None)
            if writer is not None:
                writer.close()
