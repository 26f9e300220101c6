"""The latency table against measured latency, over every searched network of a study.

Each search's genotype is priced again with its space's table from the device cache (pieces and
calibration timed alone, quietly: `workbench ablations run` times them before its pool), and set
beside the network's latency from the study's quiet round-robin run (`workbench ablations bench`,
ROOT/study_latency.json). The threads must be the ones the bench used.

    python benchmarks/study_lut_error.py runs/ablations --threads 1 \
        --json benchmarks/results/ablations/lut_vs_measured.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("root", help="a study's output root, after `workbench ablations bench`")
    p.add_argument("--threads", type=int, default=1, help="the thread count the bench timed with")
    p.add_argument("--json", default=None)
    args = p.parse_args()

    from workbench.device import cpu_model
    from workbench.nas.genotypes import load_genotype
    from workbench.nas.latency.table import predict_genotype_latency
    from workbench.nas.search import lut_for, resolve_config
    from workbench.nas.search_data import NUM_CLASSES

    root = Path(args.root)
    bench = json.loads((root / "study_latency.json").read_text())
    tables: dict[str, dict] = {}
    rows = []
    for run in bench["runs"]:
        search = root / run["run"].replace("/retrain", "/search")
        if not (search / "genotype.json").is_file():
            continue  # a baseline: no table prices it
        cfg = json.loads((search / "config.json").read_text())
        key = json.dumps({k: cfg.get(k) for k in ("preset", "space", "input_size", "dataset")}, sort_keys=True)
        if key not in tables:
            c = resolve_config({**cfg, "threads": args.threads, "resume": False, "overwrite": False})
            tables[key] = lut_for(c, NUM_CLASSES[c.dataset])
        predicted = predict_genotype_latency(load_genotype(search / "genotype.json"), tables[key])
        rows.append({"run": run["run"], "predicted_ms": round(predicted, 4), "measured_ms": run["latency_ms"],
                     "error_pct": round(100 * (predicted / run["latency_ms"] - 1), 2)})
        print(f"{run['run']:<48} predicted {predicted:6.2f} ms  measured {run['latency_ms']:6.2f} ms  "
              f"{rows[-1]['error_pct']:+6.1f} %")
    errors = [abs(r["error_pct"]) for r in rows]
    summary = {"networks": len(rows), "mean_abs_error_pct": round(statistics.fmean(errors), 2),
               "median_abs_error_pct": round(statistics.median(errors), 2), "max_abs_error_pct": max(errors),
               "calibration_scales": sorted({round(t.get("calibration", {}).get("scale", 1.0), 4) for t in tables.values()}),
               "tables_busy": any(t.get("busy") or (t.get("calibration") or {}).get("busy") for t in tables.values())}
    print(f"{summary['networks']} networks: mean |error| {summary['mean_abs_error_pct']} %, median "
          f"{summary['median_abs_error_pct']} %, max {summary['max_abs_error_pct']} %")
    if args.json:
        out = {"machine": cpu_model(), "threads": args.threads, "bench_other_load": bench.get("other_load"),
               "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "command": f"python benchmarks/study_lut_error.py {args.root} --threads {args.threads} --json {args.json}",
               "summary": summary, "networks": rows}
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
