"""Compare arms of a study that its summary cannot pair: e.g. the searched networks of one level
against random architectures of the same space, or against that level's hand-designed network.

An arm is a glob of finished retrain run folders under ROOT (`level-fpn/*/retrain`). Its mIoU comes
from each retrain's record; its latency from one kept `workbench ablations bench` timing run (every
network's round medians, ROOT/study_latency/<time>.json, default the latest). Each arm is set
against each later one with the study's own rule (`workbench.study.stats.compare`: better or
worse beyond k standard errors over seeds, "equivalent" inside ±ACCURACY_MARGIN mIoU or
±LATENCY_MARGIN of the other arm's latency). Beside the fastest-round latency, the per-round ratio:
the median over rounds of (the one arm's mean latency in that round / the other's), which drift
common to a round does not move.

    python benchmarks/study_compare.py runs/headline --arm searched=level-fpn/*/retrain \\
        --arm random=random-fpn/*/retrain --arm fpn050=baselines/fpn_mobilenetv3_small_050-*/retrain
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def arm_runs(root: Path, pattern: str, timing: dict) -> list[dict]:
    """Each finished retrain matching pattern: its mIoU and its round medians in the timing run."""
    from workbench.runs import RunDir

    rounds = {r["run"]: r["round_medians"] for r in timing["runs"] if "round_medians" in r}
    out = []
    for path in sorted(root.glob(pattern)):
        rec = RunDir(path).record()
        rel = str(path.relative_to(root))
        if rec.get("status") != "finished" or rel not in rounds:
            continue
        out.append({"run": rel, "miou": (rec.get("metrics") or {}).get("miou"), "rounds": rounds[rel],
                    "latency_ms": min(rounds[rel])})
    return out


def per_round_ratio(a: list[dict], b: list[dict]) -> float:
    """Median over rounds of (a's mean latency in the round / b's mean latency in the round)."""
    n = min(len(r["rounds"]) for r in a + b)
    return statistics.median(statistics.fmean(r["rounds"][i] for r in a) / statistics.fmean(r["rounds"][i] for r in b)
                             for i in range(n))


def compare_arms(root: Path, arms: dict[str, str], timing_file: Path | None = None, k: float = 2.0) -> dict:
    from workbench.study.stats import ACCURACY_MARGIN, compare, describe, latency_margin

    timing_file = timing_file or root / "study_latency.json"
    timing = json.loads(timing_file.read_text())
    runs = {name: arm_runs(root, pattern, timing) for name, pattern in arms.items()}
    empty = [name for name, rs in runs.items() if not rs]
    if empty:
        raise SystemExit(f"error: --arm {empty[0]}: no finished retrain timed in {timing_file} matches "
                         f"{arms[empty[0]]!r}")
    stats = {name: {"miou": describe([r["miou"] for r in rs]), "latency_ms": describe([r["latency_ms"] for r in rs]),
                    "runs": rs} for name, rs in runs.items()}
    names = list(arms)
    comparisons = []
    for i, first in enumerate(names):
        for other in names[i + 1:]:
            a, b = stats[first], stats[other]
            comparisons.append({
                "a": first, "b": other,
                "miou": compare(a["miou"], b["miou"], True, k, ACCURACY_MARGIN),
                "latency": compare(a["latency_ms"], b["latency_ms"], False, k, latency_margin(b["latency_ms"])),
                "latency_ratio_per_round": round(per_round_ratio(runs[first], runs[other]), 4)})
    return {"root": str(root), "timing": str(timing_file), "timing_measured": timing.get("measured"),
            "cpu": timing.get("cpu"), "threads": timing.get("threads"), "k": k, "arms": arms, "stats": stats,
            "comparisons": comparisons}


def _fmt(d: dict, digits: int) -> str:
    return f"{d['mean']:.{digits}f} ± {d['std']:.{digits}f} (n={d['n']})" if d["std"] is not None else \
        f"{d['mean']:.{digits}f} (n={d['n']})"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("root", type=Path, help="a study's output root, after `workbench ablations bench`")
    p.add_argument("--arm", action="append", required=True, metavar="NAME=GLOB",
                   help="an arm: retrain run folders under ROOT (each arm is compared with every later one)")
    p.add_argument("--timing", type=Path, default=None,
                   help="one kept timing run (ROOT/study_latency/<time>.json); default: the latest")
    p.add_argument("--k", type=float, default=2.0)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    arms = {}
    for spec in args.arm:
        name, sep, pattern = spec.partition("=")
        if not sep or not name or not pattern:
            raise SystemExit(f"error: --arm: {spec!r} is not NAME=GLOB")
        arms[name] = pattern
    if len(arms) < 2:
        raise SystemExit("error: --arm: give at least two arms")
    out = compare_arms(args.root.resolve(), arms, args.timing, args.k)
    print(f"timing run {out['timing_measured']} ({out['cpu']}, {out['threads']} thread(s))")
    for name, s in out["stats"].items():
        print(f"{name}: mIoU {_fmt(s['miou'], 3)}, latency {_fmt(s['latency_ms'], 2)} ms")
    for c in out["comparisons"]:
        m, lat = c["miou"], c["latency"]
        print(f"{c['a']} vs {c['b']}: mIoU {m['diff']:+.4f} (SE {m['se']:.4f}) {m['outcome']}; latency "
              f"{lat['diff']:+.2f} ms (SE {lat['se']:.2f}) {lat['outcome']}; per-round ratio {c['latency_ratio_per_round']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
