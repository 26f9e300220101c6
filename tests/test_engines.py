"""Sweeps on engines: serial, local processes and Ray give the same runs; a killed Ray worker's run
is retried and resumes from its checkpoint to the same genotype."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import shared_table

from workbench.lab.sweep import run_batch
from workbench.runs import RunDir

SPACE = dict(channels=8, stem_channels=8, head_channels=8, nodes=2, num_cells=3, reductions=[0, 2], fusion_channels=8,
             max_val_images=1, lut_warmup=0, lut_repeats=1, lut_rounds=1, lut_calibrate=0, threads=1)


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    cfg = {"preset": "lgcnet", "dataset": "random", "input_size": [32, 64], "crop_size": [32, 64], **SPACE}
    return shared_table(cfg, tmp_path_factory.mktemp("lut") / "lut.json")


def sweep(root: Path, table: str, epochs: int = 2, weights=(0.0, 0.5)) -> dict:
    return {"output_root": str(root), "name": "lw{latency_weight}", "grid": {"latency_weight": list(weights)},
            "frontier": False,
            "stages": [{"name": "search", "notebook": "search", "parameters": {
                "dataset": "random", "synth_data": False, "epochs": epochs, "input_size": "32x64", "crop_size": "32x64",
                "batch_size": 2, "steps_per_epoch": 2, "device": "cpu", "overrides": {**SPACE, "lut_path": table}}}]}


def outcome(root: Path) -> dict:
    """What a run computed: its genotype and its per-epoch numbers (not its timings)."""
    out = {}
    for genotype in sorted(root.rglob("genotype.json")):
        run = RunDir(genotype.parent)
        out[genotype.parent.parent.name] = (json.loads(genotype.read_text()),
                                            [{k: v for k, v in m.items() if k != "epoch_time_s"} for m in run.metrics()])
    return out


@pytest.fixture(scope="module")
def serial(tmp_path_factory, table) -> Path:
    root = tmp_path_factory.mktemp("serial")
    assert len(run_batch(sweep(root, table))["finished"]) == 2
    assert RunDir(root / "lw0.5" / "search").record()["engine"] == "serial"
    return root


def test_local_processes_give_the_serial_results(tmp_path, table, serial):
    local = run_batch(sweep(tmp_path / "local", table), engine="local", jobs=2)
    assert len(local["finished"]) == 2
    assert outcome(serial) == outcome(tmp_path / "local") != {}
    rec = RunDir(tmp_path / "local" / "lw0.5" / "search").record()
    assert rec["engine"] == "local" and rec["host"]
    assert rec["timing_lock"] is True  # the pool's jobs share a timing lock (workbench.timelock)
    assert RunDir(serial / "lw0.5" / "search").record()["timing_lock"] is False


def test_ray_tasks_give_the_serial_results(tmp_path, table, serial):
    pytest.importorskip("ray")
    result = run_batch(sweep(tmp_path / "ray", table), engine="ray")
    assert len(result["finished"]) == 2 and not result["failed"]
    assert outcome(serial) == outcome(tmp_path / "ray")
    assert RunDir(tmp_path / "ray" / "lw0.0" / "search").record()["engine"] == "ray"


def _ray_job_pids() -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if cmd.startswith("ray::run_job"):
                pids.append(int(proc.name))
    return pids


def test_a_killed_ray_worker_is_retried_and_resumes(tmp_path, table):
    pytest.importorskip("ray")
    epochs = 10  # about 0.5 s each: the kill lands after 3 of them, with 7 left to resume
    run_batch(sweep(tmp_path / "serial", table, epochs, weights=(0.5,)))
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(sweep(tmp_path / "ray", table, epochs, weights=(0.5,))))
    proc = subprocess.Popen([sys.executable, "-m", "workbench", "batch", str(path), "--engine", "ray"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=os.getcwd())
    run = RunDir(tmp_path / "ray" / "lw0.5" / "search")
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        metrics = run.metrics() if run.metrics_path.exists() else []
        if len(metrics) >= 3:
            break
        time.sleep(0.2)
    pids = _ray_job_pids()
    assert pids, "no Ray worker runs the job"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    log = proc.communicate(timeout=600)[0]
    assert proc.returncode == 0, log[-3000:]
    rec = run.record()
    assert rec["status"] == "finished" and rec.get("resumes", 0) >= 1, rec
    assert outcome(tmp_path / "serial") == outcome(tmp_path / "ray")
