"""Latency-target misses across several timing runs of one study: how far each targeted network
lands from its target in each run, its mean over the runs, and how much the same network's miss
moves from one run to the next (the judge's own noise, to set against the ±10 % band). Also how
the table priced each network against the others aimed at the same baseline (`priced_low_pct`:
its measured / baseline ratio per ms of price, against the group's median): a table error that
differs between networks, which no calibration scale can remove.

Reads the files `benchmarks/study_targets.py --json` writes, one per kept timing run:

    python benchmarks/targets_across.py benchmarks/results/headline/targets_check2_run{1,2,3}.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def in_search(derive: dict, bench_mean: float) -> dict:
    """What the search's own timings (`target_measure`) read: the kept miss, the bench's mean miss
    minus it (positive: the bench reads the network slower against its baseline than the search
    did), and the other processes' load during those timings."""
    timings = derive.get("measured") or []
    if not timings:
        return {}
    loads = [t["other_load"] for t in timings if t.get("other_load") is not None]
    return {"search_kept_pct": derive["measured_miss_pct"],
            "bench_minus_search": round(bench_mean - derive["measured_miss_pct"], 2),
            "search_timings": len(timings), "search_other_load_max": max(loads) if loads else None,
            "search_quiet": [t.get("quiet") for t in timings]}


def across(scored: list[dict], key: str = "miss_round_pct", band: float = 10.0) -> dict:
    """Per network (in the first file's order) its misses, their mean and range; and the counts."""
    first = {r["run"]: r for r in scored[0]["runs"]}
    per_run = [{r["run"]: r[key] for r in s["runs"]} for s in scored]
    rows = []
    for name, r in first.items():
        misses = [run[name] for run in per_run if name in run]
        mean = statistics.fmean(misses)
        # measured / baseline per price: equal within a baseline's group when the table prices those
        # networks alike; a network above its group's median is priced low against the others
        per_price = r["fraction"] * (1 + mean / 100) / r["price_ms"] if r.get("price_ms") else None
        rows.append({"run": name, "baseline": r["baseline"], "misses": misses, "mean": round(mean, 2),
                     "range": round(max(misses) - min(misses), 2), "measured_per_price": per_price,
                     **in_search(r.get("derive") or {}, mean)})
    for row in rows:
        group = [o["measured_per_price"] for o in rows if o["baseline"] == row["baseline"] and o["measured_per_price"]]
        if row["measured_per_price"] and group:
            row["priced_low_pct"] = round(100 * (row["measured_per_price"] / statistics.median(group) - 1), 2)
            row["measured_per_price"] = round(row["measured_per_price"], 5)
    ranges = [r["range"] for r in rows]
    gaps = [r["bench_minus_search"] for r in rows if "bench_minus_search" in r]
    loads = [r["search_other_load_max"] for r in rows if r.get("search_other_load_max") is not None]
    return {"estimator": key, "band_pct": band, "timing_runs": [s.get("timing_measured") for s in scored],
            "within_band_each_run": [sum(abs(m) <= band for m in run.values()) for run in per_run],
            "mean_within_band": sum(abs(r["mean"]) <= band for r in rows), "targets": len(rows),
            "range_median": round(statistics.median(ranges), 2), "range_max": round(max(ranges), 2),
            "bench_minus_search_median": round(statistics.median(gaps), 2) if gaps else None,
            "bench_minus_search_range": [min(gaps), max(gaps)] if gaps else None,
            "search_kept_within_band": sum(abs(r["search_kept_pct"]) <= band for r in rows if "search_kept_pct" in r),
            "search_other_load_max": max(loads) if loads else None,
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
              f" % -> mean {r['mean']:+.1f} %, range {r['range']:.1f} points; priced "
              f"{r.get('priced_low_pct', float('nan')):+.1f} % low against its baseline group's median")
    print(f"within ±{out['band_pct']:g} % in each run: {out['within_band_each_run']} of {out['targets']}; "
          f"mean over runs: {out['mean_within_band']}; a network's range between runs: median "
          f"{out['range_median']}, max {out['range_max']} points")
    if out["bench_minus_search_median"] is not None:
        print(f"in the searches: {out['search_kept_within_band']} kept within the band; bench mean minus search kept: "
              f"median {out['bench_minus_search_median']} points (range {out['bench_minus_search_range']}); "
              f"other load during the searches' timings at most {out['search_other_load_max']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
