"""Two-process search under torchrun on the CPU (gloo): rank 0 owns the run directory, the alphas
move, a valid genotype comes out."""

from __future__ import annotations

import subprocess
import sys

import torch

from workbench.nas.genotypes import load_genotype
from workbench.runs import RunDir


def test_torchrun_search_two_processes(tmp_path, tiny_cityscapes):
    run_dir = tmp_path / "ddp"
    lut = tmp_path / "lut"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "workbench", "search", "--preset", "lgcnet", "--data-root", str(tiny_cityscapes),
           "--run-dir", str(run_dir), "--epochs", "3", "--device", "cpu", "--threads", "1", "--seed", "2",
           "--set", "input_size=64x128", "crop_size=64x128", "batch_size=4", "steps_per_epoch=2", "warmup_epochs=1",
           "channels=8", "stem_channels=8", "head_channels=8", "num_cells=3", "reductions=[0,1,2]",
           "max_val_images=2", "lut_warmup=0", "lut_repeats=1", "lut_rounds=1", "lut_calibrate=0",
           f"lut_cache_dir={lut}", "arch_lr=0.05"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("search finished") == 1  # rank 0 reports, rank 1 stays quiet
    run = RunDir(run_dir)
    rec = run.record()
    assert rec["status"] == "finished" and 0 <= rec["metrics"]["miou"] <= 1
    assert [m["epoch"] for m in run.metrics()] == [0, 1, 2]  # one process wrote each line once
    alphas = run.alphas()
    assert [a["epoch"] for a in alphas] == [-1, 0, 1, 2]
    first = torch.tensor(alphas[0]["cells"][0]["alpha"])
    last = torch.tensor(alphas[-1]["cells"][0]["alpha"])
    assert not torch.allclose(first, last)  # the architecture steps moved the alphas
    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=False)
    assert state["epoch"] == 2
    load_genotype(run_dir / "genotype.json")  # a valid derived genotype
