"""The latency table: every piece timed once per device fingerprint, calibrated, and what it predicts.

The spread between round medians is kept (`table_spread` = slowest rounds summed / fastest rounds
summed), and so is the CPU share other processes took while it was timed (`other_load`,
`workbench.loadcheck`): a table measured on a busy machine says so (`busy`), and its entries are
not cached as the device's.

Calibration: pieces timed in isolation run faster than inside a network (hot caches, reused
buffers, no allocation churn), so a sum of pieces underestimates. `calibrate` measures a few
reference networks of the space end to end and stores scale = median(measured / piece-sum) in the
table; every prediction (genotype or expected) is multiplied by it. A table without calibration
has scale 1. The network a latency target is a fraction of is timed in the same rounds
(`references`), so the target and the prices share one moment's units.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import statistics
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch import nn

from workbench import timelock
from workbench.device import device_fingerprint, fingerprint_key, latency_dtype, resolve_device, set_threads
from workbench.errors import DataError
from workbench.loadcheck import OtherLoad
from workbench.nas.genotypes import Genotype, genotype_from_dict, load_genotype
from workbench.nas.latency.probes import Probe
from workbench.nas.latency.timing import (
    NOISY_SPREAD,
    add_cache_entries,
    cache_file,
    measure_built,
    probe_call,
    read_cache,
    spread,
    time_rounds,
)

log = logging.getLogger(__name__)

LUT_SCHEMA = "workbench.latency_lut"
LUT_VERSION = 1


def genotype_probes(genotype: Genotype, image: tuple[int, int]) -> list[Probe]:
    """The pieces of a derived network, one probe per occurrence (their sum is its latency)."""
    from workbench.nas.space import get_space

    return get_space(genotype.space).genotype_probes(genotype, image)


def build_lut(probes: Iterable[Probe], image: tuple[int, int], device: str = "cpu", threads: int = 0,
              warmup: int = 2, repeats: int = 5, cache_dir: str | Path | None = None,
              use_cache: bool = True, meta: dict | None = None, rounds: int = 1, runtime: str = "eager",
              dtype: str = "float32") -> dict:
    """Time every distinct probe in `runtime`, weights and inputs in `dtype` (reusing cached entries
    of this device fingerprint, which holds both)."""
    from tqdm.auto import tqdm

    from workbench.nas.latency.runtimes import check_runtime

    dev = resolve_device(device)
    old_threads = torch.get_num_threads()
    threads = set_threads(threads or None) if dev.type == "cpu" else None
    try:
        check_runtime(runtime, dev, dtype)
        fp = device_fingerprint(dev, threads, latency_dtype(dtype), runtime=runtime)
        fp["input_size"] = list(image)
        unique = list({p.key: p for p in probes}.values())
        cfile = cache_file(fp, cache_dir)
        cached = read_cache(cfile) if use_cache else {}
        todo = [p for p in unique if p.key not in cached]
        log.info("latency table: %d entries, %d cached, measuring %d on %s (%d rounds)", len(unique),
                 len(unique) - len(todo), len(todo), fp["name"], rounds)
        with (tqdm(total=len(todo) * rounds, desc="lut", disable=None) as bar,
              timelock.quiet() if todo else contextlib.nullcontext(), OtherLoad() as load):
            if runtime == "eager":  # a fresh module per round: one probe's tensors live at a time
                factories = {p.key: (lambda p=p: probe_call(p, dev, dtype=dtype)) for p in todo}
            else:  # exported or compiled once, timed in every round
                calls = {p.key: probe_call(p, dev, runtime, threads, dtype) for p in todo}
                factories = {k: (lambda c=c: c) for k, c in calls.items()}
            timed = time_rounds(factories, dev, warmup, repeats, rounds, bar.update)
        busy = bool(todo) and load.busy
        spreads = {key: spread(ms) for key, ms in timed.items()}
        noisy = sorted((k for k, v in spreads.items() if v > NOISY_SPREAD), key=spreads.get, reverse=True)
        # sub-millisecond pieces jitter by several x even on an idle machine; what matters is the total
        table_spread = (sum(max(ms) for ms in timed.values()) / sum(min(ms) for ms in timed.values())
                        if timed else 1.0)
        if table_spread > NOISY_SPREAD:
            log.warning("latency table: the slowest rounds sum to %.1fx the fastest (%d of %d entries varied more "
                        "than %.1fx, worst %s: %.1fx); was another process using the %s?", table_spread,
                        len(noisy), len(timed), NOISY_SPREAD, noisy[0], spreads[noisy[0]], dev.type.upper())
        if busy:
            log.warning("latency table: other processes used %.0f%% of the machine while it was timed; the "
                        "table is flagged busy and its new entries are not cached for this device",
                        100 * load.share)
        cached.update({key: round(min(ms), 5) for key, ms in timed.items()})
        if todo and use_cache and not busy:
            add_cache_entries(cfile, fp, cached)  # another process may have added entries
    finally:
        torch.set_num_threads(old_threads)
    return {"schema": LUT_SCHEMA, "version": LUT_VERSION, "fingerprint": fp,
            "fingerprint_key": fingerprint_key(fp), "input_size": list(image), "warmup": warmup,
            "repeats": repeats, "rounds": rounds, "measured": len(todo), "cached": len(unique) - len(todo),
            "table_spread": round(table_spread, 4), "max_spread": round(max(spreads.values(), default=1.0), 4),
            "noisy_entries": len(noisy), "other_load": load.share if todo else None, "busy": busy,
            **(meta or {}), "entries": {p.key: cached[p.key] for p in unique}}


def load_lut(path: str | Path) -> dict:
    """Read and check a latency_lut.json (DataError on a foreign or malformed file)."""
    from workbench.jsonio import read_json

    try:
        lut = read_json(path)
    except (OSError, ValueError) as exc:
        raise DataError(path, f"cannot read latency table ({exc})") from None
    if not isinstance(lut, dict) or lut.get("schema") != LUT_SCHEMA:
        raise DataError(path, f"not a latency table (schema {LUT_SCHEMA!r} expected)")
    if lut.get("version") != LUT_VERSION:
        raise DataError(path, f"unknown latency table version {lut.get('version')!r}")
    if not isinstance(lut.get("entries"), dict) or len(lut.get("input_size", [])) != 2:
        raise DataError(path, "latency table lacks 'entries' or 'input_size'")
    return lut


def calibration_scale(lut: dict) -> float:
    return float((lut.get("calibration") or {}).get("scale", 1.0))


def calibrate(lut: dict, genotypes: list[Genotype], device: str = "cpu", warmup: int = 5,
              repeats: int = 10, rounds: int = 1, references: dict[str, Callable[[], nn.Module]] | None = None
              ) -> dict:
    """Measure reference networks end to end; store the median measured / piece-sum ratio in lut.

    `references` (key -> builder) are other networks timed in the same round-robin, e.g. the
    hand-designed network a latency target is a fraction of: their latencies are then in the same
    moment's units as the scale, so a target taken from them compares with the table's prices even
    when the machine's speed has drifted since the pieces were timed."""
    from workbench.nas.network import build_network

    image = tuple(lut["input_size"])
    runtime, dtype = lut_runtime(lut), lut_dtype(lut)
    builders = {f"genotype:{i}": (lambda g=g: build_network(g)) for i, g in enumerate(genotypes)}
    builders.update(references or {})
    warmup, repeats, rounds = (max(v, floor) for v, floor in zip((warmup, repeats, rounds), CALIBRATION_PROTOCOL))
    with timelock.quiet(), OtherLoad() as load:
        timed = measure_built(builders, image, device, warmup, repeats, rounds, runtime, dtype=dtype)
    own = [timed[f"genotype:{i}"] for i in range(len(genotypes))]
    ratios = [min(t) / sum(lookup(lut, p) for p in genotype_probes(g, image)) for t, g in zip(own, genotypes)]
    lut["calibration"] = {"scale": float(statistics.median(ratios)), "networks": len(ratios),
                          "ratios": [round(r, 4) for r in ratios], "other_load": load.share, "busy": load.busy,
                          "rounds": rounds, "protocol": [warmup, repeats, rounds],
                          "reference_estimator": REFERENCE_ESTIMATOR,
                          "references": {key: round(same_moment_ms(timed[key], own), 5) for key in references or {}},
                          "references_fastest": {key: round(min(timed[key]), 5) for key in references or {}},
                          # kept so that a later timing can fit the scale again beside its own networks
                          # (`same_run_prediction`)
                          "genotypes": [g.to_dict() for g in genotypes]}
    return lut


# (warmup, calls, rounds) at least, for a calibration: the study bench's protocol (`workbench
# ablations bench --rounds 21 --repeats 10`), the one its targets are judged with. With the search's
# table protocol instead (1 warmup call, median of 3, 7 rounds) hand-designed networks read 6-12 %
# off their bench ratio to the searched ones (benchmarks/results/headline/calibration_protocol_*.json,
# 2026-12-03 targets check), enough to move a ±10 % target by itself.
CALIBRATION_PROTOCOL = (3, 10, 21)
# A cached calibration timed with another estimator or protocol is timed again.
REFERENCE_ESTIMATOR = "per-round/rebuilt/{}-{}-{}".format(*CALIBRATION_PROTOCOL)


def same_moment_ms(reference: list[float], networks: list[list[float]]) -> float:
    """A reference network's latency in the units of the calibration networks' fastest rounds: per
    network, the median over rounds of reference / network in that round, times that network's
    fastest round; the median of those. A slowdown common to a round cancels in its ratio, and one
    slow round does not move a median. On the 2-vCPU Intel VM of 2026-12-02 the fastest-round ratio
    of two hand-designed networks read 1.86-1.99 (another pair 1.46-1.93) over five timing runs, the
    median per-round ratio 1.78-1.83 (1.41-1.49) (benchmarks/results/headline.md)."""
    return float(statistics.median(statistics.median(r / n for r, n in zip(reference, net)) * min(net)
                                   for net in networks))


OUTLIER_SCALE = 1.3  # a new scale this far (x or /) from the device's other spaces' median is re-timed once


def calibrate_cached(lut: dict, make_genotypes: Callable[[], list[Genotype]], device: str = "cpu",
                     threads: int = 0, cache_dir: str | Path | None = None, warmup: int = 5,
                     repeats: int = 10, use_cache: bool = True, rounds: int = 1,
                     references: dict[str, Callable[[], nn.Module]] | None = None,
                     rebuild: Callable[[str], Callable[[], nn.Module] | None] | None = None) -> dict:
    """`calibrate` with the result cached per device fingerprint and search space (its table keys).

    A cached calibration serves only if it keeps its networks (for `same_run_prediction`) and timed
    every asked-for reference with it; otherwise the
    calibration is timed again with them and, through `rebuild` (key -> builder), with the
    references the cached one had, so searches of one space aiming at different baselines share
    one calibration. A new scale far from the other spaces' on this
    device (more than OUTLIER_SCALE either way) is timed once more and the lower one kept: a
    calibration timed in a few slow seconds of a VM (1.45 against 0.91-0.97, measured in the
    2026-12-02 study) priced every network of its space at 1.5-2x."""
    from workbench.jsonio import atomic_write_json, read_json

    space = hashlib.sha1("\n".join(sorted(lut["entries"])).encode()).hexdigest()[:16]
    cfile = cache_file(lut["fingerprint"], cache_dir)
    stored = {}
    if use_cache and cfile.exists():
        try:
            stored = read_json(cfile)
        except (OSError, ValueError):
            stored = {}
    known = (stored.get("calibration") or {}).get(space)
    if known and "genotypes" in known and set(references or {}) <= set(known.get("references") or {}) and (
            not references or known.get("reference_estimator") == REFERENCE_ESTIMATOR):
        lut["calibration"] = known
        return lut
    if known and rebuild is not None:
        again = {k: rebuild(k) for k in known.get("references") or {}}  # None: a key of an older build
        references = {**{k: b for k, b in again.items() if b is not None}, **(references or {})}
    others = [c["scale"] for k, c in (stored.get("calibration") or {}).items() if k != space and not c.get("busy")]
    dev = resolve_device(device)
    old_threads = torch.get_num_threads()
    set_threads(threads or None) if dev.type == "cpu" else None
    try:
        calibrate(lut, make_genotypes(), str(dev), warmup, repeats, rounds, references)
        usual = statistics.median(others) if others else None
        if usual and max(lut["calibration"]["scale"] / usual, usual / lut["calibration"]["scale"]) > OUTLIER_SCALE:
            first = lut["calibration"]
            log.warning("latency calibration: scale %.3f is far from this device's other spaces' (%.3f); timing "
                        "it again", first["scale"], usual)
            calibrate(lut, make_genotypes(), str(dev), warmup, repeats, rounds, references)
            lut["calibration"] = {**min(first, lut["calibration"], key=lambda c: c["scale"]),
                                  "retimed": [first["scale"], lut["calibration"]["scale"]]}
        if lut["calibration"]["busy"]:
            log.warning("latency calibration: timed while other processes used %.0f%% of the machine; not cached",
                        100 * lut["calibration"]["other_load"])
            use_cache = False
    finally:
        torch.set_num_threads(old_threads)
    if use_cache:
        stored = read_json(cfile) if cfile.exists() else {"fingerprint": lut["fingerprint"], "entries": {}}
        stored.setdefault("calibration", {})[space] = lut["calibration"]
        atomic_write_json(cfile, stored)
    return lut


def lut_runtime(lut: dict) -> str:
    """The runtime a table was timed in (tables from before runtimes were recorded: eager)."""
    return (lut.get("fingerprint") or {}).get("runtime", "eager")


def lut_dtype(lut: dict) -> str:
    """The dtype a table's pieces were timed in (tables from before dtypes were asked for: float32)."""
    return (lut.get("fingerprint") or {}).get("dtype", "float32")


def check_lut_setting(lut: dict, runtime: str, where: str, dtype: str = "float32") -> None:
    """ConfigError naming `where` when a table was timed in another runtime or dtype than the one
    asked for: its prices are another deployment's (CUDA graphs ran networks 3.7-5.2x faster than
    eager on an H200, benchmarks/results/gpu_h200.md)."""
    from workbench.errors import ConfigError

    if lut_runtime(lut) != runtime:
        raise ConfigError(f"{where}: the latency table was timed in runtime {lut_runtime(lut)!r}, but "
                          f"{runtime!r} is asked for; build one with `workbench lut build --runtime {runtime}`")
    if lut_dtype(lut) != dtype:
        raise ConfigError(f"{where}: the latency table was timed in {lut_dtype(lut)}, but {dtype} is asked for; "
                          f"build one with `workbench lut build --dtype {dtype}`")


def lookup(lut: dict, probe: Probe) -> float:
    try:
        return float(lut["entries"][probe.key])
    except KeyError:
        raise DataError(lut.get("path"), f"latency table has no entry {probe.key!r} (built for another "
                        "search space or size; rebuild with `workbench lut build`)") from None


def predict_genotype_latency(genotype: Genotype | str | Path | dict, lut: dict | str | Path) -> float:
    """LUT-predicted end-to-end latency (ms) of the derived network at the table's input size."""
    g = load_genotype(genotype)
    if not isinstance(lut, dict):
        lut = {**load_lut(lut), "path": str(lut)}
    return calibration_scale(lut) * piece_sum(g, lut)


def piece_sum(genotype: Genotype, lut: dict) -> float:
    """The table's uncalibrated price (ms): its pieces summed."""
    return float(sum(lookup(lut, p) for p in genotype_probes(genotype, tuple(lut["input_size"]))))


def calibration_genotypes(lut: dict) -> list[Genotype]:
    """The networks a table's calibration was timed on (kept since 2026-12-03)."""
    stored = (lut.get("calibration") or {}).get("genotypes")
    if not stored:
        raise DataError(lut.get("path"), "latency table's calibration does not keep its networks (calibrated "
                        "before they were kept, or not calibrated); build one with `workbench lut build` and the "
                        "search's preset and settings, and name it with --lut")
    return [genotype_from_dict(d, "latency table calibration") for d in stored]


def same_run_prediction(lut: dict, genotype: Genotype, build: Callable[[], nn.Module], device: str = "cpu",
                        runtime: str = "eager") -> dict:
    """The table's price of `genotype` with its ms scale fitted again on the table's calibration
    networks timed in the same rounds as the network itself (`build`), beside that measurement.

    Why: on a VM the machine's speed moves between moments, and a calibration timed a minute before a
    measurement carries its moment into every price. Fitted in the same run, the table priced 12
    random networks within 2.2-4.3 % on average in 7 of 7 runs, against 3.1-7.7 % for its own
    calibration (benchmarks/results/latency_predictor.md, AMD EPYC VM, 2026-12-03)."""
    refs = calibration_genotypes(lut)
    from workbench.nas.network import build_network

    builders = {f"calibration:{i}": (lambda g=g: build_network(g)) for i, g in enumerate(refs)}
    builders["network"] = build
    with timelock.quiet(), OtherLoad() as load:
        timed = measure_built(builders, tuple(lut["input_size"]), device, *CALIBRATION_PROTOCOL, runtime,
                              dtype=lut_dtype(lut))
    fastest = [min(timed[f"calibration:{i}"]) for i in range(len(refs))]
    scale = float(statistics.median(t / piece_sum(g, lut) for t, g in zip(fastest, refs)))
    predicted, measured = scale * piece_sum(genotype, lut), min(timed["network"])
    return {"scale": scale, "table_scale": calibration_scale(lut), "predicted_ms": predicted,
            "measured_ms": measured, "error_pct": 100 * (predicted - measured) / measured,
            "calibration_fastest_ms": [round(t, 5) for t in fastest], "protocol": list(CALIBRATION_PROTOCOL),
            "other_load": load.share, "busy": load.busy}
