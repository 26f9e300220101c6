"""How far a search's architecture still moves: per epoch, the share of its decisions equal to
the last epoch's, and how decided they are.

A decision is each cell edge's strongest operation other than `none` (derivation never picks it)
and, in the hyper space, each layer's path choice. If the decisions stop changing after a few
epochs, more architecture steps cannot change the derived network; if they keep changing, a short
search derives an architecture the search had not settled on. Read from the search's
`alphas.jsonl` (one line per epoch); descriptive only, the derived genotype also depends on the
latency-targeted derivation.

It also reports how persistently the operation alphas move: per alpha, the net change over the
epochs that moved it divided by the sum of the epoch-by-epoch changes, averaged. 1 is a steady
push in one direction; for n epochs of independent Gaussian moves (a gradient that is mostly
noise) the expected value is 1/sqrt(n), printed beside it; below that, the moves reverse.

    python benchmarks/alpha_drift.py runs/search-length/level-fpn-long/*/search --json drift.json
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

from workbench.jsonio import read_jsonl


def _pick(weights: list[float], allowed: list[int]) -> tuple[int, float]:
    best = max(allowed, key=lambda i: weights[i])
    return best, weights[best] / sum(weights[i] for i in allowed)


def decisions(line: dict) -> dict[str, list[tuple[int, float]]]:
    """The epoch's decisions, (index, weight share among the allowed choices) each: `ops`, one per
    cell edge; `paths`, one per layer of the hyper space's path (empty in other spaces)."""
    ops = []
    for cell in line.get("cells", []):
        names = cell.get("ops") or []
        for weights in cell.get("weights") or []:
            allowed = [i for i, op in enumerate(names) if op != "none"] or list(range(len(weights)))
            ops.append(_pick(weights, allowed))
    paths = [_pick(w, list(range(len(w)))) for w in (line.get("space_state") or {}).get("weights") or []]
    return {"ops": ops, "paths": paths}


def drift(path: Path) -> list[dict]:
    """One row per epoch, per kind of decision: the share equal to the last epoch's decision and the
    mean weight share of the strongest choice (1/7 is undecided among 7 ops, 1/3 among 3 paths)."""
    lines = read_jsonl(path)  # skips the torn last line of a killed search
    if not lines:
        raise ValueError("no epochs")
    per_epoch = [(line["epoch"], decisions(line)) for line in lines]
    final = per_epoch[-1][1]
    rows = []
    for epoch, dec in per_epoch:
        row: dict = {"epoch": epoch}
        for kind, picks in dec.items():
            if picks:
                row[f"{kind}_same_as_last"] = round(
                    sum(a[0] == b[0] for a, b in zip(picks, final[kind])) / len(picks), 4)
                row[f"{kind}_share"] = round(statistics.fmean(share for _, share in picks), 4)
        rows.append(row)
    return rows


def persistence(path: Path) -> dict:
    """Net over summed epoch-to-epoch change of the cells' raw alphas, averaged over alphas, from the
    first epoch to the last that changed them (warm-up epochs do not count)."""
    lines = read_jsonl(path)
    traj = [[a for cell in line.get("cells", []) for edge in cell.get("alpha") or [] for a in edge] for line in lines]
    moves = [(a, b) for a, b in zip(traj, traj[1:]) if a and len(a) == len(b) and a != b]
    if not moves:
        return {"moves": 0, "ops_persistence": None, "random_walk": None}
    ratios = []
    for j in range(len(moves[0][0])):
        path = sum(abs(b[j] - a[j]) for a, b in moves)
        if path > 0:
            ratios.append(abs(sum(b[j] - a[j] for a, b in moves)) / path)
    return {"moves": len(moves), "ops_persistence": round(statistics.fmean(ratios), 4) if ratios else None,
            "random_walk": round(1 / math.sqrt(len(moves)), 4)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("searches", nargs="+", type=Path, help="search run folders (or their alphas.jsonl)")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    out: dict = {}
    moved: dict = {}
    for run in args.searches:
        path = run / "alphas.jsonl" if run.is_dir() else run
        try:
            out[str(run)] = drift(path)
            moved[str(run)] = persistence(path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            print(f"error: {path}: not a search's alphas.jsonl ({exc.__class__.__name__}: {exc})", file=sys.stderr)
            sys.exit(2)
    for run, rows in out.items():
        print(run)
        keys = [k for k in rows[-1] if k != "epoch"]
        print("  epoch  " + "  ".join(keys))
        for r in rows:
            print(f"  {r['epoch']:>5}  " + "  ".join(f"{r.get(k, float('nan')):>{len(k)}.3f}" for k in keys))
        m = moved[run]
        if m["ops_persistence"] is not None:
            print(f"  op alphas over {m['moves']} moving epochs: persistence {m['ops_persistence']:.3f} "
                  f"(independent moves: {m['random_walk']:.3f})")
    out["persistence"] = moved
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
