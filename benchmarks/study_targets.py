"""Did a study's latency-targeted searches land on their targets? Read from the run directories.

For every search under ROOT with a baseline-relative target (`target_baseline` +
`target_fraction`), the retrained network's latency from the study's round-robin run
(`workbench ablations bench ROOT --baseline NAME ...`, RUN/benchmark-study) is set against
fraction x the baseline's latency from that same run: the miss that counts, free of the machine's
drift between the search and the timing. Also the same miss per round (`miss_round_pct`: the median
over rounds of network / baseline in that round), which a VM whose networks' relative speeds move
within a run disturbs less than the ratio of two fastest rounds. Beside it: the target the search resolved at its start,
how (`timed_with`), the table's price of the derived network and what `target_derive` did.

    python benchmarks/study_targets.py runs/headline --json benchmarks/results/headline/targets.json
    python benchmarks/study_targets.py runs/headline --timing runs/headline/study_latency/<time>.json

`--timing` scores one kept timing run (ROOT/study_latency/, one file per `ablations bench`);
the default is the latest.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

BAND = 10.0  # percent: the "within ±10 % of its target"


def collect(root: Path, timing_file: Path | None = None) -> dict:
    from workbench.runs import RunDir, iter_runs
    from workbench.study.bench import per_round_ratio

    timing = json.loads((timing_file or root / "study_latency.json").read_text())
    run_rounds = {r["run"]: r["round_medians"] for r in timing["runs"] if "round_medians" in r}
    base = {name: b["latency_ms"] for name, b in (timing.get("baselines") or {}).items()}
    base_rounds = {name: b["round_medians"] for name, b in (timing.get("baselines") or {}).items()}
    rows = []
    for run in iter_runs(root):
        rec = run.record()
        target = rec.get("target") or {}
        if rec.get("kind") != "search" or not target.get("baseline"):
            continue
        retrain = str((run.path.parent / "retrain").relative_to(root))
        bench = root / retrain / "benchmark-study" / "benchmark.json"
        if retrain in run_rounds:  # a timing run that lists its networks' rounds (kept per run)
            rounds = run_rounds[retrain]
        elif bench.exists():  # older summaries: the latest run's rounds, beside the retrain
            rounds = json.loads(bench.read_text())["latency_ms"]["round_medians"]
        else:
            continue
        if target["baseline"] not in base:
            continue
        measured = min(rounds)
        per_round = per_round_ratio(rounds, base_rounds[target["baseline"]])
        final_t = target["fraction"] * base[target["baseline"]]
        derive = rec.get("target_derive") or {}
        miou = (RunDir(run.path.parent / "retrain").record().get("metrics") or {}).get("miou")
        rows.append({"run": str(run.path.relative_to(root)), "baseline": target["baseline"],
                     "fraction": target["fraction"], "timed_with": target.get("timed_with", "alone"),
                     "target_at_search_ms": round(target["ms"], 4),
                     "price_ms": (rec.get("metrics") or {}).get("expected_latency_ms"),
                     "derive": {k: derive.get(k) for k in ("derived_ms_before", "derived_ms", "tilt", "tried", "flips",
                                                             "measured", "measured_miss_pct")
                                if k in derive},
                     "target_ms": round(final_t, 4), "measured_ms": round(measured, 4),
                     "miss_pct": round(100 * (measured / final_t - 1), 2),
                     "miss_round_pct": round(100 * (per_round / target["fraction"] - 1), 2), "miou": miou})
    rows.sort(key=lambda r: r["run"])
    misses = [abs(r["miss_pct"]) for r in rows]
    priced = [100 * abs(r["price_ms"] / r["target_at_search_ms"] - 1) for r in rows if r["price_ms"]]
    return {"root": str(root), "timing_measured": timing.get("measured"), "cpu": timing.get("cpu"),
            "threads": timing.get("threads"), "baselines_ms": base, "band_pct": BAND, "runs": rows,
            "within_band": sum(m <= BAND for m in misses), "targets": len(rows),
            "within_band_per_round": sum(abs(r["miss_round_pct"]) <= BAND for r in rows),
            "mean_abs_miss_pct": round(statistics.fmean(misses), 2) if misses else None,
            "priced_within_band": sum(m <= BAND for m in priced)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("root", help="a study's output root, after `workbench ablations bench`")
    p.add_argument("--timing", type=Path, default=None,
                   help="one kept timing run (ROOT/study_latency/<time>.json); default: the latest")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    out = collect(Path(args.root).resolve(), args.timing)
    for r in out["runs"]:
        print(f"{r['run']}: T {r['target_ms']:.2f} ms ({r['fraction']:g} x {r['baseline']}), measured "
              f"{r['measured_ms']:.2f} ms, miss {r['miss_pct']:+.1f} % (per round {r['miss_round_pct']:+.1f} %); price {r['price_ms']} ms vs T at search "
              f"{r['target_at_search_ms']:.2f} ms ({r['timed_with']}); mIoU {r['miou']}")
    print(f"within ±{BAND:g} %: {out['within_band']} of {out['targets']} (mean |miss| {out['mean_abs_miss_pct']} %); "
          f"per round: {out['within_band_per_round']}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
