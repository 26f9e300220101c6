"""Inference benchmark of one network at one input size: latency, FPS, FLOPs, params, memory.

Latency is measured at batch 1 in `torch.inference_mode` in the latency table's protocol: `rounds`
rounds of warm-up runs then `repeats` timed runs (each followed by `torch.cuda.synchronize` on a
GPU), with the intra-op thread count fixed; the fastest round's median and 10th/90th percentiles
are reported, with the spread between rounds and the CPU share other processes took meanwhile
(`workbench.loadcheck`); either one too high marks the result `noisy`. FLOPs come from `torch.utils.flop_counter` (a
multiply-add counts 2 FLOPs; `gmacs` = FLOPs / 2, the unit many papers call "FLOPs").

Peak memory: on CUDA `torch.cuda.max_memory_allocated` during one forward; on the CPU (no
allocator statistics there) the growth of the peak resident set size (`ru_maxrss`) of a fresh
Python process across one forward, plus the weights. Every result carries the device
fingerprint, dtype, thread count, torch version and resolution it was measured with.
"""

from __future__ import annotations

import json
import logging
import resource
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch.utils.flop_counter import FlopCounterMode

from workbench import timelock
from workbench.config import field, from_dict, to_dict
from workbench.device import device_fingerprint, latency_dtype, resolve_device, set_threads, synchronize
from workbench.errors import ConfigError, DataError
from workbench.jsonio import atomic_write_json, read_json
from workbench.loadcheck import OtherLoad
from workbench.nas.latency.runtimes import bind, check_runtime
from workbench.nas.latency.timing import NOISY_SPREAD
from workbench.outputs import check_output
from workbench.runs import RunDir
from workbench.seg.model import ModelSpec, build_from_spec, check_size, count_params, model_spec

log = logging.getLogger(__name__)

PAPER_SIZES = {"cityscapes-full": (1024, 2048), "paper": (768, 1536), "half": (512, 1024)}


@dataclass
class BenchmarkConfig:
    genotype: str | None = field(None, help="genotype.json to benchmark")
    baseline: str | None = field(None, help="baseline name to benchmark")
    run: str | None = field(None, help="a retrain run directory (its genotype or baseline)")
    size: tuple[int, int] = field((512, 1024), help="input HxW (768x1536, 1024x2048 in the papers)")
    num_classes: int | None = field(None, min=1, help="output classes (default: genotype's, else 19)")
    device: str = field("auto", help="cpu, cuda, cuda:N or auto")
    dtype: Literal["float32", "float16", "bfloat16"] = field("float32", help="weights and input dtype")
    runtime: str = field("eager", help="eager, compile, onnxruntime (CPU) or cudagraphs (GPU): what the network ships in")
    threads: int | None = field(None, min=1, help="CPU intra-op threads (fixed for the measurement)")
    warmup: int = field(10, min=0, help="untimed runs first")
    repeats: int = field(50, min=1, help="timed runs per round")
    rounds: int = field(3, min=1, help="rounds; the fastest round's numbers are reported (load bursts)")
    memory: bool = field(True, help="measure peak memory (CPU: one extra subprocess)")
    lut: str | None = field(None, help="latency_lut.json (default: the genotype's search run's)")
    lut_same_run: bool = field(False, help="also price the network with the table's calibration networks timed "
                               "in the same rounds as it (its ms scale from this moment of the machine)")
    overwrite: bool = field(False, help="replace an earlier benchmark in the run directory")

    def validate(self) -> None:
        if sum(x is not None for x in (self.genotype, self.baseline, self.run)) != 1:
            raise ConfigError("genotype/baseline/run: give exactly one network to benchmark")


def _lut_candidates(cfg: BenchmarkConfig, spec: ModelSpec) -> list[Path]:
    """Where a latency table for a genotype may be: --lut, beside the genotype, beside the genotype
    a retrain run was trained from (its search run)."""
    if cfg.lut:
        return [Path(cfg.lut)]
    out = [Path(spec.name).parent / "latency_lut.json"]
    if cfg.run is not None:
        source = RunDir(cfg.run).record().get("genotype_source")
        if source:
            out.append(Path(source).parent / "latency_lut.json")
    return out


def network_spec(cfg: BenchmarkConfig) -> ModelSpec:
    """The network a benchmark config names (a run's genotype or baseline, a genotype file, a baseline)."""
    if cfg.run is not None:
        run = RunDir(cfg.run)
        rcfg = run.read_config()
        if not rcfg:
            raise ConfigError(f"run: {run.path} has no config.json")
        if rcfg.get("baseline"):
            return model_spec(genotype=None, baseline=rcfg["baseline"], num_classes=rcfg.get("num_classes"))
        genotype = run.genotype_path if run.genotype_path.exists() else rcfg.get("genotype")
        return model_spec(genotype=genotype, baseline=None, num_classes=rcfg.get("num_classes"))
    return model_spec(genotype=cfg.genotype, baseline=cfg.baseline, num_classes=cfg.num_classes)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@torch.inference_mode()
def measure_latency(model, x: torch.Tensor, warmup: int, repeats: int, rounds: int = 3) -> dict:
    """Batch latency statistics in milliseconds, in the latency table's protocol: `rounds` rounds of
    `warmup` untimed and `repeats` timed runs; the reported numbers are the fastest round's (a burst
    of load spoils the rounds it overlaps), and `spread` (slowest / fastest round median) says how
    steady the machine was."""
    import time

    per_round = []
    for _ in range(rounds):
        for _ in range(warmup):
            model(x)
        synchronize(x.device)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(x)
            synchronize(x.device)
            times.append((time.perf_counter() - t0) * 1e3)
        per_round.append(times)
    medians = [statistics.median(t) for t in per_round]
    best = per_round[medians.index(min(medians))]
    return {"median": min(medians), "p10": _percentile(best, 0.1), "p90": _percentile(best, 0.9),
            "mean": statistics.fmean(best), "min": min(best), "max": max(best), "repeats": repeats,
            "warmup": warmup, "rounds": rounds, "round_medians": [round(m, 4) for m in medians],
            "spread": round(max(medians) / min(medians), 4)}


@torch.inference_mode()
def count_flops(model, x: torch.Tensor) -> int:
    counter = FlopCounterMode(display=False)
    with counter:
        model(x)
    return int(counter.get_total_flops())


def _cuda_memory(model, x: torch.Tensor) -> dict:
    synchronize(x.device)
    torch.cuda.reset_peak_memory_stats(x.device)
    before = torch.cuda.memory_allocated(x.device)
    with torch.inference_mode():
        model(x)
    synchronize(x.device)
    peak = torch.cuda.max_memory_allocated(x.device)
    return {"peak_mb": peak / 2**20, "activations_mb": (peak - before) / 2**20,
            "weights_mb": None,
            "method": "torch.cuda.max_memory_allocated during one forward (weights + input + activations)"}


def _cpu_memory(spec: ModelSpec, size: tuple[int, int], threads: int, dtype: str = "float32") -> dict:
    """Peak RSS growth of a fresh process over one forward in `dtype` (a process of its own so that
    the high-water mark is not the benchmark's own)."""
    args = json.dumps({"kind": spec.kind, "name": spec.name, "num_classes": spec.num_classes,
                       "size": list(size), "threads": threads, "dtype": dtype})
    code = f"from workbench.seg.benchmark import _memory_child; _memory_child({args!r})"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        log.warning("CPU memory measurement failed: %s", proc.stderr.strip().splitlines()[-1:] or "?")
        return {"peak_mb": None, "activations_mb": None, "method": "failed"}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return {**out, "method": "peak-RSS growth of a fresh process over one forward (Linux VmHWM reset "
                             "via /proc/self/clear_refs), plus the weights"}


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _memory_child(args: str) -> None:
    a = json.loads(args)
    torch.set_num_threads(a["threads"])
    spec = model_spec(genotype=a["name"] if a["kind"] == "genotype" else None,
                      baseline=a["name"] if a["kind"] == "baseline" else None, num_classes=a["num_classes"])
    dtype = latency_dtype(a.get("dtype", "float32"))
    model = build_from_spec(spec).eval().to(dtype)
    x = torch.randn(1, 3, *a["size"]).to(dtype)
    weights = sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers()))
    try:  # Linux: reset the peak-RSS mark (VmHWM) so that model construction does not count
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        before, method = _status_kib("VmRSS"), "VmHWM"
    except OSError:
        before, method = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "ru_maxrss"
    with torch.inference_mode():
        model(x)
    after = _status_kib("VmHWM") if method == "VmHWM" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    act = max(after - before, 0) / 1024
    print(json.dumps({"activations_mb": act, "peak_mb": act + weights / 2**20, "weights_mb": weights / 2**20,
                      "rss_counter": method}))


def _lut_prediction(cfg: BenchmarkConfig, spec: ModelSpec, device_fp: dict) -> tuple[dict, dict | None]:
    """(record, table): the LUT-predicted latency when a LUT for this device and size exists, else
    why not, and the table read (once: `--lut-same-run` prices with it again after the timing)."""
    if spec.kind != "genotype":
        return {"predicted_ms": None, "path": None, "note": "baseline: not in the search space"}, None
    path = next((p for p in _lut_candidates(cfg, spec) if p.is_file()), None)
    if path is None:
        if cfg.lut:
            raise ConfigError(f"lut: {cfg.lut} not found")
        return {"predicted_ms": None, "path": None, "note": "no latency_lut.json beside the genotype or its search run"}, None
    from workbench.nas.genotypes import load_genotype
    from workbench.nas.latency.table import load_lut, predict_genotype_latency

    lut = {**load_lut(path), "path": str(path)}
    lut_fp, lut_size = _lut_meta(lut, path)
    mismatch = []
    if lut_size is not None and tuple(lut_size) != tuple(cfg.size):
        mismatch.append(f"size {lut_size[0]}x{lut_size[1]}")
    if lut_fp:
        for key in ("device_type", "name", "dtype", "threads"):
            if key in lut_fp and key in device_fp and lut_fp[key] != device_fp[key]:
                mismatch.append(f"{key} {lut_fp[key]}")
        if cfg.lut:  # the table the user named was timed in another runtime or dtype: refuse it
            from workbench.nas.latency.table import check_lut_setting

            check_lut_setting({"fingerprint": lut_fp}, cfg.runtime, "lut", cfg.dtype)
        if lut_fp.get("runtime", "eager") != cfg.runtime:
            mismatch.append(f"runtime {lut_fp.get('runtime', 'eager')}")
        if lut_fp.get("allocator", "system") != device_fp.get("allocator", "system"):  # 1.15-1.27x apart
            mismatch.append(f"allocator {lut_fp.get('allocator', 'system')}")
    if mismatch:
        return {"predicted_ms": None, "path": str(path),
                "note": f"LUT measured for another setting ({', '.join(mismatch)})"}, lut
    try:
        predicted = float(predict_genotype_latency(load_genotype(spec.genotype), lut))
    except DataError:
        if cfg.lut:  # the table the user named does not cover this network: say so
            raise
        # the search's table does not cover a network widened or deepened after the search
        return {"predicted_ms": None, "path": str(path),
                "note": "the search's latency table has no entries for some pieces of this network (widened or "
                        "deepened after the search); `workbench lut build --genotype` times one"}, lut
    if cfg.lut_same_run:
        from workbench.nas.latency.table import calibration_genotypes

        calibration_genotypes(lut)  # a table that cannot do it fails before anything is timed
    return {"predicted_ms": predicted, "path": str(path), "note": None}, lut


def _runtime_call(call):
    """`measure_latency` calls model(x): a bound runtime call already holds its input."""
    return lambda _x: call()


def _lut_meta(lut, path: Path) -> tuple[dict | None, list | None]:
    """(device fingerprint, input size) of a LUT, read from the object or the JSON file."""
    raw = lut if isinstance(lut, dict) else None
    if raw is None:
        try:
            raw = read_json(path)
        except (OSError, ValueError):
            raw = {}
    fp = getattr(lut, "fingerprint", None) or getattr(lut, "device", None) or raw.get("fingerprint") \
        or raw.get("device")
    size = getattr(lut, "input_size", None) or raw.get("input_size")
    return (fp if isinstance(fp, dict) else None), size


def benchmark_inputs(cfg: BenchmarkConfig) -> list[Path | str | None]:
    """Files a benchmark reads (outputs must not be any of them)."""
    return [cfg.genotype, cfg.lut, *(RunDir(cfg.run).input_files() if cfg.run else [])]


def run_benchmark(config: BenchmarkConfig | dict, run_dir: str | Path | None = None) -> dict:
    """Benchmark one network; with run_dir, also write benchmark.json and a 'benchmark' run record."""
    cfg = from_dict(BenchmarkConfig, config, source="bench")
    if run_dir is None:
        return _benchmark(cfg)
    run = RunDir(run_dir)
    check_output(run.path, kind="run", inputs=benchmark_inputs(cfg))
    with run.claim(overwrite=cfg.overwrite):
        result = _benchmark(cfg)
        run.write_config(to_dict(cfg))
        run.start("benchmark", network=result["network"]["name"], size=list(cfg.size), device=result["device"])
        atomic_write_json(run.path / "benchmark.json", result)
        run.update(metrics={"latency_ms": result["latency_ms"]["median"], "fps": result["fps"],
                            "gflops": result["gflops"], "params_m": result["params_m"],
                            "expected_latency_ms": result["lut"]["predicted_ms"]},
                   artifacts={"benchmark": "benchmark.json"}, latency_noisy=result["noisy"],
                   machine=result["machine"])
        run.finish()
    return result


def _benchmark(cfg: BenchmarkConfig) -> dict:
    device = resolve_device(cfg.device)
    dtype = latency_dtype(cfg.dtype)
    threads = set_threads(cfg.threads)
    spec = network_spec(cfg)
    torch.manual_seed(0)
    model = build_from_spec(spec).eval()
    check_size(cfg.size, model.size_divisor)
    params = count_params(model)
    x = torch.randn(1, 3, *cfg.size)
    flops = count_flops(model, x)  # on the CPU, in fp32: FLOPs do not depend on the device
    model = model.to(device=device, dtype=dtype)
    x = x.to(device=device, dtype=dtype)
    check_runtime(cfg.runtime, device, cfg.dtype)
    fp = device_fingerprint(device, threads, dtype, runtime=cfg.runtime)
    lut, table = _lut_prediction(cfg, spec, fp)
    if cfg.lut_same_run and lut["predicted_ms"] is None:
        raise ConfigError(f"lut_same_run: no latency table prices this network ({lut['note']})")
    call = model if cfg.runtime == "eager" else _runtime_call(bind(model, [x], cfg.runtime, threads))
    with timelock.quiet() as quiet, OtherLoad() as load:
        latency = measure_latency(call, x, cfg.warmup, cfg.repeats, cfg.rounds)
    memory = None
    if cfg.memory:
        memory = _cuda_memory(model, x) if device.type == "cuda" else _cpu_memory(spec, cfg.size, threads, cfg.dtype)
    if cfg.lut_same_run:
        from workbench.nas.genotypes import load_genotype
        from workbench.nas.latency.table import same_run_prediction

        lut["same_run"] = same_run_prediction(table, load_genotype(spec.genotype), lambda: build_from_spec(spec),
                                              str(device), cfg.runtime)
    median = latency["median"]
    result = {
        "network": {"kind": spec.kind, "name": spec.name, "fingerprint": spec.fingerprint,
                    "num_classes": spec.num_classes, "output_stride": int(model.output_stride),
                    "size_divisor": int(model.size_divisor)},
        "size": list(cfg.size), "batch": 1, "device": fp, "dtype": cfg.dtype, "threads": threads, "runtime": cfg.runtime,
        "torch": torch.__version__,
        "latency_ms": latency, "fps": 1000.0 / median,
        "params": params, "params_m": params / 1e6,
        "flops": flops, "gflops": flops / 1e9, "gmacs": flops / 2e9,
        "achieved_gflops_per_s": flops / 1e9 / (median / 1e3),
        "memory": memory, "lut": lut, "machine": {**load.record(), **quiet, "spread": latency["spread"]},
        "noisy": load.busy or latency["spread"] > NOISY_SPREAD,
        "lut_error_pct": None if lut["predicted_ms"] is None else 100 * (lut["predicted_ms"] - median) / median,
        "config": to_dict(cfg),
    }
    log.info("%s @ %dx%d on %s (%s, %d threads): %.2f ms median [p10 %.2f, p90 %.2f], %.1f FPS, "
             "%.2f GFLOPs, %.2f M params", spec.name, *cfg.size, fp["name"], cfg.dtype, threads, median,
             latency["p10"], latency["p90"], result["fps"], result["gflops"], result["params_m"])
    return result
