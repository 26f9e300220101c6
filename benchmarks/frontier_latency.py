"""Latency, params and GFLOPs of every baseline and some searched networks, timed round-robin.

Each round runs every network `--repeats` times (batch 1, fp32, `inference_mode`) and keeps the
median; a network's figure is its fastest round. Interleaving makes the ratios between networks
robust to slow drifts of the machine, so the table says which hand-designed networks bracket
the searched ones. Writes JSON and prints a markdown table.

    python benchmarks/frontier_latency.py --threads 2 --size 256x512 --genotype runs/s/genotype.json \
        --out benchmarks/results/frontier_latency.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from workbench.device import cpu_model, set_threads
from workbench.seg.baselines import BASELINES
from workbench.seg.benchmark import count_flops
from workbench.seg.model import build_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--genotype", action="append", default=[], help="genotype.json (repeat)")
    p.add_argument("--baseline", action="append", default=None, help="baseline names (default: all)")
    p.add_argument("--size", action="append", default=None, help="HxW (repeat; default 128x256 and 256x512)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--classes", type=int, default=11)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default="benchmarks/results/frontier_latency.json")
    args = p.parse_args()
    set_threads(args.threads)
    sizes = [tuple(int(v) for v in s.split("x")) for s in (args.size or ["128x256", "256x512"])]
    nets = {}
    for g in args.genotype:
        nets[f"searched:{Path(g).parent.name if Path(g).name == 'genotype.json' else Path(g).stem}"] = build_model(genotype=g, num_classes=args.classes)[0].eval()
    for b in args.baseline or list(BASELINES):
        nets[b] = build_model(baseline=b, num_classes=args.classes)[0].eval()
    load_before = os.getloadavg()
    out = {"machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "threads": args.threads,
                       "torch": torch.__version__},
           "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "rounds": args.rounds,
           "repeats": args.repeats, "networks": {}}
    for name, model in nets.items():
        out["networks"][name] = {"params_m": round(sum(q.numel() for q in model.parameters()) / 1e6, 4)}
    with torch.inference_mode():
        for h, w in sizes:
            x = torch.randn(1, 3, h, w)
            best, per_round = {}, {name: [] for name in nets}
            for name, model in nets.items():
                model(x)  # warm-up
                out["networks"][name][f"gflops_{h}x{w}"] = round(count_flops(model, x) / 1e9, 3)
            for _ in range(args.rounds):
                for name, model in nets.items():
                    ts = []
                    for _ in range(args.repeats):
                        t0 = time.perf_counter()
                        model(x)
                        ts.append(time.perf_counter() - t0)
                    best[name] = min(best.get(name, float("inf")), sorted(ts)[len(ts) // 2])
                    per_round[name].append(round(sorted(ts)[len(ts) // 2] * 1000, 2))
            for name in nets:
                out["networks"][name][f"latency_ms_{h}x{w}"] = round(best[name] * 1000, 2)
                out["networks"][name][f"rounds_ms_{h}x{w}"] = per_round[name]  # the noise, round by round
    out["loadavg_before"], out["loadavg_after"] = load_before, os.getloadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    keys = [f"latency_ms_{h}x{w}" for h, w in sizes]
    print("| network | params (M) | " + " | ".join(f"GFLOPs {h}x{w} | ms {h}x{w}" for h, w in sizes) + " |")
    print("|---|---:|" + "---:|---:|" * len(sizes))
    for name, r in sorted(out["networks"].items(), key=lambda kv: kv[1][keys[-1]]):
        cells = " | ".join(f"{r[f'gflops_{h}x{w}']} | {r[f'latency_ms_{h}x{w}']}" for h, w in sizes)
        print(f"| {name} | {r['params_m']} | {cells} |")


if __name__ == "__main__":
    main()
