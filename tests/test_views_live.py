"""Live panels follow a running run directory; every logged metric is also a TensorBoard scalar."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from fixtures_runs import alphas_record, genotype_from_alphas

from workbench.jsonio import atomic_write_json
from workbench.runs import RunDir


def test_panel_shows_each_epoch_while_the_run_is_going(tmp_path):
    from widgets.panels import RunPanel

    run = RunDir(tmp_path / "search")
    run.write_config({"preset": "lgcnet", "epochs": 5})
    run.start("search", preset="lgcnet", latency_weight=0.1, seed=0)
    panel = RunPanel(run.path, live=False)
    assert "evolution" not in panel.parts and "running" in panel.header.value
    assert not panel.poll()  # nothing new
    for epoch in range(-1, 3):
        run.log_alphas(alphas_record(epoch))
        if epoch >= 0:
            run.log_metrics({"epoch": epoch, "phase": "search", "train_loss": 1.0 / (epoch + 1), "arch_loss": 1.0,
                             "val_miou": 0.1 * (epoch + 1), "expected_latency_ms": 20.0 - epoch})
        assert panel.poll()
        evo = panel.parts["evolution"]
        assert panel.run.status == "running"
        assert evo.epoch.value == epoch and list(evo.epoch.options) == list(range(-1, epoch + 1))
        assert f"epoch {epoch}" in evo.graph.layout.title.text
        if epoch >= 0:
            curves = panel.parts["curves"].widget
            assert list(curves.data[0].x) == list(range(epoch + 1))
            assert curves._widget_data[0]["x"] == list(range(epoch + 1))  # a reload shows epoch k too
    # looking back at epoch 0: a new epoch extends the slider without moving it
    evo.epoch.value = 0
    run.log_alphas(alphas_record(3))
    assert panel.poll() and evo.epoch.value == 0 and evo.epoch.options[-1] == 3
    # the run ends: the derived architecture appears, the header says finished
    atomic_write_json(run.genotype_path, genotype_from_alphas(alphas_record(3), "lgcnet"))
    run.update(metrics={"miou": 0.3, "expected_latency_ms": 17.0}, artifacts={"genotype": "genotype.json"})
    run.finish()
    assert panel.poll() and "architecture" in panel.parts and "finished" in panel.header.value
    assert panel.finished()


TINY = {"channels": 8, "stem_channels": 8, "head_channels": 8, "nodes": 2, "num_cells": 2, "reductions": [0],
        "fusion_channels": 8, "max_val_images": 1, "warmup_epochs": 0, "lut_warmup": 0, "lut_repeats": 1,
        "epochs": 4, "input_size": [32, 64], "crop_size": [32, 64], "batch_size": 2, "steps_per_epoch": 1}


# Runs `python -m workbench ...` with the search held after its second epoch until the test
# creates the file named by the first argument: the panel must show a running epoch, and a fast
# machine could otherwise finish the whole search before the panel's first drawing.
HELD_SEARCH = """
import pathlib, runpy, sys, time
from workbench.runs import RunDir
go = pathlib.Path(sys.argv.pop(1))
log_alphas = RunDir.log_alphas
def held(self, record):
    log_alphas(self, record)
    deadline = time.time() + 120
    while record["epoch"] == 1 and not go.exists() and time.time() < deadline:
        time.sleep(0.05)
RunDir.log_alphas = held
sys.argv[0] = "workbench"
runpy.run_module("workbench", run_name="__main__")
"""


@pytest.mark.slow
def test_live_panel_on_a_real_search_in_another_process(tmp_path):
    """`workbench search` runs in a subprocess; the panel's own thread polls the run directory.
    It shows epoch k while the run record still says running, then the finished run."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from widgets.panels import RunPanel

    run_dir, go = tmp_path / "search", tmp_path / "go"
    slow = {**TINY, "epochs": 6}
    sets = [f"{k}={json.dumps(v) if isinstance(v, list) else v}" for k, v in slow.items()]
    cmd = [sys.executable, "-c", HELD_SEARCH, str(go), "search", "--preset", "lgcnet", "--dataset", "random",
           "--run-dir", str(run_dir), "--device", "cpu", "--threads", "1", "--set", *sets]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        panel = RunPanel(run_dir, interval=0.05)  # no record yet: it waits and follows
        assert panel._watching()
        seen = []
        deadline = time.time() + 240
        while proc.poll() is None and time.time() < deadline:
            evo = panel.parts.get("evolution")
            if evo is not None:
                seen.append((panel.run.status, evo.epoch.value))
                if seen[-1][0] == "running" and seen[-1][1] >= 0:
                    go.touch()  # seen while running: let the search go on
            time.sleep(0.02)
        assert proc.wait(timeout=5) == 0, proc.stderr.read().decode()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    panel._thread.join(timeout=10)
    assert not panel._watching()  # it stopped by itself once the run was over
    running = {epoch for status, epoch in seen if status == "running" and epoch >= 0}
    assert running, seen[-5:]  # an epoch was on screen while the search was still going
    assert panel.run.status == "finished" and panel.parts["evolution"].epoch.value == slow["epochs"] - 1
    assert "architecture" in panel.parts
    # the search step wrote TensorBoard scalars beside metrics.jsonl, one step per epoch
    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    assert {"search/val_miou", "search/expected_latency_ms", "search/train_loss"} <= set(
        acc.Tags()["scalars"])
    lat = acc.Scalars("search/expected_latency_ms")
    assert [e.step for e in lat] == list(range(slow["epochs"]))
    assert [e.value for e in lat] == pytest.approx([m["expected_latency_ms"] for m in RunDir(run_dir).metrics()])


def test_log_metrics_writes_tensorboard_scalars(tmp_path, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from workbench import scalars

    run = RunDir(tmp_path / "retrain")
    run.start("retrain")
    for epoch in range(3):
        run.log_metrics({"epoch": epoch, "phase": "train", "loss": 1.0 / (epoch + 1), "lr": 0.01, "note": "x",
                         "flag": True, "step": 10 * epoch})
        run.log_metrics({"epoch": epoch, "phase": "val", "miou": 0.2 * epoch})
    acc = EventAccumulator(str(run.path))
    acc.Reload()
    assert set(acc.Tags()["scalars"]) == {"train/loss", "train/lr", "val/miou"}  # numbers only, not bools
    assert [(e.step, round(e.value, 6)) for e in acc.Scalars("val/miou")] == [(0, 0.0), (1, 0.2), (2, 0.4)]
    assert len(run.metrics()) == 6  # metrics.jsonl stays the record
    # an overwritten run gets a fresh event file (the cached writer's file is gone)
    for f in run.path.glob("events.out.tfevents.*"):
        f.unlink()
    run.log_metrics({"epoch": 0, "phase": "val", "miou": 0.5})
    assert len(list(run.path.glob("events.out.tfevents.*"))) == 1
    scalars.close(run.path)
    # switched off
    monkeypatch.setenv("WORKBENCH_TENSORBOARD", "0")
    other = RunDir(tmp_path / "off")
    other.start("retrain")
    other.log_metrics({"epoch": 0, "phase": "val", "miou": 0.5})
    assert not list(other.path.glob("events.out.tfevents.*"))
