"""Latency lookup table (LUT) and the differentiable expected latency.

The LUT times, on the target device at the target input size, every piece a network of the search
space is made of: every candidate op at every supernet position (its channels, stride and input
resolution), the stem, the head, and what an op-sum misses: each cell's input preprocessing
(pool/1x1 conv/resize), the node additions and the concat + 1x1 output conv. Entries are keyed by a
self-describing signature ("op/sep_conv_3x3/c32/s1/16x32"), so a table serves the supernet and any
genotype of it, and measurements are cached per device fingerprint and reused across presets.

Timing: batch 1, eval mode, inference_mode, a fixed thread count on CPU, `torch.cuda.synchronize`
around each call on GPU. Every entry is timed in `rounds` rounds that visit all entries in turn
(`warmup` untimed calls, then the median of `repeats`); the entry is the fastest round median. A
shared machine's load comes in bursts of seconds: a burst spoils the rounds it overlaps, not the
entry, and what is left estimates the unloaded latency, the quantity a LUT can predict. The spread
between round medians is kept (`table_spread` = slowest rounds summed / fastest rounds summed), so
a table measured on a busy machine says so.

Expected latency (differentiable in alpha), an estimate of the derived network's latency:

    E[L] = stem + head + sum_cells [ fixed_k + sum_edges keep(e) * sum_ops p_k(e, op) * LUT(op at e) ]

fixed_k = preprocessing + one addition per node + output conv; keep(e) = min(2, d)/d for an edge
into a node with d incoming edges, because derivation keeps two edges per node. The zero op costs 0.

Calibration: pieces timed in isolation run faster than inside a network (hot caches, reused
buffers, no allocation churn), so a sum of pieces underestimates. `calibrate` measures a few
reference networks of the space end to end and stores scale = median(measured / piece-sum) in the
table; every prediction (genotype or expected) is multiplied by it. A table without calibration
has scale 1.
"""

from __future__ import annotations

import hashlib
import logging
import os
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from workbench.device import device_fingerprint, fingerprint_key, resolve_device, set_threads, synchronize
from workbench.errors import DataError
from workbench.nas.cells import CellSpec, Preprocess, SegHead, Stem, feature_size
from workbench.nas.genotypes import Genotype, load_genotype
from workbench.nas.operations import NONE, ReLUConvBN, build_op

log = logging.getLogger(__name__)

LUT_SCHEMA = "workbench.latency_lut"
LUT_VERSION = 1


@dataclass(frozen=True)
class Probe:
    """One thing to time: a module factory and the shapes of its inputs (batch 1)."""

    key: str
    make: Callable[[], nn.Module] = field(compare=False)
    shapes: tuple[tuple[int, ...], ...] = field(compare=False)
    extra: tuple = field(default=(), compare=False)  # trailing non-tensor args (target sizes)


class _Add(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


class _CatProject(nn.Module):
    def __init__(self, n: int, c: int):
        super().__init__()
        self.project = ReLUConvBN(n * c, c, 1)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat(xs, dim=1))


def _hw(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


# -- probes: the pieces of a network ------------------------------------------------------------
def stem_probe(channels: int, image: tuple[int, int]) -> Probe:
    return Probe(f"stem/c{channels}/{_hw(image)}", lambda: Stem(channels), ((1, 3, *image),))


def head_probe(c_in: int, c_head: int, classes: int, stride: int, image: tuple[int, int]) -> Probe:
    size = feature_size(image, stride)
    return Probe(f"head/c{c_in}-{c_head}-k{classes}/{_hw(size)}-{_hw(image)}",
                 lambda: SegHead(c_in, c_head, classes), ((1, c_in, *size),), (tuple(image),))


def op_probe(spec: CellSpec, src: int, op: str, image: tuple[int, int]) -> Probe:
    stride = spec.edge_stride if src < spec.n_inputs else 1
    size = feature_size(image, spec.in_stride if src < spec.n_inputs else spec.stride)
    c = spec.channels
    return Probe(f"op/{op}/c{c}/s{stride}/{_hw(size)}", lambda: build_op(op, c, stride), ((1, c, *size),))


def preprocess_probes(spec: CellSpec, image: tuple[int, int]) -> list[Probe]:
    out, target = [], feature_size(image, spec.in_stride)
    for c_in, s_in in zip(spec.input_channels, spec.input_strides):
        size, c, st = feature_size(image, s_in), spec.channels, spec.in_stride
        out.append(Probe(f"pre/c{c_in}-{c}/s{s_in}-{st}/{_hw(size)}-{_hw(target)}",
                         lambda c_in=c_in, s_in=s_in, c=c, st=st: Preprocess(c_in, c, s_in, st),
                         ((1, c_in, *size),), (target,)))
    return out


def add_probe(spec: CellSpec, image: tuple[int, int]) -> Probe:
    size = feature_size(image, spec.stride)
    return Probe(f"add/c{spec.channels}/{_hw(size)}", _Add, ((1, spec.channels, *size),) * 2)


def concat_probe(spec: CellSpec, n: int, image: tuple[int, int]) -> Probe:
    size, c = feature_size(image, spec.stride), spec.channels
    return Probe(f"cat/n{n}/c{c}/{_hw(size)}", lambda: _CatProject(n, c), ((1, c, *size),) * n)


def _kept(indegree: int) -> int:
    return min(2, indegree)


def cell_fixed_probes(spec: CellSpec, image: tuple[int, int], adds: int, concat: int) -> list[Probe]:
    """Per-cell cost the op-sum misses, as a list of probes (repeated `adds` times for additions)."""
    return preprocess_probes(spec, image) + [add_probe(spec, image)] * adds + [concat_probe(spec, concat, image)]


def supernet_probes(specs: list[CellSpec], ops: list[str], stem_channels: int, head_channels: int,
                    num_classes: int, image: tuple[int, int]) -> list[Probe]:
    """Everything `expected latency` and any derived genotype of this supernet need."""
    probes = [stem_probe(stem_channels, image),
              head_probe(specs[-1].channels, head_channels, num_classes, specs[-1].stride, image)]
    for spec in specs:
        probes += cell_fixed_probes(spec, image, 1, spec.nodes)
        probes += [op_probe(spec, src, op, image) for src, _ in spec.edges() for op in ops if op != NONE]
    return probes


def genotype_probes(genotype: Genotype, image: tuple[int, int]) -> list[Probe]:
    """The pieces of a derived network, one probe per occurrence (sum them for its latency)."""
    from workbench.nas.network import genotype_specs

    specs, fusion, aggregation = genotype_specs(genotype)
    pairs = list(zip(specs, genotype.cells))
    pairs += [(s, c) for s, c in ((fusion, genotype.fusion), (aggregation, genotype.aggregation)) if s]
    last = pairs[-1][0]
    probes = [stem_probe(genotype.stem_channels, image),
              head_probe(last.channels, genotype.head_channels, genotype.num_classes, last.stride, image)]
    for spec, cell in pairs:
        indeg = {n: sum(e.dst == n for e in cell.edges) for n in spec.node_ids()}
        probes += cell_fixed_probes(spec, image, sum(d - 1 for d in indeg.values()), len(cell.concat))
        probes += [op_probe(spec, e.src, e.op, image) for e in cell.edges]
    return probes


# -- timing -----------------------------------------------------------------------------------
@torch.inference_mode()
def time_call(fn: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> float:
    """Median milliseconds of fn() after warm-up, synchronized on CUDA."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        synchronize(device)
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        times.append((time.perf_counter() - t0) * 1000.0)
    return float(statistics.median(times))


def time_rounds(factories: dict[str, Callable[[], Callable[[], object]]], device: torch.device, warmup: int,
                repeats: int, rounds: int = 1, progress: Callable[[int], None] | None = None
                ) -> dict[str, list[float]]:
    """Round medians (ms) of every call, round-robin: a factory makes the call (module and inputs)
    anew in each round, so only one entry's tensors live at a time; the caller takes the min."""
    out: dict[str, list[float]] = {key: [] for key in factories}
    for _ in range(rounds):
        for key, make in factories.items():
            fn = make()
            out[key].append(time_call(fn, device, warmup, repeats))
            del fn
            if progress:
                progress(1)
    return out


def _probe_call(probe: Probe, device: torch.device) -> Callable[[], object]:
    module = probe.make().to(device).eval()
    inputs = [torch.randn(s, device=device) for s in probe.shapes]
    return lambda: module(*inputs, *probe.extra)


def measure_networks(models: dict[str, nn.Module], size: tuple[int, int], device: str | torch.device = "cpu",
                     warmup: int = 3, repeats: int = 10, rounds: int = 1) -> dict[str, list[float]]:
    """Round medians (ms) of each model's end-to-end forward on one image (batch 1, eval), interleaved."""
    dev = resolve_device(str(device))
    x = torch.randn(1, 3, *size, device=dev)
    for model in models.values():
        model.to(dev).eval()
    return time_rounds({k: (lambda m=m: lambda: m(x)) for k, m in models.items()}, dev, warmup, repeats, rounds)


def measure_network_latency(model: nn.Module, size: tuple[int, int], device: str | torch.device = "cpu",
                            warmup: int = 3, repeats: int = 10, rounds: int = 1) -> float:
    """End-to-end latency (ms) of model on one image of `size`: the fastest of `rounds` round medians."""
    return min(measure_networks({"model": model}, size, device, warmup, repeats, rounds)["model"])


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


def _read_cache(path: Path) -> dict[str, float]:
    from workbench.jsonio import read_json

    try:
        return dict(read_json(path).get("entries", {}))
    except (OSError, ValueError, AttributeError):
        return {}


def build_lut(probes: Iterable[Probe], image: tuple[int, int], device: str = "cpu", threads: int = 0,
              warmup: int = 2, repeats: int = 5, cache_dir: str | Path | None = None,
              use_cache: bool = True, meta: dict | None = None, rounds: int = 1) -> dict:
    """Time every distinct probe (reusing cached entries of this device fingerprint)."""
    from tqdm.auto import tqdm

    from workbench.jsonio import atomic_write_json

    dev = resolve_device(device)
    old_threads = torch.get_num_threads()
    threads = set_threads(threads or None) if dev.type == "cpu" else None
    try:
        fp = device_fingerprint(dev, threads)
        fp["input_size"] = list(image)
        unique = list({p.key: p for p in probes}.values())
        cfile = cache_file(fp, cache_dir)
        cached = _read_cache(cfile) if use_cache else {}
        todo = [p for p in unique if p.key not in cached]
        log.info("latency table: %d entries, %d cached, measuring %d on %s (%d rounds)", len(unique),
                 len(unique) - len(todo), len(todo), fp["name"], rounds)
        with tqdm(total=len(todo) * rounds, desc="lut", disable=None) as bar:
            timed = time_rounds({p.key: (lambda p=p: _probe_call(p, dev)) for p in todo}, dev, warmup, repeats,
                                rounds, bar.update)
        spreads = {key: spread(ms) for key, ms in timed.items()}
        noisy = sorted((k for k, v in spreads.items() if v > NOISY_SPREAD), key=spreads.get, reverse=True)
        # sub-millisecond pieces jitter by several x even on an idle machine; what matters is the total
        table_spread = (sum(max(ms) for ms in timed.values()) / sum(min(ms) for ms in timed.values())
                        if timed else 1.0)
        if table_spread > NOISY_SPREAD:
            log.warning("latency table: the slowest rounds sum to %.1fx the fastest (%d of %d entries varied more "
                        "than %.1fx, worst %s: %.1fx); was another process using the %s?", table_spread,
                        len(noisy), len(timed), NOISY_SPREAD, noisy[0], spreads[noisy[0]], dev.type.upper())
        cached.update({key: round(min(ms), 5) for key, ms in timed.items()})
        if todo and use_cache:
            merged = {**_read_cache(cfile), **cached}  # another process may have added entries
            atomic_write_json(cfile, {"fingerprint": fp, "entries": merged})
    finally:
        torch.set_num_threads(old_threads)
    return {"schema": LUT_SCHEMA, "version": LUT_VERSION, "fingerprint": fp,
            "fingerprint_key": fingerprint_key(fp), "input_size": list(image), "warmup": warmup,
            "repeats": repeats, "rounds": rounds, "measured": len(todo), "cached": len(unique) - len(todo),
            "table_spread": round(table_spread, 4), "max_spread": round(max(spreads.values(), default=1.0), 4),
            "noisy_entries": len(noisy),
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
              repeats: int = 10, rounds: int = 1) -> dict:
    """Measure reference networks end to end; store the median measured / piece-sum ratio in lut."""
    from workbench.nas.network import build_network

    image = tuple(lut["input_size"])
    timed = measure_networks({str(i): build_network(g) for i, g in enumerate(genotypes)}, image, device, warmup,
                             repeats, rounds)
    ratios = [min(timed[str(i)]) / sum(lookup(lut, p) for p in genotype_probes(g, image))
              for i, g in enumerate(genotypes)]
    lut["calibration"] = {"scale": float(statistics.median(ratios)), "networks": len(ratios),
                          "ratios": [round(r, 4) for r in ratios]}
    return lut


def calibrate_cached(lut: dict, make_genotypes: Callable[[], list[Genotype]], device: str = "cpu",
                     threads: int = 0, cache_dir: str | Path | None = None, warmup: int = 5,
                     repeats: int = 10, use_cache: bool = True, rounds: int = 1) -> dict:
    """`calibrate` with the result cached per device fingerprint and search space (its table keys)."""
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
    if known:
        lut["calibration"] = known
        return lut
    dev = resolve_device(device)
    old_threads = torch.get_num_threads()
    set_threads(threads or None) if dev.type == "cpu" else None
    try:
        calibrate(lut, make_genotypes(), str(dev), warmup, repeats, rounds)
    finally:
        torch.set_num_threads(old_threads)
    if use_cache:
        stored = read_json(cfile) if cfile.exists() else {"fingerprint": lut["fingerprint"], "entries": {}}
        stored.setdefault("calibration", {})[space] = lut["calibration"]
        atomic_write_json(cfile, stored)
    return lut


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
    image = tuple(lut["input_size"])
    return calibration_scale(lut) * float(sum(lookup(lut, p) for p in genotype_probes(g, image)))


class LatencyModel(nn.Module):
    """E[latency] of a supernet as a differentiable function of its relaxed op weights."""

    def __init__(self, lut: dict, specs: list[CellSpec], ops: list[str], stem_channels: int,
                 head_channels: int, num_classes: int):
        super().__init__()
        image = tuple(lut["input_size"])
        fixed = lookup(lut, stem_probe(stem_channels, image))
        fixed += lookup(lut, head_probe(specs[-1].channels, head_channels, num_classes, specs[-1].stride, image))
        tables = []
        for spec in specs:
            edges = spec.edges()
            indeg = {n: sum(d == n for _, d in edges) for n in spec.node_ids()}
            fixed += sum(lookup(lut, p) for p in cell_fixed_probes(
                spec, image, sum(_kept(d) - 1 for d in indeg.values()), spec.nodes))
            table = torch.zeros(len(edges), len(ops))
            for e, (src, dst) in enumerate(edges):
                keep = _kept(indeg[dst]) / indeg[dst]
                for o, op in enumerate(ops):
                    if op != NONE:
                        table[e, o] = keep * lookup(lut, op_probe(spec, src, op, image))
            tables.append(table)
        scale = calibration_scale(lut)
        self.register_buffer("table", scale * torch.cat(tables))  # (all edges, ops)
        self.fixed_ms = scale * fixed

    def forward(self, weights: list[torch.Tensor]) -> torch.Tensor:
        return self.fixed_ms + (torch.cat(weights) * self.table).sum()

    def uniform(self) -> torch.Tensor:
        """E[latency] with every op equally likely (the scale of the target-free latency term)."""
        return self.fixed_ms + self.table.mean(dim=1).sum()


def latency_term(expected_ms: torch.Tensor, reference_ms: float, target_ms: float | None,
                 mode: str = "above") -> torch.Tensor:
    """Scale-free latency loss: L / L0 without a target; max(0, L/T - 1) ('above') or |L/T - 1| ('abs')."""
    if target_ms is None:
        return expected_ms / reference_ms
    ratio = expected_ms / target_ms - 1.0
    return torch.relu(ratio) if mode == "above" else ratio.abs()
