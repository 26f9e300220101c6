"""Quiet timings inside a local pool: a job that times stops the pool's other jobs for the timing.

A study pool (`workbench ablations run --engine local --jobs 2`) runs two notebooks at once on a
2-core machine. A latency timing beside the other job is biased, not only noisy: in targets check 3
the searches' own timings, 31 of 33 beside the other job, read the searched networks a median 8.2
points faster against their baselines than the idle machine did afterwards
(benchmarks/results/headline.md), so a closed loop aimed inside a pool aims low. Pausing only the
other job's training steps is not enough: a first try left its derivations, evaluations and
notebook start-ups running (one timing saw the other job use half the machine).

The local engine gives its jobs one folder (`ENV`); each pool worker joins it (`join`). A timing
runs inside `quiet()`: it takes the folder's lock (timings of several jobs take turns), stops every
other member and all its descendants (notebook kernels, data-loader workers) with SIGSTOP, times,
and continues them with SIGCONT. A small guard process continues them too if the timing process
dies in between (its pipe closes), so a killed job cannot leave the pool stopped. The timing
process's own ancestors are never stopped. Without `ENV` (a single run, another engine, `torchrun`)
or without /proc, `quiet()` only records that nothing was paused.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ENV = "WORKBENCH_TIMING_LOCK"  # a folder shared by the jobs of one local pool
PROC = Path("/proc")
_held = 0  # quiet() depth in this process: an inner one must not wait for the outer one's lock

# continues the pids given when its stdin closes: when the timing ends, or its process dies
GUARD = ("import os, signal, sys\nsys.stdin.buffer.read()\nfor pid in sys.argv[1:]:\n"
         "    try:\n        os.kill(int(pid), signal.SIGCONT)\n    except OSError:\n        pass\n")


def _folder() -> Path | None:
    value = os.environ.get(ENV)
    if not value or int(os.environ.get("WORLD_SIZE", "1")) > 1 or not PROC.is_dir():
        return None
    return Path(value)


def active() -> bool:
    """Whether this process runs in a local pool whose jobs share a timing lock."""
    return _folder() is not None


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, start time) of a live process from /proc/PID/stat, None when it is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) "
    return int(fields[1]), fields[19]


def join() -> None:
    """Make this process a member of the pool: its whole process tree is stopped while another
    member times. Called by each local worker at the start of a job; returns once no timing runs,
    so a job that starts during a timing (a worker the timing did not know yet) waits for its end."""
    folder = _folder()
    if folder is None or not folder.is_dir():
        return
    stat = _stat(os.getpid())
    if stat is not None:
        (folder / f"member-{os.getpid()}").write_text(stat[1])
    with open(folder / "lock", "a") as fh:  # registered first: a timing either stops us or we wait for it
        fcntl.flock(fh, fcntl.LOCK_SH)
        fcntl.flock(fh, fcntl.LOCK_UN)


def members(folder: Path) -> list[int]:
    """Live member pids (a member file whose process is gone, or whose pid now names another
    process, is removed)."""
    pids = []
    for path in folder.glob("member-*"):
        try:
            pid = int(path.name.split("-", 1)[1])
            started = path.read_text().strip()
        except (ValueError, OSError):
            continue
        stat = _stat(pid)
        if stat is None or stat[1] != started:
            path.unlink(missing_ok=True)
        else:
            pids.append(pid)
    return pids


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                tree.setdefault(stat[0], []).append(int(entry.name))
    return tree


def _ancestors(pid: int) -> set[int]:
    out = set()
    while pid > 1 and pid not in out:
        out.add(pid)
        stat = _stat(pid)
        if stat is None:
            break
        pid = stat[0]
    return out


def others(folder: Path) -> list[int]:
    """Every process of the other members' trees: what `quiet` stops."""
    mine = _ancestors(os.getpid())
    tree, out = _children(), []
    todo = [pid for pid in members(folder) if pid not in mine]
    while todo:
        pid = todo.pop()
        if pid in mine or pid in out:
            continue
        out.append(pid)
        todo.extend(tree.get(pid, []))
    return out


def _signal(pids: list[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except OSError:
            pass


@contextmanager
def quiet() -> Iterator[dict]:
    """Around a timing: the pool's other jobs are stopped. Yields a record to store beside the
    timing: {"quiet": True, "paused": processes stopped, "waited_s": wait for the lock} in a
    pool, {"quiet": None} outside one."""
    global _held
    folder = _folder()
    if folder is None or not folder.is_dir():
        yield {"quiet": None}
        return
    if _held:
        yield {"quiet": True, "paused": 0, "waited_s": 0.0, "nested": True}
        return
    t0 = time.monotonic()
    with open(folder / "lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            waited = round(time.monotonic() - t0, 2)
            pids = others(folder)
            guard = subprocess.Popen([sys.executable, "-c", GUARD, *map(str, pids)], stdin=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                _signal(pids, signal.SIGSTOP)
                _held += 1
                yield {"quiet": True, "paused": len(pids), "waited_s": waited}
            finally:
                _held = max(0, _held - 1)
                _signal(pids, signal.SIGCONT)
                guard.stdin.close()
                guard.wait()
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
