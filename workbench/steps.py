"""The steps of the workbench: one function each, taking a config and a run directory.

The CLI, the notebooks and `workbench batch` all call these and nothing else, so no logic lives
only in a notebook. A config may be the step's dataclass or a plain dict (validated here).
Imports are lazy so that importing `workbench.steps` stays cheap in a notebook.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def synth_data(kind: str, out: str | Path, **options: Any) -> Path:
    """Generate a synthetic dataset ('cityscapes', 'camvid' or 'davis') in its real format."""
    from workbench.data.synth import generate

    return generate(kind, out, **options)


def search(config: Any, run_dir: str | Path) -> dict:
    """Architecture search (GAS / LGCNet / AutoRTNet presets); returns the run record."""
    from workbench.nas.search import run_search

    return run_search(config, run_dir)


def retrain(config: Any, run_dir: str | Path) -> dict:
    """Train a derived network (from genotype.json) or a baseline from scratch; evaluate mIoU."""
    from workbench.seg.retrain import run_retrain

    return run_retrain(config, run_dir)


def evaluate(config: Any, run_dir: str | Path) -> dict:
    """Evaluate a retrained run's checkpoint on a split (mIoU, per-class IoU)."""
    from workbench.seg.evaluate import run_evaluate

    return run_evaluate(config, run_dir)


def benchmark(config: Any, run_dir: str | Path | None = None) -> dict:
    """Latency, FPS, FLOPs, params, memory and LUT-predicted latency of a network."""
    from workbench.seg.benchmark import run_benchmark

    return run_benchmark(config, run_dir)


def train_vos(config: Any, run_dir: str | Path) -> dict:
    """Train the one-pass VOS network (OVS-Net) on a DAVIS-format split."""
    from workbench.vos.train import run_train

    return run_train(config, run_dir)


def segment_video(config: Any, run_dir: str | Path) -> dict:
    """Segment videos one-pass (and baselines), write DAVIS PNGs, score J&F and fps."""
    from workbench.vos.segment import run_segment

    return run_segment(config, run_dir)


def frontier(config: Any, run_dir: str | Path) -> dict:
    """Collect runs into an accuracy-latency frontier record (frontier.json)."""
    from workbench.frontier import run_frontier

    return run_frontier(config, run_dir)
