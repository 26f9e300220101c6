"""Quiet timings inside a local pool: a job that times pauses the pool's other jobs for a few seconds.

A study pool (`workbench ablations run --engine local --jobs 2`) runs two notebooks at once on a
2-core machine. A latency timing beside the other job's training is biased, not only noisy: in
targets check 3 the searches' own timings, 31 of 33 beside the other job, read the searched networks
a median 8.2 points faster against their baselines than the idle machine did afterwards
(benchmarks/results/headline.md), so a closed loop aimed inside a pool aims low.

The local engine gives its jobs one folder (`ENV`). Training and evaluation loops call `gate()`
around each step: it waits while another job holds a pause, then holds a shared lock for the step.
A timing runs inside `quiet()`: it raises its pause flag (new steps elsewhere wait), takes the lock
exclusively (the other jobs' steps in flight end first), times, and lowers the flag. Timings of
several jobs queue on the lock. A flag left by a killed process is ignored once its process is gone.
Without `ENV` (a single run, another engine) both are no-ops.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ENV = "WORKBENCH_TIMING_LOCK"  # a folder shared by the jobs of one local pool
POLL_S = 0.05  # how often a waiting step looks at the pause flags again


def _folder() -> Path | None:
    """The pool's folder; None outside a pool and in a torchrun process (its steps wait on each
    other's collectives, so one rank paused inside a step would hold the lock for ever)."""
    value = os.environ.get(ENV)
    if not value or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return None
    return Path(value)


def active() -> bool:
    """Whether this process runs in a local pool whose jobs share a timing lock."""
    return _folder() is not None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def paused_by(folder: Path) -> list[int]:
    """Processes other than this one whose pause flag is up (dead ones' flags are removed)."""
    pids = []
    for flag in folder.glob("pause-*"):
        try:
            pid = int(flag.name.split("-", 1)[1])
        except ValueError:
            continue
        if pid == os.getpid():
            continue
        if _alive(pid):
            pids.append(pid)
        else:
            flag.unlink(missing_ok=True)
    return pids


@contextmanager
def gate() -> Iterator[None]:
    """Around one training or evaluation step: wait out other jobs' timings, then hold the lock shared."""
    folder = _folder()
    if folder is None or not folder.is_dir():
        yield
        return
    while paused_by(folder):
        time.sleep(POLL_S)
    with open(folder / "lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextmanager
def quiet() -> Iterator[dict]:
    """Around a timing: the pool's other jobs pause. Yields a record ({"quiet": True, "waited_s"}
    in a pool, {"quiet": None} outside one) to store beside the timing."""
    folder = _folder()
    if folder is None or not folder.is_dir():
        yield {"quiet": None}
        return
    flag = folder / f"pause-{os.getpid()}"
    t0 = time.monotonic()
    flag.write_text("timing\n")
    try:
        with open(folder / "lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield {"quiet": True, "waited_s": round(time.monotonic() - t0, 2)}
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
    finally:
        flag.unlink(missing_ok=True)
