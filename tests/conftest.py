"""Shared session-scoped fixtures: tiny synthetic datasets in the real on-disk formats.

Each dataset is generated once per test session with `workbench.data.synth.generate`, so every
area's tests read files through the same loaders a user's data goes through.
Tests must treat these trees as read-only (copy them first to corrupt files).
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path

import pytest
import torch

from workbench.data.synth import generate

# Latency tables measured by tests (tiny sizes, 1 repeat) must never land in the user's cache,
# nor be read from it; notebook kernels started by papermill inherit this variable.
os.environ["WORKBENCH_LUT_CACHE"] = tempfile.mkdtemp(prefix="workbench-test-lut-")

TINY_SEG = dict(count=8, val_count=4, size=(64, 128), seed=0)
TINY_DAVIS = dict(count=3, val_count=2, size=(64, 112), frames=8, seed=0)


@pytest.fixture(scope="session")
def tiny_cityscapes(tmp_path_factory) -> Path:
    """synth-cityscapes: train 8, val 4 images at 64x128."""
    return generate("cityscapes", tmp_path_factory.mktemp("data") / "synth-cityscapes", **TINY_SEG)


@pytest.fixture(scope="session")
def tiny_camvid(tmp_path_factory) -> Path:
    """synth-camvid (SegNet layout): train 8, val 4, test 4 images at 64x128."""
    return generate("camvid", tmp_path_factory.mktemp("data") / "synth-camvid", **TINY_SEG)


@pytest.fixture(scope="session")
def tiny_davis(tmp_path_factory) -> Path:
    """synth-davis: train 3 + val 2 sequences of 8 frames at 64x112."""
    return generate("davis", tmp_path_factory.mktemp("data") / "synth-davis", **TINY_DAVIS)


@pytest.fixture
def one_thread():
    """Tiny networks time and train fastest (and deterministically) on one thread."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def same_weight_gradients(model, x, *weights) -> bool:
    """Whether every set of architecture weights gives `model` the same weight gradients bit for bit
    (a parameter with no gradient counts as zeros: the exact forward never runs it)."""
    model.train()
    grads = []
    for w in weights:
        model.zero_grad(set_to_none=True)
        model(x, w).square().mean().backward()
        grads.append([torch.zeros_like(p) if p.grad is None else p.grad for p in model.weight_parameters()])
    return all(torch.equal(a, b) for first in grads[1:] for a, b in zip(grads[0], first))


def recomputed_one_shot_score(settings: dict, supernet_dir: Path, genotype: dict, halves_seed: int) -> float:
    """The one-shot mIoU of `genotype`, recomputed outside `score_candidates`: the checkpoint of the
    supernet at `supernet_dir`, the halves of `halves_seed` (the seed it trained with), batch norm
    re-estimated on `one_shot_calib` weight-half images drawn by the scoring run's own seed."""
    from torch.utils.data import DataLoader, Subset

    from workbench import runs
    from workbench.nas import search
    from workbench.nas.genotypes import load_genotype
    from workbench.nas.one_shot import one_shot_miou, recalibrate_bn
    from workbench.nas.search_data import build_datasets, split_halves

    cfg = search.resolve_config(settings)
    train, _, num_classes = build_datasets(cfg)
    w_data, a_data = split_halves(train, halves_seed)
    model = search.build_supernet(cfg, num_classes)
    model.load_state_dict(runs.RunDir(supernet_dir).load_checkpoint()["model"])
    picks = torch.randperm(len(w_data), generator=torch.Generator().manual_seed(cfg.seed))[: cfg.one_shot_calib]
    calib = [x for x, _ in DataLoader(Subset(w_data, picks.tolist()), batch_size=cfg.batch_size)]
    weights = model.exact_weights(load_genotype(genotype).body)
    recalibrate_bn(model, weights, calib)
    return one_shot_miou(model, weights, list(DataLoader(a_data, batch_size=cfg.batch_size)), num_classes)


def kill_search_after_first_checkpoint(preset: str, cfg: dict, run_dir: Path) -> Path:
    """Start `workbench search` for cfg in a subprocess and SIGKILL it once a checkpoint exists.

    Returns the checkpoint path. Shared by the search-engine and AutoRTNet resume tests.
    """
    import json
    import signal
    import subprocess
    import sys
    import time

    sets = [f"{k}={json.dumps(v) if isinstance(v, list) else v}" for k, v in cfg.items()
            if k not in ("preset", "dataset", "device", "threads")]
    cmd = [sys.executable, "-m", "workbench", "search", "--preset", preset, "--dataset", "random",
           "--run-dir", str(run_dir), "--device", "cpu", "--threads", "1", "--set", *sets]
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    ckpt = run_dir / "checkpoints" / "last.pt"
    deadline = time.time() + 120
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    return ckpt


def shared_table(cfg: dict, path: Path) -> str:
    """Build a search config's latency table once into `path`: runs that must agree to the bit (a
    reference and its killed-and-resumed twin) read the same table, even where a busy machine keeps
    the per-device cache from being written."""
    from workbench.nas.search import build_table

    build_table(cfg, path)
    return str(path)


def load_benchmark(name: str):
    """A script under benchmarks/ imported as a module (the folder is not a package)."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
