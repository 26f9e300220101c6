"""Resume after a real SIGKILL ends with exactly the weights and metrics of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import torch
from test_seg_helpers import retrain_config, write_genotype

from workbench.runs import RunDir
from workbench.seg.recipes import RECIPE_FIELDS
from workbench.seg.retrain import run_retrain

# Runs a retrain in a child process that blocks inside the 6th optimizer step (epoch 1 of 3, after
# the epoch-0 checkpoint was written) and says so, so the test can SIGKILL it mid-epoch.
CHILD = textwrap.dedent("""
    import json, sys, time
    from workbench.seg import retrain
    step = retrain._train_step
    calls = [0]
    def blocking_step(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 6:
            print("KILL-ME", flush=True)
            time.sleep(600)
        return step(*args, **kwargs)
    retrain._train_step = blocking_step
    retrain.run_retrain(json.loads(sys.argv[1]), sys.argv[2])
""")


def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path, tiny_cityscapes):
    genotype = write_genotype(tmp_path / "genotype.json")
    cfg = retrain_config(genotype, tiny_cityscapes, epochs=3, eval_every=1)
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(cfg), str(killed)],
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        for line in proc.stdout:
            if "KILL-ME" in line:
                break
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    run = RunDir(killed)
    assert run.record()["status"] == "running"
    assert torch.load(run.checkpoint_dir / "last.pt", weights_only=True)["epoch"] == 0

    # resumed as the retrain notebook (and so every batch sweep) calls it: each recipe field it did not
    # set passed as None ("the recipe's"), which the killed run resolved and stored as numbers
    unset = {key: None for key in RECIPE_FIELDS if key not in cfg}
    assert unset and RunDir(killed).read_config()["momentum"] is not None
    resumed = run_retrain({**cfg, **unset, "resume": True}, killed)
    straight = run_retrain(cfg, tmp_path / "straight")

    a = torch.load(killed / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "straight" / "checkpoints" / "last.pt", weights_only=True)
    assert a["step"] == b["step"] == 12 and a["epoch"] == b["epoch"] == 2
    for key, value in b["model"].items():
        assert torch.equal(a["model"][key], value), key
    assert resumed["metrics"]["miou"] == straight["metrics"]["miou"]
    strip = [{k: v for k, v in r.items() if k != "epoch_time_s"} for r in RunDir(tmp_path / "straight").metrics()]
    assert [{k: v for k, v in r.items() if k != "epoch_time_s"} for r in run.metrics()] == strip
    assert len(strip) == 6  # 3 train + 3 val records, none duplicated by the resume
