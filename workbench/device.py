"""Devices, threads, seeds and the device fingerprint that keys latency tables and benchmarks.

Nothing device-specific is hard-coded elsewhere: a `device` string flows from the entry point
down and is resolved here.
"""

from __future__ import annotations

import os
import platform
import random
import time

import numpy as np
import torch

from workbench.allocator import loaded_allocator
from workbench.errors import ConfigError


def resolve_device(device: str = "auto") -> torch.device:
    """'auto' -> cuda if available else cpu; refuses 'cuda' on a machine without a GPU."""
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"device: unknown device {device!r} (use cpu, cuda or cuda:N)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: cuda requested but torch sees no GPU on this machine")
    return dev


# the dtypes a network can be timed in (weights and input cast to it, as a half-precision deployment runs)
LATENCY_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def latency_dtype(name: str, where: str = "dtype") -> torch.dtype:
    """The torch dtype a latency setting names; ConfigError naming `where` for another name."""
    if name not in LATENCY_DTYPES:
        raise ConfigError(f"{where}: unknown dtype {name!r} (known: {', '.join(LATENCY_DTYPES)})")
    return LATENCY_DTYPES[name]


def dtype_name(dtype: torch.dtype) -> str:
    """'float32' for torch.float32: the name fingerprints and latency settings use."""
    return str(dtype).replace("torch.", "")


def set_threads(threads: int | None) -> int:
    """Fix the intra-op thread count (latency numbers are meaningless otherwise)."""
    if threads:
        torch.set_num_threads(int(threads))
    return torch.get_num_threads()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def synchronize(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timed_call(fn, device: torch.device | str) -> float:
    """Seconds that one fn() takes, the device's queued work finished before and after (CUDA is async)."""
    synchronize(device)
    t0 = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - t0


def cpu_model() -> str:
    """The CPU's model name, with its family and model numbers where /proc/cpuinfo has them: VMs
    often name only 'Intel(R) Xeon(R) Processor' or 'AMD EPYC', which covers CPUs of different speeds
    (an EPYC Zen 2 VM ran the same network 1.7x slower than another EPYC VM), and the name is part of
    every latency table's device fingerprint."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    break  # the first processor is enough
                key, _, value = line.partition(":")
                fields.setdefault(key.strip().lower(), value.strip())
    except OSError:
        pass
    name = fields.get("model name")
    if not name:
        return platform.processor() or platform.machine()
    if "cpu family" in fields and "model" in fields:
        return f"{name} (family {fields['cpu family']} model {fields['model']})"
    return name


def cpu_flags() -> list[str]:
    """The first processor's /proc/cpuinfo flags ([] where there is none): the model name does not say
    whether a VM exposes bf16 or AMX, and that decides whether bf16 autocast can pay on the CPU."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() == "flags":
                    return value.split()
    except OSError:
        pass
    return []


def device_fingerprint(device: torch.device | str, threads: int | None = None,
                       dtype: torch.dtype = torch.float32, runtime: str = "eager") -> dict:
    """What a latency number depends on: hardware, threads, torch version, dtype, and the runtime
    it ran in (`workbench.nas.latency.runtimes`; a fingerprint without one is eager PyTorch)."""
    dev = torch.device(device)
    info = {
        "device_type": dev.type,
        "torch": torch.__version__,
        "dtype": dtype_name(dtype),
        "runtime": runtime,
    }
    if dev.type == "cuda":
        idx = dev.index if dev.index is not None else torch.cuda.current_device()
        info["name"] = torch.cuda.get_device_name(idx)
        info["cuda"] = torch.version.cuda
    else:
        info["name"] = cpu_model()
        info["threads"] = int(threads or torch.get_num_threads())
        info["cores"] = os.cpu_count()
        allocator = loaded_allocator()
        if allocator != "system":  # tcmalloc times CPU networks faster: not the same device for a table
            info["allocator"] = allocator
    return info


def fingerprint_key(fp: dict) -> str:
    """A short stable string for file names and cache keys."""
    parts = [fp["device_type"], fp["name"], fp["torch"], fp["dtype"]]
    if "threads" in fp:
        parts.append(f"t{fp['threads']}")
    if fp.get("runtime", "eager") != "eager":  # eager keys stay as they were: existing caches stay valid
        parts.append(fp["runtime"])
    if fp.get("allocator", "system") != "system":  # ... and so do the system allocator's
        parts.append(fp["allocator"])
    return "|".join(str(p) for p in parts)
