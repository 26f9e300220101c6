"""Re-time every network of a study together, round-robin, so that their latencies compare.

The retrains of a study time themselves one at a time, often beside another job of the pool (those
numbers are flagged busy) and minutes apart on a machine whose speed drifts. `bench_study` times
every finished retrain under a root in one interleaved run (each round runs every network once,
`timing.measure_built`), and records one `benchmark` run per retrain in RUN/benchmark-study, beside the
retrain's own RUN/benchmark. The study summary, the frontier and the run views then use it (the
latest benchmark of a run wins); ROOT/study_latency.json lists them all, with each network's round
medians. Every timing run is also kept as ROOT/study_latency/<time>.json: a second run on a machine
whose speed drifts is evidence beside the first, not a replacement for it. Networks with the same
architecture (a baseline's seeds) are timed once and share the number.
"""

from __future__ import annotations

import logging
import statistics
from datetime import datetime, timezone
from pathlib import Path

import torch

from workbench.device import cpu_model, device_fingerprint, resolve_device, set_threads
from workbench.errors import ConfigError
from workbench.jsonio import atomic_write_json
from workbench.loadcheck import OtherLoad
from workbench.nas.latency.timing import NOISY_SPREAD, measure_built
from workbench.runs import RunDir, iter_runs
from workbench.seg.benchmark import BenchmarkConfig, count_flops, network_spec
from workbench.seg.model import build_from_spec, count_params

log = logging.getLogger(__name__)

BENCH_FOLDER = "benchmark-study"
HISTORY_FOLDER = "study_latency"


def finished_retrains(root: Path) -> list[RunDir]:
    """Finished retrain runs (of a genotype, kind 'retrain', or of a hand-designed 'baseline') under root."""
    return [r for r in iter_runs(root)
            if r.record().get("kind") in ("retrain", "baseline") and r.record().get("status") == "finished"]


def _notebook_benchmark(run: RunDir) -> tuple[tuple[int, ...], float | None]:
    """The size the retrain notebook benchmarked the run at and the table's price there, from its
    RUN/benchmark sub-run (the notebook's `bench_size` is not part of the retrain config): ((), None)
    without one. The price is a property of the network and its table, not of the moment it was
    timed, so the joint timing keeps it beside its own number."""
    own = RunDir(run.path / "benchmark")
    if not own.config_path.is_file():
        return (), None
    return tuple(own.read_config().get("size") or ()), (own.record().get("metrics") or {}).get("expected_latency_ms")


def _benchmarked_size(run: RunDir) -> tuple[int, ...]:
    """The notebook benchmark's size, else `bench_size`, else the crop the run was trained on."""
    cfg = run.read_config()
    return _notebook_benchmark(run)[0] or tuple(cfg.get("bench_size") or cfg.get("crop_size") or ())


def _size(runs: list[RunDir], size: tuple[int, int] | None) -> tuple[int, int]:
    if size is not None:
        return tuple(size)
    sizes = {_benchmarked_size(r) for r in runs}
    if len(sizes) != 1 or not all(sizes):
        raise ConfigError(f"size: the retrains under the root were benchmarked at {sorted(sizes)}; give --size HxW")
    return sizes.pop()


def bench_study(root: str | Path, size: tuple[int, int] | None = None, threads: int | None = None, rounds: int = 7,
                repeats: int = 10, warmup: int = 3, device: str = "cpu", baselines: tuple[str, ...] = ()) -> dict:
    """Time every finished retrain under root together (round-robin) and record a benchmark run for each.
    `baselines` are timed in the same rounds (e.g. the network a latency target was a fraction of)."""
    from tqdm.auto import tqdm

    root = Path(root).resolve()
    runs = finished_retrains(root)
    if not runs:
        raise ConfigError(f"{root}: no finished retrain runs to time")
    size = _size(runs, size)
    dev = resolve_device(device)
    old_threads = torch.get_num_threads()
    threads = set_threads(threads) if dev.type == "cpu" else None
    try:
        specs = {r.path: network_spec(BenchmarkConfig(run=str(r.path))) for r in runs}
        classes = next(iter(specs.values())).num_classes
        extra = {b: network_spec(BenchmarkConfig(baseline=b, num_classes=classes)) for b in baselines}
        unique = {s.fingerprint: s for s in [*specs.values(), *extra.values()]}
        x = torch.randn(1, 3, *size)
        info = {}
        for key, spec in unique.items():
            model = build_from_spec(spec).eval()
            info[key] = {"params_m": count_params(model) / 1e6, "gflops": count_flops(model, x) / 1e9}
        log.info("timing %d networks (%d retrains) at %dx%d, %d rounds of %d runs", len(unique), len(runs), *size,
                 rounds, repeats)
        with tqdm(total=len(unique) * rounds, desc="study latency", disable=None) as bar, OtherLoad() as load:
            medians = measure_built({k: (lambda s=s: build_from_spec(s)) for k, s in unique.items()}, size, dev,
                                    warmup, repeats, rounds, progress=bar.update)
        fp = device_fingerprint(dev, threads)
    finally:
        torch.set_num_threads(old_threads)
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    rows = []
    for run in runs:
        spec = specs[run.path]
        ms = [round(m, 4) for m in medians[spec.fingerprint]]
        spread = max(ms) / min(ms)
        noisy = load.busy or spread > NOISY_SPREAD
        rel = run.path.relative_to(root)
        bench = RunDir(run.path / BENCH_FOLDER)
        result = {"network": {"kind": spec.kind, "name": spec.name, "fingerprint": spec.fingerprint},
                  "size": list(size), "batch": 1, "device": fp, "threads": threads, "torch": torch.__version__,
                  "protocol": "study round-robin", "networks_in_run": len(unique), "measured": stamp,
                  "latency_ms": {"median": min(ms), "round_medians": ms, "rounds": rounds,
                                 "repeats": repeats, "warmup": warmup, "spread": round(spread, 4)},
                  "machine": {**load.record(), "spread": round(spread, 4)}, "noisy": noisy, **info[spec.fingerprint]}
        with bench.claim(overwrite=True):
            bench.write_config({"run": str(run.path), "size": list(size), "threads": threads, "rounds": rounds,
                                "repeats": repeats, "warmup": warmup, "protocol": "study round-robin"})
            bench.start("benchmark", network=spec.name, size=list(size), device=fp)
            atomic_write_json(bench.path / "benchmark.json", result)
            own_size, price = _notebook_benchmark(run)
            price = price if own_size == tuple(size) else None  # a price at another size does not apply
            bench.update(metrics={"latency_ms": min(ms), "fps": 1000.0 / min(ms), "gflops": result["gflops"],
                                  "params_m": result["params_m"]}
                         | ({"expected_latency_ms": price} if price is not None else {}),
                         artifacts={"benchmark": "benchmark.json"}, latency_noisy=noisy, machine=result["machine"])
            bench.finish()
        rows.append({"run": str(rel), "network": spec.name, "latency_ms": min(ms), "round_medians": ms,
                     "spread": round(spread, 4), "noisy": noisy})
    drift = round_drift([medians[k] for k in unique])
    summary = {"root": str(root), "measured": stamp, "cpu": cpu_model(), "device": fp, "size": list(size),
               "threads": threads, "rounds": rounds, "repeats": repeats, "warmup": warmup, "networks": len(unique),
               "other_load": load.share, "busy": load.busy, "round_drift": drift,
               "noisy_retrains": sum(r["noisy"] for r in rows), "runs": rows,
               "baselines": {b: {"latency_ms": round(min(medians[sp.fingerprint]), 4),
                                 "round_medians": [round(m, 4) for m in medians[sp.fingerprint]]}
                             for b, sp in extra.items()}}
    atomic_write_json(root / "study_latency.json", summary)
    atomic_write_json(_history_path(root, stamp), summary)
    if load.busy:
        log.warning("study latency: other processes used %.0f%% of the machine while it was timed; every "
                    "benchmark is flagged noisy", 100 * (load.share or 0))
    return summary


def per_round_ratio(network: list[float], baseline: list[float]) -> float:
    """The median over rounds of network / baseline in the same round: how the studies score a latency
    target, since a host that drifts between rounds moves both numbers of a round alike."""
    if not network or len(network) != len(baseline):
        raise ValueError(f"per_round_ratio: {len(network)} and {len(baseline)} rounds")
    return statistics.median(n / b for n, b in zip(network, baseline))


def round_drift(round_medians: list[list[float]]) -> list[float]:
    """Per round, the geometric mean over networks of (its median in that round / its fastest round).

    1.0 is a round in which every network ran at its best. A slowdown common to a round (another
    tenant of the host, a frequency change: invisible to the in-VM load check) moves every network
    alike and shows here, where one network's spread cannot tell it from that network's own noise."""
    slowdowns = []  # per network: each round's median over its fastest
    for ms in round_medians:
        fastest = min(ms)
        slowdowns.append([m / fastest for m in ms])
    return [round(statistics.geometric_mean(per_round), 4) for per_round in zip(*slowdowns)]


def _history_path(root: Path, stamp: str) -> Path:
    """ROOT/study_latency/<time>.json, numbered when two runs end within one second."""
    base = root / HISTORY_FOLDER / stamp.replace(":", "")
    path, n = base.with_suffix(".json"), 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}.json")
    return path
