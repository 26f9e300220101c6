"""Do two timing protocols rank networks alike? The latency calibration's (few calls, few rounds,
models built once) against the study bench's (`workbench ablations bench`: warmup 3, median of 10,
21 rounds, each model rebuilt per round), in alternating blocks on one quiet machine, and the
bench's per-round median ratio beside each. Reads two hand-designed networks and two searched
networks of a study (retrain runs under ROOT). `--supernet` times them in a process that holds a
search's supernet, as a search's calibration does (the calibration now rebuilds each network per
round, as the bench does: `timing.measure_built`).

    python benchmarks/calibration_protocol.py runs/headline --blocks 3 --calibration 1,3,7 \\
        --json benchmarks/results/headline/calibration_protocol_1-3-7.json
    python benchmarks/calibration_protocol.py runs/headline --blocks 3 --calibration 3,10,21 --supernet \\
        --json benchmarks/results/headline/calibration_protocol_3-10-21_supernet.json
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime, timezone
from pathlib import Path

NETWORKS = {  # name -> baseline name, or a retrain run under ROOT
    "fpn_mobilenetv3_small": "baseline:fpn_mobilenetv3_small",
    "pspnet_lcnet_035": "baseline:pspnet_lcnet_035",
    "t0.6-s0": "run:targets/autortnet-t0.6-s0/retrain",
    "pspnet-level-s0": "run:level-pspnet/autortnet-c16-t0.9-pspnet-s0/retrain",
}


def main() -> None:
    import torch

    from workbench.device import cpu_model, set_threads
    from workbench.nas.latency.timing import measure_built, measure_networks
    from workbench.seg.benchmark import BenchmarkConfig, network_spec
    from workbench.seg.model import build_from_spec
    from workbench.study.bench import per_round_ratio

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("root", type=Path)
    p.add_argument("--blocks", type=int, default=3)
    p.add_argument("--calibration", default="1,3,3", help="warmup,repeats,rounds of the calibration protocol")
    p.add_argument("--supernet", action="store_true",
                   help="first build the 16-channel AutoRTNet supernet and keep it alive, as a search's process "
                        "has it when its calibration times")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    cal_warmup, cal_repeats, cal_rounds = (int(v) for v in args.calibration.split(","))
    set_threads(1)
    supernet = None
    if args.supernet:
        from workbench.nas.search import build_supernet, resolve_config

        supernet = build_supernet(resolve_config({"preset": "autortnet", "dataset": "camvid", "nodes": 2,
                                                  "channels": 16, "input_size": [128, 256]}), 11)
    specs = {}
    for name, src in NETWORKS.items():
        kind, _, value = src.partition(":")
        cfg = BenchmarkConfig(baseline=value, num_classes=11) if kind == "baseline" else \
            BenchmarkConfig(run=str(args.root / value))
        specs[name] = network_spec(cfg)
    size = (128, 256)

    def build(spec):
        torch.manual_seed(0)
        return build_from_spec(spec).eval()

    out = {"cpu": cpu_model(), "measured": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "threads": 1, "size": list(size), "calibration_protocol": [cal_warmup, cal_repeats, cal_rounds],
           "bench_protocol": [3, 10, 21], "supernet_alive": supernet is not None, "blocks": []}
    for block in range(args.blocks):
        t0 = time.time()
        cal = measure_networks({k: build(s) for k, s in specs.items()}, size, "cpu", cal_warmup, cal_repeats,
                               cal_rounds)
        t1 = time.time()
        bench = measure_built({k: (lambda s=s: build_from_spec(s)) for k, s in specs.items()}, size, "cpu", 3, 10, 21)
        row = {"calibration_rounds": cal, "bench_rounds": bench, "seconds": [round(t1 - t0, 1), round(time.time() - t1, 1)]}
        for label, timed in (("calibration", cal), ("bench", bench)):
            fastest = {k: min(v) for k, v in timed.items()}
            row[f"{label}_fpn_over_psp_fastest"] = fastest["fpn_mobilenetv3_small"] / fastest["pspnet_lcnet_035"]
            row[f"{label}_fpn_over_psp_per_round"] = per_round_ratio(timed["fpn_mobilenetv3_small"],
                                                                     timed["pspnet_lcnet_035"])
            print(f"block {block} {label:11s} " + " ".join(f"{k} {v:.2f}" for k, v in fastest.items()) +
                  f" | FPN/PSPNet fastest {row[f'{label}_fpn_over_psp_fastest']:.3f}, per round "
                  f"{row[f'{label}_fpn_over_psp_per_round']:.3f}", flush=True)
        out["blocks"].append(row)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
