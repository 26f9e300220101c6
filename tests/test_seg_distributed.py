"""Two-process DistributedDataParallel retrain on the CPU (gloo) through torchrun."""

from __future__ import annotations

import subprocess
import sys

import torch
from test_seg_helpers import write_genotype

from workbench.runs import RunDir
from workbench.seg.evaluate import run_evaluate
from workbench.seg.model import build_model


def test_torchrun_two_processes_on_cpu(tmp_path, tiny_cityscapes):
    genotype = write_genotype(tmp_path / "genotype.json")
    run_dir = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "workbench", "retrain", "--genotype", str(genotype), "--dataset", "cityscapes",
           "--data-root", str(tiny_cityscapes), "--run-dir", str(run_dir), "--epochs", "2",
           "--crop-size", "64x128", "--batch-size", "2", "--device", "cpu", "--threads", "1", "--seed", "3"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = RunDir(run_dir).record()
    # global batch 2 over 2 processes: the same 8 // 2 = 4 steps per epoch as one process
    assert record["status"] == "finished" and record["world_size"] == 2
    assert record["steps"] == 2 * (8 // 2) and record["max_steps"] == record["steps"]
    assert 0.0 <= record["metrics"]["miou"] <= 1.0
    rows = RunDir(run_dir).metrics()
    assert [(r["epoch"], r["phase"]) for r in rows] == [(0, "train"), (1, "train"), (1, "val")]
    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == 8 and state["world_size"] == 2
    model, _ = build_model(genotype=genotype)
    model.load_state_dict(state["model"])  # no DDP 'module.' prefix
    # the sharded evaluation (2 images per process, summed confusion matrices) equals one process's
    single = run_evaluate({"run": str(run_dir), "device": "cpu"})
    assert single["miou"] == record["metrics"]["miou"]
