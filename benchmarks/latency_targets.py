"""Do searches land on their latency target? Targeted searches, then one round-robin timing.

Each target is a fraction of a hand-designed baseline's latency (`target_baseline` +
`target_fraction`), steered with `latency_control: adaptive` (FasterSeg's halve/double rule on
λ). After the searches, the baseline and every derived network are timed together, round-robin,
on the searches' device and thread count; the miss is measured latency / (fraction x the
baseline's latency measured in that same run) - 1. The target the search resolved at its start and
the latency table's estimate are reported beside it. Run on a quiet machine.

    python benchmarks/latency_targets.py --data-root datasets/proxy-camvid-128x256-400 \
        --fractions 0.4 0.6 --out-dir runs/targets --json benchmarks/results/latency_targets.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from datetime import datetime, timezone
from pathlib import Path

import torch

from workbench.device import cpu_model, set_threads
from workbench.nas.latency.timing import measure_networks, spread
from workbench.nas.search import run_search
from workbench.runs import RunDir
from workbench.seg.baselines import build_baseline
from workbench.seg.model import build_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="autortnet")
    p.add_argument("--baseline", default="fpn_mobilenetv3_small")
    p.add_argument("--fractions", type=float, nargs="+", default=[0.4, 0.6])
    p.add_argument("--data-root", required=True)
    p.add_argument("--dataset", default="camvid")
    p.add_argument("--size", default="128x256", help="search input and crop HxW (the latency table's size)")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--out-dir", default="runs/targets")
    p.add_argument("--json", default="benchmarks/results/latency_targets.json")
    args = p.parse_args()
    size = [int(v) for v in args.size.split("x")]
    set_threads(args.threads)
    runs = {}
    for fraction in args.fractions:
        run_dir = Path(args.out_dir) / f"{args.preset}-{args.baseline}-x{fraction:g}"
        cfg = {"preset": args.preset, "dataset": args.dataset, "data_root": args.data_root, "input_size": size,
               "crop_size": size, "epochs": args.epochs, "steps_per_epoch": args.steps, "batch_size": 4,
               "target_baseline": args.baseline, "target_fraction": fraction, "latency_control": "adaptive",
               "latency_weight": 0.5, "device": "cpu", "threads": args.threads, "seed": 0,
               "lut_cache_dir": str(Path(args.out_dir) / "lut")}  # timed in this (quiet) run, not an older cache
        if not (RunDir(run_dir).record_path.exists() and RunDir(run_dir).record().get("status") == "finished"):
            run_search({**cfg, "overwrite": True}, run_dir)
        runs[fraction] = RunDir(run_dir)
    classes = json.loads((runs[args.fractions[0]].path / "genotype.json").read_text())["num_classes"]
    models = {args.baseline: build_baseline(args.baseline, classes)}
    for fraction, run in runs.items():
        models[f"x{fraction:g}"] = build_model(genotype=str(run.path / "genotype.json"), num_classes=classes)[0]
    load_before = os.getloadavg()
    with torch.inference_mode():
        rounds = measure_networks(models, tuple(size), "cpu", warmup=3, repeats=10, rounds=args.rounds)
    base_ms = min(rounds[args.baseline])
    rows = []
    for fraction, run in runs.items():
        rec, key = run.record(), f"x{fraction:g}"
        measured = min(rounds[key])
        target = fraction * base_ms
        rows.append({"fraction": fraction, "run_dir": str(run.path), "target_ms": round(target, 3),
                     "measured_ms": round(measured, 3), "miss_pct": round(100 * (measured / target - 1), 1),
                     "within_10pct": abs(measured / target - 1) <= 0.10,
                     "search_target_ms": rec["metrics"].get("target_latency_ms"),
                     "lut_ms": rec["metrics"].get("expected_latency_ms"),
                     "lut_miss_pct": rec["metrics"].get("target_miss_pct"),
                     "latency_weight_final": rec["metrics"].get("latency_weight_final"),
                     "search_miou": rec["metrics"].get("miou"), "round_spread": round(spread(rounds[key]), 3)})
    out = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "threads": args.threads,
                       "torch": torch.__version__},
           "command": "python benchmarks/latency_targets.py " + " ".join(
               f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
               for k, v in vars(args).items()),
           "preset": args.preset, "baseline": args.baseline, "size": size, "epochs": args.epochs,
           "steps_per_epoch": args.steps, "baseline_ms": round(base_ms, 3),
           "baseline_round_spread": round(spread(rounds[args.baseline]), 3),
           "loadavg_before": load_before, "loadavg_after": os.getloadavg(), "targets": rows,
           "met": sum(r["within_10pct"] for r in rows), "median_abs_miss_pct": statistics.median(
               abs(r["miss_pct"]) for r in rows)}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    print(f"{args.baseline}: {base_ms:.2f} ms at {args.size}, {args.threads} thread(s)")
    print("| target | T (ms) | measured (ms) | miss | LUT (ms) | search's T (ms) | final λ |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['fraction']:g} x {args.baseline} | {r['target_ms']:.2f} | {r['measured_ms']:.2f} | "
              f"{r['miss_pct']:+.1f} % | {r['lut_ms']:.2f} | {r['search_target_ms']:.2f} | "
              f"{r['latency_weight_final']:g} |")
    print(f"within ±10 %: {out['met']} of {len(rows)}")


if __name__ == "__main__":
    main()
