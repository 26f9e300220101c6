"""Does a latency ratio depend on which other networks share the timing rounds?

The study bench times every network of a study together (19 in the targets checks), a search's
calibration times a handful, and `target_measure` times two (the network and its baseline). On the
2-vCPU Intel VM the calibration read FPN-MobileNetV3-small / PSPNet-LCNet-0.35 at 2.04 per round
where the bench read 1.76-1.84 (benchmarks/results/headline.md, second targets check). This times
that ratio with the bench's protocol (`timing.measure_built`: 3 warmup calls, median of 10, each
network rebuilt in each of 21 rounds) in two companies, alternating block by block on one quiet
machine (which goes first alternates): the pair alone, and the pair with five other hand-designed
networks in the same rounds.

    python benchmarks/timing_company.py --blocks 6 --json benchmarks/results/timing_company.json
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from datetime import datetime, timezone
from pathlib import Path

PAIR = ("fpn_mobilenetv3_small", "pspnet_lcnet_035")
COMPANY = ("fpn_mobilenetv3_small_050", "linknet_mobilenetv3_small_050", "pspnet_mobilenetv3_small_050",
           "unet_mobilenetv3_small", "fpn_mobilenet_v2")
PROTOCOL = (3, 10, 21)  # the study bench's (warmup, repeats, rounds)


def ratios(timed: dict[str, list[float]]) -> dict[str, float]:
    """The pair's ratio two ways: per round (the targets checks' verdict) and fastest round / fastest round."""
    from workbench.study.bench import per_round_ratio

    a, b = timed[PAIR[0]], timed[PAIR[1]]
    return {"per_round": per_round_ratio(a, b), "fastest": min(a) / min(b)}


def summary(blocks: list[dict]) -> dict:
    """Per estimator: mean of each company over blocks and the paired difference (company - pair) with its SE."""
    out = {}
    for est in ("per_round", "fastest"):
        pair = [blk["pair"][est] for blk in blocks]
        company = [blk["company"][est] for blk in blocks]
        diff = [c - p for c, p in zip(company, pair)]
        se = statistics.stdev(diff) / math.sqrt(len(diff)) if len(diff) > 1 else None
        out[est] = {"pair_mean": round(statistics.mean(pair), 4), "company_mean": round(statistics.mean(company), 4),
                    "difference": round(statistics.mean(diff), 4), "difference_se": se and round(se, 4),
                    "pair": [round(v, 4) for v in pair], "company": [round(v, 4) for v in company]}
    return out


def main() -> None:
    import torch

    from workbench.device import cpu_model, set_threads
    from workbench.loadcheck import OtherLoad
    from workbench.nas.latency.timing import measure_built
    from workbench.seg.baselines import build_baseline

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--blocks", type=int, default=6, help="blocks; each times the pair alone, then in company")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    set_threads(1)
    size = (128, 256)

    def builders(names):
        return {n: (lambda n=n: build_baseline(n, 11)) for n in names}

    out = {"cpu": cpu_model(), "measured": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "torch": torch.__version__, "threads": 1, "size": list(size), "protocol": list(PROTOCOL),
           "pair": list(PAIR), "company": list(COMPANY), "blocks": []}
    with OtherLoad() as load:
        for block in range(args.blocks):
            row = {}
            order = [("pair", PAIR), ("company", PAIR + COMPANY)]
            for label, names in order if block % 2 == 0 else order[::-1]:  # which goes first alternates
                timed = measure_built(builders(names), size, "cpu", *PROTOCOL)
                row[label] = {**ratios(timed), "rounds": {n: [round(v, 4) for v in timed[n]] for n in PAIR}}
                print(f"block {block} {label:8s} FPN/PSPNet per round {row[label]['per_round']:.3f}, "
                      f"fastest {row[label]['fastest']:.3f}", flush=True)
            out["blocks"].append(row)
    out["other_load"] = load.share
    out["summary"] = summary(out["blocks"])
    print(json.dumps(out["summary"], indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
