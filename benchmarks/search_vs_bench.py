"""Why do the searches' own timings read their networks faster than the study bench does?

In targets check 4 (benchmarks/targets_check4.yaml) the searches timed each derived network against
its baseline with the other pool job stopped, yet the bench's mean miss over three quiet timing runs
lay a median 4.7 points above the miss the search kept (benchmarks/targets_across.py). Two
differences remain between the two timings: the search times the network and its baseline alone
(two networks per round, about 15 s) in a process that holds its supernet, the bench times all 19
networks of the study together for three minutes in a fresh process. This re-times chosen networks
of the study with the timer the searches ran in their own process (`target.pair_ratio`, the same
protocol and rounds; `baseline_ratio_timer` has since moved it into a fresh process) in this
process without a supernet, and then with the study's supernet built (and freed again after
each block), in alternating blocks on a quiet machine, beside the search's kept miss and the bench's mean miss.

    python benchmarks/search_vs_bench.py runs/targets-check4 \\
        --across benchmarks/results/headline/targets_check4_across.json --blocks 2 \\
        --json benchmarks/results/headline/search_vs_bench_check4.json
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
from datetime import datetime, timezone
from pathlib import Path

RUNS = ("targets/autortnet-t0.6-s0", "targets/autortnet-t0.6-s1", "targets/autortnet-t0.6-s2",
        "level-fpn/autortnet-c32-t0.9-fpn050-s4", "targets/autortnet-t0.4-s1",
        "level-pspnet/autortnet-c16-t0.9-pspnet-s2")


def main() -> None:
    from workbench.device import cpu_model, set_threads
    from workbench.loadcheck import OtherLoad
    from workbench.nas.genotypes import load_genotype
    from workbench.nas.latency.table import CALIBRATION_PROTOCOL
    from workbench.nas.target import pair_ratio

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("root", type=Path)
    p.add_argument("--across", type=Path, required=True, help="targets_across.py --json of the study's timing runs")
    p.add_argument("--blocks", type=int, default=2)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    set_threads(1)
    across = {r["run"]: r for r in json.loads(args.across.read_text())["networks"]}
    nets = {}
    for run in RUNS:
        search = args.root / run / "search"
        cfg = json.loads((search / "config.json").read_text())
        row = across[f"{run}/search"]
        nets[run] = {"genotype": load_genotype(search / "genotype.json"), "baseline": row["baseline"],
                     "fraction": cfg["target_fraction"], "rounds": cfg.get("target_measure_rounds", 21),
                     "channels": cfg["space"].get("channels", 16), "search_kept_pct": row["search_kept_pct"],
                     "bench_mean_pct": row["mean"]}
    supernets = []
    out = {"cpu": cpu_model(), "measured": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "threads": 1, "root": str(args.root), "blocks": []}
    with OtherLoad() as load:
        for block in range(args.blocks):
            for condition in ("fresh process", "supernet held"):
                if condition == "supernet held":
                    from workbench.nas.search import build_supernet, resolve_config

                    for channels in sorted({n["channels"] for n in nets.values()}):
                        supernets.append(build_supernet(resolve_config(
                            {"preset": "autortnet", "dataset": "camvid", "nodes": 2, "channels": channels,
                             "input_size": [128, 256]}), 11))
                row = {"block": block, "condition": condition, "miss_pct": {}}
                for run, n in nets.items():
                    protocol = [*CALIBRATION_PROTOCOL[:2], n["rounds"]]  # in this process, as a search timed
                    ratio = pair_ratio(n["genotype"].to_dict(), n["baseline"], 11, [128, 256], "cpu", protocol)
                    row["miss_pct"][run] = round(100 * (ratio / n["fraction"] - 1), 2)
                    print(f"block {block} {condition:13s} {run}: {row['miss_pct'][run]:+.1f} % "
                          f"(search kept {n['search_kept_pct']:+.1f}, bench mean {n['bench_mean_pct']:+.1f})",
                          flush=True)
                out["blocks"].append(row)
                if condition == "supernet held":  # the next block's first condition is a fresh process again
                    supernets.clear()
                    gc.collect()
    out["other_load"] = load.share
    out["networks"] = {}
    for run, n in nets.items():
        by = {c: [b["miss_pct"][run] for b in out["blocks"] if b["condition"] == c]
              for c in ("fresh process", "supernet held")}
        out["networks"][run] = {"search_kept_pct": n["search_kept_pct"], "bench_mean_pct": n["bench_mean_pct"],
                                **{f"{c} mean": round(statistics.fmean(v), 2) for c, v in by.items()}}
    for c in ("fresh process", "supernet held"):
        gaps = [r["bench_mean_pct"] - r[f"{c} mean"] for r in out["networks"].values()]
        kept = [r[f"{c} mean"] - r["search_kept_pct"] for r in out["networks"].values()]
        out[f"bench_minus_{c.replace(' ', '_')}_median"] = round(statistics.median(gaps), 2)
        out[f"{c.replace(' ', '_')}_minus_search_median"] = round(statistics.median(kept), 2)
    print(json.dumps({k: v for k, v in out.items() if k.endswith("median")}, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
