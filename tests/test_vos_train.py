"""Training OVS-Net: records, resume after a kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import torch

from workbench.jsonio import read_jsonl
from workbench.runs import RunDir
from workbench.vos.train import run_train

TINY = {"epochs": 3, "steps_per_epoch": 2, "batch_size": 2, "crop_size": [64, 112], "threads": 1,
        "device": "cpu", "seed": 3}


def _cli_args(root, run_dir) -> list[str]:
    args = [sys.executable, "-m", "workbench", "vos", "train", "--data-root", str(root),
            "--run-dir", str(run_dir), "--device", "cpu", "--seed", "3", "--threads", "1",
            "--epochs", "3", "--steps-per-epoch", "2", "--batch-size", "2", "--set", "crop_size=[64,112]"]
    return args


def test_resume_after_kill_matches_uninterrupted_run(tiny_davis, tmp_path):
    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cli_args(tiny_davis, killed), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONHASHSEED": "0"})
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if len(read_jsonl(killed / "metrics.jsonl")) >= 1:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before_kill = len(read_jsonl(killed / "metrics.jsonl"))
    assert 1 <= done_before_kill < 3, "the kill must land mid-run"
    assert RunDir(killed).record()["status"] == "running"

    rec = run_train({**TINY, "data_root": str(tiny_davis), "resume": True}, killed)
    ref = run_train({**TINY, "data_root": str(tiny_davis)}, tmp_path / "straight")
    assert ref["status"] == "finished"

    assert rec["status"] == "finished" and rec["kind"] == "vos_train"
    lines = read_jsonl(killed / "metrics.jsonl")
    assert [r["epoch"] for r in lines] == [0, 1, 2]
    assert {"loss", "det_loss", "mask_loss", "reid_loss", "phase"} <= set(lines[-1])
    ref_lines = read_jsonl(tmp_path / "straight" / "metrics.jsonl")
    for a, b in zip(lines, ref_lines):
        assert abs(a["loss"] - b["loss"]) < 1e-4
    a = RunDir(killed).load_checkpoint()["model"]
    b = RunDir(tmp_path / "straight").load_checkpoint()["model"]
    for k in b:
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-5), k
