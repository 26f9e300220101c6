"""Was the machine busy while we timed? CPU time other processes used during a measurement.

Timing on a shared machine is the easiest way to get a wrong latency table: with 2 threads torch's
workers collapse under contention (a table measured beside another job read 7x the quiet values).
`OtherLoad` reads the kernel's CPU counters (/proc/stat) and this process's own CPU time around a
measurement; what the machine spent beyond ours, as a share of all its cores, is the load of the
other processes. Above `BUSY` the measurement is flagged, and a latency table so flagged is not
cached as the device's table. Where /proc/stat is missing (not Linux) the load is unknown (None).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

BUSY = 0.15  # other processes' share of all cores above which a timing is called busy


def _busy_seconds() -> float | None:
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = fh.readline().split()
    except OSError:
        return None
    # user nice system idle iowait irq softirq steal ...: everything but idle and iowait is busy
    values = [int(v) for v in fields[1:9]]
    busy = values[0] + values[1] + values[2] + values[5] + values[6] + values[7]
    return busy / os.sysconf("SC_CLK_TCK")


@dataclass
class OtherLoad:
    """Context manager: `share` = other processes' CPU time / (wall time x cores) while inside."""

    share: float | None = None

    def __enter__(self) -> OtherLoad:
        self._t, self._busy, self._own = time.perf_counter(), _busy_seconds(), self._own_seconds()
        return self

    def __exit__(self, *exc) -> None:
        busy = _busy_seconds()
        wall = time.perf_counter() - self._t
        if busy is None or self._busy is None or wall <= 0:
            return
        others = (busy - self._busy) - (self._own_seconds() - self._own)
        self.share = round(max(others, 0.0) / (wall * (os.cpu_count() or 1)), 4)

    @staticmethod
    def _own_seconds() -> float:
        """This process's CPU time and its finished children's (a timing run in a child process is ours)."""
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    @property
    def busy(self) -> bool:
        return self.share is not None and self.share > BUSY

    def record(self) -> dict:
        return {"other_load": self.share, "busy": self.busy}
