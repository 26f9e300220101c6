"""The process's memory allocator: which one is loaded, and how `workbench` starts under tcmalloc.

Why: a CPU training step allocates and frees hundreds of activation and gradient tensors, and
glibc's malloc returns their pages to the kernel and faults them back in every step. tcmalloc keeps
them, which measured 1.1-1.4x faster training steps on a 2-vCPU Intel Xeon
(benchmarks/results/retrain_recipes.md, "The memory allocator"). An allocator cannot be swapped
inside a running process: it must be preloaded before Python starts, so `workbench` re-executes
itself once with LD_PRELOAD when `WORKBENCH_ALLOCATOR=tcmalloc` asks for it, and the processes it
starts inherit the setting with its environment (checked by hand, not in the suite: notebook
kernels, and on 2026-12-07 the Ray workers of the local cluster that `workbench batch --engine ray`
starts, whose kernels' device fingerprints named tcmalloc). The allocator is part of the device
fingerprint (it changes measured latency too) and of each run's throughput record.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from workbench.errors import ConfigError

ENV = "WORKBENCH_ALLOCATOR"
CHOICES = ("system", "tcmalloc")
_REEXEC = "WORKBENCH_ALLOCATOR_REEXEC"  # set on the re-executed process: never loop
_KNOWN = ("tcmalloc", "jemalloc")
_TCMALLOC_NAMES = ("libtcmalloc_minimal.so.4", "libtcmalloc.so.4", "libtcmalloc_minimal.so", "libtcmalloc.so")


def loaded_allocator(maps: str = "/proc/self/maps") -> str:
    """'tcmalloc' or 'jemalloc' where this process mapped one of those libraries, else 'system'."""
    try:
        text = Path(maps).read_text()
    except OSError:
        return "system"
    for line in text.splitlines():
        name = line.rsplit("/", 1)[-1]
        for allocator in _KNOWN:
            if name.startswith(f"lib{allocator}"):
                return allocator
    return "system"


def find_tcmalloc(dirs: list[Path] | None = None) -> Path | None:
    """The first tcmalloc library in the usual places: Debian's multiarch folder (apt-get install
    libtcmalloc-minimal4), /usr/lib, /usr/lib64, /usr/local/lib, and this environment's lib (conda's
    gperftools)."""
    if dirs is None:
        dirs = [Path("/usr/lib") / f"{os.uname().machine}-linux-gnu", Path("/usr/lib"), Path("/usr/lib64"),
                Path("/usr/local/lib"), Path(sys.prefix) / "lib"]
    for folder in dirs:
        for name in _TCMALLOC_NAMES:
            if (folder / name).is_file():
                return folder / name
    return None


def preload_environment(environ: dict[str, str] | None = None, maps: str = "/proc/self/maps",
                        dirs: list[Path] | None = None) -> dict[str, str] | None:
    """The environment to re-execute this process with so that `WORKBENCH_ALLOCATOR` holds, or None
    when nothing needs to change (unset, 'system', or tcmalloc already loaded). Raises ConfigError on
    an unknown choice, a missing library, or a re-executed process that still lacks it."""
    environ = dict(os.environ if environ is None else environ)
    choice = environ.get(ENV, "").strip() or "system"
    if choice not in CHOICES:
        raise ConfigError(f"{ENV}: unknown allocator {choice!r}; choose one of {', '.join(CHOICES)}")
    if choice == "system" or loaded_allocator(maps) == choice:
        return None
    if environ.get(_REEXEC):
        raise ConfigError(f"{ENV}: tcmalloc: preloaded with LD_PRELOAD={environ.get('LD_PRELOAD', '')!r} but not "
                          "loaded (a library the dynamic loader refused)")
    library = find_tcmalloc(dirs)
    if library is None:
        raise ConfigError(f"{ENV}: tcmalloc: no libtcmalloc found (Debian: apt-get install libtcmalloc-minimal4)")
    preload = " ".join(p for p in (str(library), environ.get("LD_PRELOAD", "")) if p)
    return {**environ, "LD_PRELOAD": preload, _REEXEC: "1"}
