"""Latency-target misses across several timing runs of one study: how far each targeted network
lands from its target in each run, its mean over the runs, and how much the same network's miss
moves from one run to the next (the judge's own noise, to set against the ±10 % band).

Reads the files `benchmarks/study_targets.py --json` writes, one per kept timing run:

    python benchmarks/targets_across.py benchmarks/results/headline/targets_check2_run{1,2,3}.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def across(scored: list[dict], key: str = "miss_round_pct", band: float = 10.0) -> dict:
    """Per network (in the first file's order) its misses, their mean and range; and the counts."""
    names = [r["run"] for r in scored[0]["runs"]]
    per_run = [{r["run"]: r[key] for r in s["runs"]} for s in scored]
    rows = []
    for name in names:
        misses = [run[name] for run in per_run if name in run]
        rows.append({"run": name, "misses": misses, "mean": round(statistics.fmean(misses), 2),
                     "range": round(max(misses) - min(misses), 2)})
    ranges = [r["range"] for r in rows]
    return {"estimator": key, "band_pct": band, "timing_runs": [s.get("timing_measured") for s in scored],
            "within_band_each_run": [sum(abs(m) <= band for m in run.values()) for run in per_run],
            "mean_within_band": sum(abs(r["mean"]) <= band for r in rows), "targets": len(rows),
            "range_median": round(statistics.median(ranges), 2), "range_max": round(max(ranges), 2),
            "networks": rows}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("scored", nargs="+", type=Path, help="study_targets.py --json files, one per timing run")
    p.add_argument("--fastest", action="store_true", help="the fastest-round miss instead of the per-round one")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    out = across([json.loads(f.read_text()) for f in args.scored], "miss_pct" if args.fastest else "miss_round_pct")
    for r in out["networks"]:
        print(f"{r['run']}: " + ", ".join(f"{m:+.1f}" for m in r["misses"]) +
              f" % -> mean {r['mean']:+.1f} %, range {r['range']:.1f} points")
    print(f"within ±{out['band_pct']:g} % in each run: {out['within_band_each_run']} of {out['targets']}; "
          f"mean over runs: {out['mean_within_band']}; a network's range between runs: median "
          f"{out['range_median']}, max {out['range_max']} points")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
