"""Inference efficiency of derived networks and baselines against this machine's matmul peak.

1. Measures the fp32 matrix-multiply peak (GFLOP/s) of the device with `torch.mm` on large square
   matrices at a fixed thread count (best of several runs: the attainable peak).
2. Benchmarks every derived network (genotype.json files under --runs, --genotype paths, or one
   from a quick search with --quick-search) and every baseline at 512x1024 (batch 1) with
   `workbench.steps.benchmark`: latency (median, p10/p90), GFLOPs, achieved GFLOP/s and the
   fraction of the matmul peak it reaches.
3. Writes one JSON (default benchmarks/results/inference.json) and prints a markdown table.

    python benchmarks/inference.py --device cpu --threads 2
    python benchmarks/inference.py --runs runs/ --device cuda --size 1024x2048
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import torch

from workbench import steps
from workbench.config import parse_size
from workbench.device import device_fingerprint, resolve_device, set_threads, synchronize
from workbench.seg.baselines import BASELINES
from workbench.seg.model import genotype_fingerprint, read_genotype_file

log = logging.getLogger("benchmarks.inference")


def matmul_peak(device: torch.device, n: int, repeats: int = 5) -> dict:
    """Best-of-`repeats` fp32 GFLOP/s of an n x n by n x n torch.mm (2 n^3 FLOPs)."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    for _ in range(2):
        torch.mm(a, b)
    synchronize(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        synchronize(device)
        times.append(time.perf_counter() - t0)
    flops = 2 * n**3
    return {"n": n, "repeats": repeats, "best_s": min(times), "gflops_per_s": flops / min(times) / 1e9,
            "median_gflops_per_s": flops / sorted(times)[len(times) // 2] / 1e9}


def find_genotypes(runs: list[str], paths: list[str]) -> list[Path]:
    """Distinct architectures: explicit paths first, then search runs' genotype.json under runs."""
    found, seen = [], set()
    candidates = [Path(p) for p in paths]
    for root in runs:
        candidates += sorted(Path(root).rglob("genotype.json"))
    for path in candidates:
        try:
            key = genotype_fingerprint(read_genotype_file(path), 0)
        except Exception as exc:  # a broken file is reported, not fatal for the others
            log.warning("skipping %s: %s", path, exc)
            continue
        if key not in seen:
            seen.add(key)
            found.append(path)
    return found


def quick_search(out: Path, device: str, size: tuple[int, int]) -> Path:
    """A few-minute GAS search on random tensors, only to have one derived network to measure."""
    run = out / "quick_search"
    config = {"preset": "gas", "dataset": "random", "epochs": 2, "warmup_epochs": 1, "input_size": list(size),
              "crop_size": [min(size[0], 128), min(size[1], 256)], "batch_size": 2, "steps_per_epoch": 4, "device": device,
              "latency_weight": 0.1, "lut_warmup": 1, "lut_repeats": 2}
    steps.search(config, run)
    return run / "genotype.json"


def markdown(result: dict) -> str:
    peak = result["matmul_peak"]["gflops_per_s"]
    rows = ["| network | kind | params (M) | GFLOPs | latency ms (p10-p90) | FPS | achieved GFLOP/s | % of peak | LUT ms |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["networks"]:
        lat = r["latency_ms"]
        lut = r["lut"]["predicted_ms"]
        rows.append(f"| {r['label']} | {r['network']['kind']} | {r['params_m']:.2f} | {r['gflops']:.3f} | "
                    f"{lat['median']:.1f} ({lat['p10']:.1f}-{lat['p90']:.1f}) | {r['fps']:.1f} | "
                    f"{r['achieved_gflops_per_s']:.1f} | {100 * r['fraction_of_peak']:.1f} | "
                    f"{'-' if lut is None else f'{lut:.1f}'} |")
    d = result["device"]
    rows.append("")
    rows.append(f"{d['name']} ({d['device_type']}, {result['threads']} threads), torch {d['torch']}, "
                f"fp32, batch 1, {result['size'][0]}x{result['size'][1]}; matmul peak {peak:.1f} GFLOP/s "
                f"(torch.mm {result['matmul_peak']['n']}x{result['matmul_peak']['n']}). GFLOPs count a "
                "multiply-add as 2 FLOPs.")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", action="append", default=[], help="folder searched for genotype.json files")
    p.add_argument("--genotype", action="append", default=[], help="a genotype.json (repeatable)")
    p.add_argument("--quick-search", action="store_true", help="no genotype found: run a tiny search first")
    p.add_argument("--baselines", default=",".join(BASELINES), help="comma-separated baseline names ('' = none)")
    p.add_argument("--size", default="512x1024")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--matmul-size", type=int, default=None, help="default 2048 on CPU, 8192 on GPU")
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--out", default="benchmarks/results/inference.json")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    device = resolve_device(args.device)
    threads = set_threads(args.threads)
    size = parse_size(args.size)
    n = args.matmul_size or (8192 if device.type == "cuda" else 2048)
    peak = matmul_peak(device, n)
    log.info("fp32 matmul peak: %.1f GFLOP/s (n=%d)", peak["gflops_per_s"], n)

    genotypes = find_genotypes(args.runs, args.genotype)
    if not genotypes and args.quick_search:
        genotypes = [quick_search(Path("runs") / "inference", str(device), size)]
    networks = [("genotype", str(g), str(g)) for g in genotypes]
    networks += [("baseline", b, b) for b in filter(None, args.baselines.split(","))]
    results = []
    for kind, source, label in networks:
        cfg = {kind: source, "size": list(size), "device": str(device), "threads": threads,
               "warmup": args.warmup, "repeats": args.repeats, "memory": not args.no_memory}
        r = steps.benchmark(cfg)
        r["label"] = label
        r["fraction_of_peak"] = r["achieved_gflops_per_s"] / peak["gflops_per_s"]
        results.append(r)
    result = {"schema": "workbench.bench.inference", "version": 1, "size": list(size), "threads": threads,
              "device": device_fingerprint(device, threads), "matmul_peak": peak, "networks": results,
              "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    result["markdown"] = markdown(result)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(result["markdown"])
    print(f"\nwrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
