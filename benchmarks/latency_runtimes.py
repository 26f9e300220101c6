"""The latency table per runtime: LUT-predicted vs measured latency in eager PyTorch and in ONNX
Runtime (CPU), and what the runtime itself changes, all measured in one process.

For each runtime: a latency table of the pieces of random genotypes of the gas, lgcnet and
autortnet spaces (the genotypes of `latency_predictor.py`), timed in that runtime and calibrated on
separate reference networks; then every genotype's end-to-end forward in both runtimes, interleaved
in one round-robin (`time_rounds`), so the ratio between runtimes is not a drift of the machine.

    python benchmarks/latency_runtimes.py --size 128x256 --threads 2 --per-preset 4 \
        --json benchmarks/results/latency_runtimes.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

RUNTIMES = ("eager", "onnxruntime")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="128x256")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--per-preset", type=int, default=4)
    p.add_argument("--calibrate", type=int, default=2, help="reference networks per preset (0: uncalibrated)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "latency_runtimes.json"))
    args = p.parse_args()

    import os

    import torch
    from latency_predictor import random_genotypes

    from workbench.config import parse_size
    from workbench.device import cpu_model, device_fingerprint
    from workbench.loadcheck import OtherLoad
    from workbench.nas.latency import table as latency
    from workbench.nas.latency.runtimes import bind
    from workbench.nas.latency.timing import time_rounds
    from workbench.nas.network import build_network

    size = parse_size(args.size)
    torch.set_num_threads(args.threads)
    presets = ("gas", "lgcnet", "autortnet")
    items = [(f"{preset}-random-{j}", g) for i, preset in enumerate(presets)
             for j, g in enumerate(random_genotypes(preset, args.per_preset, size, seed=i)[0])]
    refs = [g for i, preset in enumerate(presets) for g in random_genotypes(preset, args.calibrate, size, 1000 + i)[0]]
    probes = [pr for g in [g for _, g in items] + refs for pr in latency.genotype_probes(g, size)]
    luts = {}
    for runtime in RUNTIMES:
        cache = tempfile.mkdtemp(prefix=f"lut-{runtime}")
        lut = latency.build_lut(probes, size, "cpu", args.threads, args.warmup, args.repeats, cache, rounds=args.rounds,
                                runtime=runtime)
        if args.calibrate:
            latency.calibrate(lut, refs, "cpu", args.warmup, args.repeats, args.rounds)
        luts[runtime] = lut
        print(f"{runtime}: {len(lut['entries'])} entries, table spread {lut['table_spread']:.2f}, calibration "
              f"{latency.calibration_scale(lut):.3f}, other load {lut.get('other_load')}", flush=True)
    x = torch.randn(1, 3, *size)
    calls = {(name, rt): bind(build_network(g).eval(), [x], rt, args.threads) for name, g in items for rt in RUNTIMES}
    with OtherLoad() as load:
        timed = time_rounds({f"{n}|{rt}": (lambda c=c: c) for (n, rt), c in calls.items()}, torch.device("cpu"),
                            args.warmup, args.repeats, args.rounds)
    rows = []
    for name, g in items:
        row = {"name": name}
        for rt in RUNTIMES:
            measured = min(timed[f"{name}|{rt}"])
            predicted = latency.predict_genotype_latency(g, luts[rt])
            raw = predicted / latency.calibration_scale(luts[rt])
            row[rt] = {"measured_ms": round(measured, 4), "predicted_ms": round(predicted, 4),
                       "error_pct": round(100 * (predicted - measured) / measured, 2),
                       "raw_error_pct": round(100 * (raw - measured) / measured, 2),
                       "spread": round(max(timed[f"{name}|{rt}"]) / measured, 3)}
        row["onnxruntime_over_eager"] = round(row["onnxruntime"]["measured_ms"] / row["eager"]["measured_ms"], 3)
        rows.append(row)
        print(f"{name:20s} " + "  ".join(f"{rt} {row[rt]['measured_ms']:7.2f} ms (LUT {row[rt]['error_pct']:+6.1f} %)"
                                       for rt in RUNTIMES) + f"  ratio {row['onnxruntime_over_eager']:.2f}", flush=True)
    summary = {rt: {"mean_abs_error_pct": round(statistics.mean(abs(r[rt]["error_pct"]) for r in rows), 2),
                    "mean_abs_raw_error_pct": round(statistics.mean(abs(r[rt]["raw_error_pct"]) for r in rows), 2),
                    "calibration_scale": round(latency.calibration_scale(luts[rt]), 4),
                    "table_spread": luts[rt]["table_spread"], "table_other_load": luts[rt].get("other_load")}
               for rt in RUNTIMES}
    ratios = [r["onnxruntime_over_eager"] for r in rows]
    summary["onnxruntime_over_eager"] = {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}
    out = {"machine": cpu_model(), "cores": os.cpu_count(), "fingerprint": device_fingerprint("cpu", args.threads),
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "command": "python benchmarks/latency_runtimes.py " + " ".join(sys.argv[1:]),
           "size": list(size), "threads": args.threads, "rounds": args.rounds, "repeats": args.repeats,
           "networks_other_load": load.share, "summary": summary, "genotypes": rows}
    Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
