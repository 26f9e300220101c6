"""Distillation teachers: a strong baseline trained once on the same data, cached by its config.

As in FasterSeg, the student learns from the teacher's soft predictions as well as the labels.
The teacher is an ordinary baseline retrain (a run directory made by `run_retrain`) under
`teacher_cache_dir()/<key>`, where the key hashes everything its weights depend on: baseline
name, the data (root, its synth.json and the listing of the training split), the resolved recipe,
epochs, crop size, batch size and seed. A second student with the same teacher config finds it there
(a cache hit); a killed teacher training is resumed; one being trained by another process is
waited for.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from workbench.errors import ConfigError
from workbench.runs import RunDir, RunDirError

log = logging.getLogger(__name__)

# RetrainConfig fields a teacher copies from its student (what its weights depend on).
_COPIED = ("dataset", "data_root", "train_split", "val_split", "crop_size", "batch_size", "recipe", "eval_size")
# ... and those that only say how it runs (not part of the key).
_RUNTIME = ("device", "threads", "num_workers")
# ... and recipe fields added after teachers were first cached: left out of the key while off.
_ADDED_LATER = {"aux_weight": ("aux_weight", "aux_strides"), "ema_decay": ("ema_decay",)}


def teacher_cache_dir() -> Path:
    """WORKBENCH_TEACHER_CACHE, else ~/.cache/workbench/teachers."""
    return Path(os.environ.get("WORKBENCH_TEACHER_CACHE", Path.home() / ".cache" / "workbench" / "teachers"))


def data_fingerprint(dataset: str, root: str | Path, split: str) -> dict:
    """The data a teacher was trained on: resolved root, synth.json (when synthetic) and a hash of
    the training split's image/label pairs (relative paths and sizes)."""
    from workbench.data.segmentation import build_seg_dataset

    root = Path(root).resolve()
    synth = root / "synth.json"
    meta = json.loads(synth.read_text(encoding="utf-8")) if synth.is_file() else None
    h = hashlib.sha256()
    for pair in build_seg_dataset(dataset, root, split, train=False).pairs:
        for path in pair:
            h.update(f"{Path(path).relative_to(root)}:{Path(path).stat().st_size}\n".encode())
    return {"root": str(root), "synth": meta, "listing": h.hexdigest()[:16]}


def teacher_config(student: Any, values: dict) -> dict:
    """The RetrainConfig dict of the teacher of `student` (resolved recipe `values`): same data and
    recipe values; the teacher's epochs and seed; no distillation of its own."""
    cfg = {k: _plain(getattr(student, k)) for k in _COPIED + _RUNTIME}
    cfg["data_root"] = str(Path(student.data_root).resolve())
    cfg.update({k: _plain(v) for k, v in values.items() if k not in ("teacher", "teacher_epochs", "teacher_seed")})
    cfg.update(baseline=values["teacher"], genotype=None, distill_weight=0.0, seed=int(values["teacher_seed"]),
               epochs=int(values.get("teacher_epochs") or student.epochs), eval_every=0)
    return cfg


def teacher_key(cfg: dict) -> tuple[str, dict]:
    """(key, what it hashes): the teacher config without runtime fields, plus the data fingerprint."""
    # hashed under the 0.1 name "crop", so teachers cached before the rename are still found
    keyed = {("crop" if k == "crop_size" else k): v for k, v in cfg.items() if k not in _RUNTIME}
    for switch, fields in _ADDED_LATER.items():  # off: the key of a teacher cached before it existed
        if not keyed.get(switch):
            keyed = {k: v for k, v in keyed.items() if k not in fields}
    keyed["data"] = data_fingerprint(cfg["dataset"], cfg["data_root"], cfg["train_split"])
    blob = json.dumps(keyed, sort_keys=True, separators=(",", ":")).encode()
    return f"{cfg['baseline']}-{hashlib.sha256(blob).hexdigest()[:16]}", keyed


def ensure_teacher(cfg: dict, cache_dir: str | Path | None = None, poll_s: float = 5.0) -> dict:
    """Train the teacher of `cfg` unless the cache holds it; returns {"key", "run_dir", "cache":
    "hit"|"miss", "miou"}."""
    from workbench.seg.retrain import run_retrain

    key, keyed = teacher_key(cfg)
    run_dir = Path(cache_dir or teacher_cache_dir()) / key
    run = RunDir(run_dir)
    cache = "hit"
    while not _finished(run):
        cache = "miss"
        try:
            log.info("training distillation teacher %s (%d epochs) in %s", cfg["baseline"], cfg["epochs"], run_dir)
            run_retrain({**cfg, "resume": run.exists(), "name": f"teacher {key}"}, run_dir)
            (run_dir / "teacher_key.json").write_text(json.dumps(keyed, indent=1, sort_keys=True) + "\n")
        except RunDirError as exc:
            if "in use" not in str(exc):
                raise
            log.info("teacher %s is being trained by another process; waiting", key)
            time.sleep(poll_s)
    rec = run.record()
    return {"key": key, "run_dir": str(run_dir), "cache": cache, "baseline": cfg["baseline"],
            "epochs": cfg["epochs"], "miou": rec.get("metrics", {}).get("miou")}


def load_teacher(info: dict, num_classes: int, device: torch.device) -> nn.Module:
    """The cached teacher's network in eval mode, without gradients, on `device`."""
    from workbench.seg.model import build_model, check_fingerprint
    from workbench.seg.weight_ema import deployed_weights

    model, spec = build_model(baseline=info["baseline"], num_classes=num_classes)
    run = RunDir(info["run_dir"])
    state = run.load_checkpoint()
    if state is None:
        raise ConfigError(f"teacher: {run.checkpoint_dir / 'last.pt'} is missing; delete {run.path} to retrain it")
    check_fingerprint(state, spec, run.checkpoint_dir / "last.pt")
    model.load_state_dict(deployed_weights(state))
    model.to(device).eval().requires_grad_(False)
    return model


def is_cached(key: str, cache_dir: str | Path | None = None) -> bool:
    """Whether the teacher `key` finished training in the cache."""
    return _finished(RunDir(Path(cache_dir or teacher_cache_dir()) / key))


def _finished(run: RunDir) -> bool:
    return run.exists() and run.record().get("status") == "finished" and (run.checkpoint_dir / "last.pt").exists()


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
