"""Learning-curve figure: val mIoU against training minutes, from `proxy_benchmark.py` results.

The proxy benchmark's budget is a choice between accuracy and time; this draws the evidence for it.
Each arm is one line per epoch budget (mean over seeds, a band of ± one std), labelled with the
budget, so runs at 40 and 60 epochs sit on one figure; an arm that two files hold at one budget is
drawn from the one with more seeds. A dotted line marks the goal.

    python benchmarks/learning_curves.py benchmarks/results/proxy_benchmark.json \\
        benchmarks/results/proxy_benchmark_60ep.json --out benchmarks/results/proxy_learning_curves.png

Minutes are cumulative training time per retrain (evaluation excluded) as each run measured it,
so curves from runs with different parallelism or machines are not comparable in minutes; the
title names the machines of the files drawn.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def series(results: list[dict], only: set[str] | None = None) -> list[dict]:
    """One entry per (arm, epoch budget) with a curve: label, minutes, mean, std, epochs. `only`
    keeps the arms of those names. An arm at one budget in several files (a re-run that added
    seeds also holds the first seeds) is drawn once: from the file with the most seeds, the later
    file on a tie."""
    out: list[dict] = []
    where: dict[tuple, int] = {}  # (arm, epochs) -> its index in out
    for res in results:
        epochs = res.get("common", {}).get("epochs")
        for name, arm in res["arms"].items():
            pts = arm.get("curve") or []
            if not pts or (only and name not in only):
                continue
            n = len(arm.get("miou") or [])
            entry = {"arm": name, "label": f"{name}, {epochs} epochs (n={n})", "epochs": epochs, "n": n,
                     "minutes": [p["minutes"] for p in pts],
                     "mean": [p["miou_mean"] for p in pts],
                     "std": [p["miou_std"] or 0.0 for p in pts]}
            key = (name, epochs)
            if key not in where:
                where[key] = len(out)
                out.append(entry)
            elif n >= out[where[key]]["n"]:
                out[where[key]] = entry
    return out


def draw(results: list[dict], out: str | Path, goal: float | None = 0.45, only: set[str] | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    drawn = series(results, only)
    budgets = sorted({s["epochs"] or 0 for s in drawn})
    styles = ["--", "-", "-.", ":"]
    colors: dict[str, str] = {}  # one colour per arm; one line style per epoch budget
    for s in drawn:
        color = colors.setdefault(s["arm"], f"C{len(colors) % 10}")
        lo = [m - d for m, d in zip(s["mean"], s["std"])]
        hi = [m + d for m, d in zip(s["mean"], s["std"])]
        ax.plot(s["minutes"], s["mean"], marker="o", markersize=3, color=color, label=s["label"],
                linestyle=styles[budgets.index(s["epochs"] or 0) % len(styles)])
        ax.fill_between(s["minutes"], lo, hi, color=color, alpha=0.2)
    if goal is not None:
        ax.axhline(goal, color="black", linestyle=":", linewidth=1, label=f"goal {goal:.2f} mIoU")
    machines = sorted({f"{r['machine']['cpu']} ({r['jobs']} at a time, {r['threads']} thread each)"
                       for r in results})
    ax.set_xlabel("training minutes per retrain (evaluation excluded)")
    ax.set_ylabel("val mIoU, mean ± std over seeds")
    ax.set_title("proxy benchmark learning curves\n" + "; ".join(machines), fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", nargs="+", help="JSON files written by proxy_benchmark.py")
    p.add_argument("--out", required=True, help="PNG to write")
    p.add_argument("--goal", type=float, default=0.45, help="mIoU goal line (negative: none)")
    p.add_argument("--arm", action="append", default=None, help="draw only arms of this name (repeatable)")
    args = p.parse_args()
    results = []
    for path in args.results:
        try:
            res = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            res = exc.__class__.__name__
        if not isinstance(res, dict) or not isinstance(res.get("arms"), dict):
            problem = res if isinstance(res, str) else "no arms"
            print(f"error: {path}: not a proxy_benchmark.py result ({problem})", file=sys.stderr)
            sys.exit(2)
        results.append(res)
    draw(results, args.out, args.goal if args.goal >= 0 else None, set(args.arm) if args.arm else None)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
