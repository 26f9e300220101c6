"""The timing lock of a local pool: a timing stops the other members' process trees and continues
them after; its own ancestors are never stopped; a timing process killed mid-timing still leaves
the pool running; outside a pool it does nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from workbench import timelock

# a pool member: joins, then it and a child of its own tick until told to stop, writing the ticks
MEMBER = """
import json, subprocess, sys, time
from workbench import timelock
timelock.join()
TICK = "import json, sys, time\\nt=[]\\nend=time.time()+float(sys.argv[2])\\nwhile time.time()<end:\\n    t.append(time.time()); time.sleep(0.01)\\njson.dump(t, open(sys.argv[1], 'w'))\\n"
child = subprocess.Popen([sys.executable, "-c", TICK, sys.argv[1] + ".child", sys.argv[2]])
open(sys.argv[1] + ".ready", "w").close()  # joined, and its child exists
exec(TICK.replace("sys.argv[1]", "sys.argv[1] + '.own'"))
child.wait()
"""

TIMER = """
import time
from workbench import timelock
with timelock.quiet() as record:
    print(record, flush=True)
    time.sleep(60)
"""


def _ticks(path) -> list[float]:
    return json.loads(path.read_text())


def _start_member(tmp_path, name: str, seconds: float) -> subprocess.Popen:
    member = subprocess.Popen([sys.executable, "-c", MEMBER, str(tmp_path / name), str(seconds)])
    deadline = time.time() + 60
    while time.time() < deadline and not (tmp_path / f"{name}.ready").exists():
        time.sleep(0.05)
    assert member.pid in timelock.members(tmp_path)
    time.sleep(0.5)  # both tick
    return member


def test_without_a_pool_nothing_is_stopped(monkeypatch, tmp_path):
    monkeypatch.delenv(timelock.ENV, raising=False)
    assert not timelock.active()
    timelock.join()
    with timelock.quiet() as record:
        assert record == {"quiet": None}
    monkeypatch.setenv(timelock.ENV, str(tmp_path))
    monkeypatch.setenv("WORLD_SIZE", "2")  # torchrun: ranks wait on each other, never stopped
    assert not timelock.active()


def test_a_timing_stops_the_other_members_trees(monkeypatch, tmp_path):
    monkeypatch.setenv(timelock.ENV, str(tmp_path))
    timelock.join()  # this process is a member too: never stopped by its own timing
    member = _start_member(tmp_path, "ticks", 4.0)
    windows = []
    for _ in range(2):
        with timelock.quiet() as record:
            assert record["quiet"] is True and record["paused"] == 2  # the member and its child
            start = time.time()
            time.sleep(0.6)  # the timing
            windows.append((start, time.time()))
        time.sleep(0.5)
    assert member.wait(timeout=60) == 0
    for name in ("ticks.own", "ticks.child"):
        ticks = _ticks(tmp_path / name)
        for start, end in windows:
            assert [t for t in ticks if start + 0.05 < t < end] == [], name  # stopped (signals take a moment)
            assert any(t > end for t in ticks)  # and continued
    assert (tmp_path / f"member-{os.getpid()}").exists()


def test_a_timing_process_killed_mid_timing_leaves_the_pool_running(monkeypatch, tmp_path):
    monkeypatch.setenv(timelock.ENV, str(tmp_path))
    member = _start_member(tmp_path, "ticks", 5.0)
    timer = subprocess.Popen([sys.executable, "-c", TIMER], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, timelock.ENV: str(tmp_path)})
    assert "'quiet': True" in timer.stdout.readline()  # inside the timing: the member is stopped
    time.sleep(0.5)
    killed = time.time()
    timer.send_signal(signal.SIGKILL)
    timer.wait()
    assert member.wait(timeout=60) == 0  # its guard continued it
    ticks = _ticks(tmp_path / "ticks.own")
    assert any(t > killed for t in ticks)
    with timelock.quiet():  # and the lock is free again
        pass


def test_a_job_joining_during_a_timing_waits_for_its_end(monkeypatch, tmp_path):
    monkeypatch.setenv(timelock.ENV, str(tmp_path))
    with timelock.quiet() as record:
        assert record["paused"] == 0
        start = time.time()
        member = subprocess.Popen([sys.executable, "-c", MEMBER, str(tmp_path / "late"), "1.0"])
        time.sleep(1.5)  # it has joined (its file is there) but waits
        assert len(timelock.members(tmp_path)) == 1
        end = time.time()
    assert member.wait(timeout=60) == 0
    ticks = _ticks(tmp_path / "late.own")
    assert ticks and min(ticks) > end > start


def test_a_timing_inside_a_timing_does_not_wait_for_itself(monkeypatch, tmp_path):
    monkeypatch.setenv(timelock.ENV, str(tmp_path))
    with timelock.quiet() as outer, timelock.quiet() as inner:
        assert outer["quiet"] and inner == {"quiet": True, "paused": 0, "waited_s": 0.0, "nested": True}
    with timelock.quiet() as again:  # released: the next one takes the lock again
        assert "nested" not in again


def test_dead_members_are_forgotten(monkeypatch, tmp_path):
    monkeypatch.setenv(timelock.ENV, str(tmp_path))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / f"member-{dead.pid}").write_text("123")
    (tmp_path / f"member-{os.getpid()}").write_text("not this process's start")  # a reused pid
    (tmp_path / "member-notapid").write_text("")
    assert timelock.members(tmp_path) == []
    assert not (tmp_path / f"member-{dead.pid}").exists()
    with timelock.quiet() as record:
        assert record["paused"] == 0
