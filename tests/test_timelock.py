"""The timing lock of a local pool: a timing pauses the other jobs' steps and waits for the one in
flight; outside a pool it does nothing; a flag left by a killed process does not block the pool."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from workbench import timelock

TRAINER = """
import json, sys, time
from workbench import timelock
steps = []
end = time.time() + float(sys.argv[2])
while time.time() < end:
    with timelock.gate():
        t0 = time.time()
        time.sleep(0.15)  # a training step
        steps.append([t0, time.time()])
json.dump(steps, open(sys.argv[1], "w"))
"""


def test_without_a_pool_both_are_no_ops(monkeypatch):
    monkeypatch.delenv(timelock.ENV, raising=False)
    assert not timelock.active()
    with timelock.gate():
        pass
    with timelock.quiet() as record:
        assert record == {"quiet": None}


def test_under_torchrun_the_lock_is_off(monkeypatch, tmp_path):
    monkeypatch.setenv(timelock.ENV, str(tmp_path))
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert not timelock.active()


def test_a_timing_pauses_the_other_jobs_steps(monkeypatch, tmp_path):
    monkeypatch.setenv(timelock.ENV, str(tmp_path))
    out = tmp_path / "steps.json"
    trainer = subprocess.Popen([sys.executable, "-c", TRAINER, str(out), "3.0"])
    time.sleep(0.7)  # the trainer is stepping (its import takes a moment)
    windows = []
    for _ in range(2):
        with timelock.quiet() as record:
            assert record["quiet"] is True and record["waited_s"] >= 0
            start = time.time()
            time.sleep(0.5)  # the timing
            windows.append((start, time.time()))
        time.sleep(0.4)
    assert trainer.wait(timeout=30) == 0
    steps = json.loads(out.read_text())
    assert not list(tmp_path.glob("pause-*"))  # flags lowered
    for start, end in windows:
        overlapping = [s for s in steps if s[0] < end and s[1] > start]
        assert overlapping == [], (start, end, overlapping)
        assert any(s[0] >= end for s in steps)  # paused, not stopped: it went on after the timing
    assert len(steps) >= 6


def test_a_dead_processs_flag_is_removed(monkeypatch, tmp_path):
    monkeypatch.setenv(timelock.ENV, str(tmp_path))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / f"pause-{dead.pid}").write_text("timing\n")
    (tmp_path / "pause-notapid").write_text("")
    assert timelock.paused_by(tmp_path) == []
    assert not (tmp_path / f"pause-{dead.pid}").exists()
    t0 = time.monotonic()
    with timelock.gate():
        pass
    assert time.monotonic() - t0 < 5
