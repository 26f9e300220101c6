"""Pool seeds of one comparison kept in several `study_compare.py` JSON files (e.g. the same two arms
run with seeds 0-3, 4-7 and 8-11 in separate study files) and compare the arms over all of them with
the study's own rule (`workbench.study.stats.compare`, k standard errors over seeds).

Each seed's val mIoU is taken as its own run recorded it; a run listed in two files counts once.
Latency is not pooled: timing runs of different roots ran on different days and machines, so the
latency condition stays with each file's own timing runs.

    python benchmarks/pool_compare.py a/compare_run1.json b/compare_run1.json --a select --b fpn050
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def pooled_values(files: list[Path], arm: str) -> list[dict]:
    """Every run of one arm across files, first file first, each (root, run) once."""
    seen, out = set(), []
    for f in files:
        doc = json.loads(f.read_text())
        if arm not in doc.get("stats", {}):
            raise SystemExit(f"error: {f}: no arm {arm!r} (has {', '.join(doc.get('stats', {})) or 'none'})")
        for r in doc["stats"][arm]["runs"]:
            key = (doc.get("root"), r["run"])
            if key not in seen and r.get("miou") is not None:
                seen.add(key)
                out.append({"file": str(f), "run": r["run"], "miou": r["miou"]})
    return out


def pool(files: list[Path], a: str, b: str, k: float = 2.0) -> dict:
    from workbench.study.stats import ACCURACY_MARGIN, compare, describe

    runs = {a: pooled_values(files, a), b: pooled_values(files, b)}
    stats = {name: describe([r["miou"] for r in rs]) for name, rs in runs.items()}
    return {"files": [str(f) for f in files], "k": k, "a": a, "b": b, "stats": stats, "runs": runs,
            "miou": compare(stats[a], stats[b], True, k, ACCURACY_MARGIN)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("files", type=Path, nargs="+", help="study_compare.py --json outputs")
    p.add_argument("--a", default="select", help="the arm asked to be better")
    p.add_argument("--b", default="fpn050", help="the arm it is compared with")
    p.add_argument("--k", type=float, default=2.0)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    for f in args.files:
        if not f.is_file():
            raise SystemExit(f"error: {f}: no such file")
    out = pool(args.files, args.a, args.b, args.k)
    for name in (args.a, args.b):
        s = out["stats"][name]
        print(f"{name}: mIoU {s['mean']:.4f} ± {s['std']:.4f} (n={s['n']})")
    m = out["miou"]
    print(f"{args.a} vs {args.b}: mIoU {m['diff']:+.4f} (SE {m['se']:.4f}) {m['outcome']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
