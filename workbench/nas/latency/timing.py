"""Timing pieces and networks, and the per-device cache of measured pieces.

Batch 1, eval mode, inference_mode, a fixed thread count on CPU, `torch.cuda.synchronize` around
each call on GPU. Every entry is timed in `rounds` rounds that visit all entries in turn (`warmup`
untimed calls, then the median of `repeats`); the entry is the fastest round median. A shared
machine's load comes in bursts of seconds: a burst spoils the rounds it overlaps, not the entry,
and what is left estimates the unloaded latency, the quantity a table can predict.
"""

from __future__ import annotations

import hashlib
import os
import random
import statistics
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from workbench.device import fingerprint_key, latency_dtype, resolve_device, timed_call
from workbench.nas.latency.probes import Probe


@torch.inference_mode()
def time_call(fn: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> float:
    """Median milliseconds of fn() after warm-up, synchronized on CUDA."""
    for _ in range(warmup):
        fn()
    return float(statistics.median(timed_call(fn, device) * 1000.0 for _ in range(repeats)))


def round_order(keys: list[str], index: int) -> list[str]:
    """The order round `index` times the entries in: a seeded shuffle per round. In one fixed order a
    study's arms are timed in contiguous blocks, so a host that drifts inside every round always lands
    on the same networks (noticed in benchmarks/results/ablations_v3.md's ten-seed cell-sharing file);
    shuffled, such a drift spreads over all of them."""
    order = list(keys)
    random.Random(index).shuffle(order)
    return order


def time_rounds(factories: dict[str, Callable[[], Callable[[], object]]], device: torch.device, warmup: int,
                repeats: int, rounds: int = 1, progress: Callable[[int], None] | None = None
                ) -> dict[str, list[float]]:
    """Round medians (ms) of every call, round-robin: a factory makes the call (module and inputs)
    anew in each round, so only one entry's tensors live at a time; the caller takes the min.
    Each round visits the entries in its own seeded order (`round_order`)."""
    out: dict[str, list[float]] = {key: [] for key in factories}
    for index in range(rounds):
        for key in round_order(list(factories), index):
            fn = factories[key]()
            out[key].append(time_call(fn, device, warmup, repeats))
            del fn
            if progress:
                progress(1)
    return out


def probe_call(probe: Probe, device: torch.device, runtime: str = "eager", threads: int | None = None,
               dtype: str = "float32") -> Callable[[], object]:
    """A call running one piece in `runtime`, weights and inputs in `dtype`."""
    from workbench.nas.latency.runtimes import bind

    dt = latency_dtype(dtype)
    module = probe.make().to(device=device, dtype=dt).eval()
    inputs = [torch.randn(s, device=device, dtype=dt) for s in probe.shapes]
    if runtime == "eager":
        return lambda: module(*inputs, *probe.extra)
    return bind(module, inputs, runtime, threads, extra=probe.extra)


def measure_networks(models: dict[str, nn.Module], size: tuple[int, int], device: str | torch.device = "cpu",
                     warmup: int = 3, repeats: int = 10, rounds: int = 1, runtime: str = "eager",
                     dtype: str = "float32") -> dict[str, list[float]]:
    """Round medians (ms) of each model's end-to-end forward on one image (batch 1, eval), interleaved,
    weights and input in `dtype`."""
    from workbench.nas.latency.runtimes import bind

    dev, dt = resolve_device(str(device)), latency_dtype(dtype)
    x = torch.randn(1, 3, *size, device=dev).to(dt)
    for model in models.values():
        model.to(device=dev, dtype=dt).eval()
    if runtime == "eager":
        return time_rounds({k: (lambda m=m: lambda: m(x)) for k, m in models.items()}, dev, warmup, repeats, rounds)
    calls = {k: bind(m, [x], runtime) for k, m in models.items()}  # export/compile once, time every round
    return time_rounds({k: (lambda c=c: c) for k, c in calls.items()}, dev, warmup, repeats, rounds)


def measure_built(builders: dict[str, Callable[[], nn.Module]], size: tuple[int, int],
                  device: str | torch.device = "cpu", warmup: int = 3, repeats: int = 10, rounds: int = 1,
                  runtime: str = "eager", progress: Callable[[int], None] | None = None, dtype: str = "float32"
                  ) -> dict[str, list[float]]:
    """`measure_networks` for builders; the study bench's timing (`workbench ablations bench`). In
    eager mode each network is built afresh (seed 0) in every round: a model built once keeps one
    memory placement for all rounds, and in a process holding a search's supernet built-once
    FPN-MobileNetV3-small read its fastest round at 8.65-10.47 ms against 8.41-8.67 ms rebuilt, in
    the same blocks (benchmarks/results/headline/calibration_protocol_3-10-21_supernet.json,
    2026-12-03, Intel VM). Other runtimes export or compile once (`measure_networks`; no progress)."""
    if runtime != "eager":
        return measure_networks({k: make() for k, make in builders.items()}, size, device, warmup, repeats,
                                rounds, runtime, dtype)
    dev, dt = resolve_device(str(device)), latency_dtype(dtype)
    x = torch.randn(1, 3, *size, device=dev).to(dt)

    def factory(make: Callable[[], nn.Module]) -> Callable[[], Callable[[], object]]:
        def call() -> Callable[[], object]:
            torch.manual_seed(0)
            model = make().to(device=dev, dtype=dt).eval()
            return lambda: model(x)
        return call

    return time_rounds({k: factory(make) for k, make in builders.items()}, dev, warmup, repeats, rounds, progress)


def measure_network_latency(model: nn.Module, size: tuple[int, int], device: str | torch.device = "cpu",
                            warmup: int = 3, repeats: int = 10, rounds: int = 1, runtime: str = "eager",
                            dtype: str = "float32") -> float:
    """End-to-end latency (ms) of model on one image of `size`: the fastest of `rounds` round medians."""
    return min(measure_networks({"model": model}, size, device, warmup, repeats, rounds, runtime, dtype)["model"])


def spread(round_medians: list[float]) -> float:
    """Slowest / fastest round median: 1.0 on a quiet device; well above it means load during timing."""
    return max(round_medians) / min(round_medians)


NOISY_SPREAD = 1.5  # slowest / fastest rounds beyond this: timed under load (for the whole table)


# -- cache and table --------------------------------------------------------------------------
def default_cache_dir() -> Path:
    return Path(os.environ.get("WORKBENCH_LUT_CACHE", Path.home() / ".cache" / "workbench" / "lut"))


def cache_file(fingerprint: dict, cache_dir: str | Path | None = None) -> Path:
    digest = hashlib.sha1(fingerprint_key(fingerprint).encode()).hexdigest()[:16]
    return Path(cache_dir or default_cache_dir()) / f"{digest}.json"


def read_cache(path: Path) -> dict[str, float]:
    from workbench.jsonio import read_json

    try:
        return dict(read_json(path).get("entries", {}))
    except (OSError, ValueError, AttributeError):
        return {}


def add_cache_entries(path: Path, fingerprint: dict, entries: dict[str, float]) -> None:
    """Merge timed entries into a device's cache file, keeping what else it holds (other processes'
    entries, the calibrations): rewriting it with entries alone once dropped every calibration, so
    each later search re-calibrated, beside whatever else was running."""
    from workbench.jsonio import atomic_write_json, read_json

    try:
        stored = read_json(path) if path.exists() else {}
    except (OSError, ValueError):
        stored = {}
    stored = stored if isinstance(stored, dict) else {}
    stored["fingerprint"] = fingerprint
    stored["entries"] = {**dict(stored.get("entries") or {}), **entries}
    atomic_write_json(path, stored)
