"""The paper presets as far as a CPU goes: each builds, steps, checkpoints and derives; sizes and
memory at the papers' scale, and what a step costs here.

For `gas-paper`, `lgcnet-paper` and `autortnet-paper`: the supernet's parameters; a search run with
the preset's crop (224x448) and batch (2) on generated Cityscapes-format data, for a weights-only
epoch and a searching epoch of `--steps` steps each (the latency table at `--lut-size`, since a
full 1024x2048 table is GPU work); its peak resident memory (a fresh process per preset,
`ru_maxrss`); training images/s of the supernet's weight step at the search crop and batch, and
of the derived network at the retrain crop (batch 2 here; the preset's 12 is GPU work); then the
derived network's parameters and GFLOPs at the preset's `input_size` (the papers' test
resolution), beside the paper's reported figures.

    python benchmarks/paper_presets.py --out-dir /tmp/paper --json benchmarks/results/paper_presets.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

PRESETS = ("gas-paper", "lgcnet-paper", "autortnet-paper")
PAPERS = {"gas-paper": "GAS: 73.5 % mIoU at 108.4 FPS (Titan Xp); params not in the abstract",
          "lgcnet-paper": "LGCNet: 74.0 % mIoU at 115.2 FPS (Titan Xp); params not in the abstract",
          "autortnet-paper": "AutoRTNet: 73.9 % test mIoU at 110 FPS, 768x1536 (Titan Xp); 2.5 M params in the "
                             "issue, not verified"}


def train_images_per_s(model, batch: int, crop: tuple[int, int], steps: int = 3) -> float:
    """Training throughput of plain weight steps (forward, cross entropy, backward, SGD) after one
    untimed step, on random images and labels of the given crop."""
    import torch
    import torch.nn.functional as F

    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01)
    x, y = torch.randn(batch, 3, *crop), torch.randint(0, 19, (batch, *crop))
    model.train()
    for i in range(steps + 1):
        if i == 1:
            t0 = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return batch * steps / (time.perf_counter() - t0)


def one(preset: str, data: str, out: Path, steps: int, lut_size: str, threads: int) -> dict:
    """Runs in a fresh process: peak memory is this preset's alone."""
    import torch

    from workbench.nas.genotypes import load_genotype
    from workbench.nas.network import build_network
    from workbench.nas.search import build_supernet, resolve_config, run_search
    from workbench.seg.benchmark import count_flops

    torch.set_num_threads(threads)
    cfg = resolve_config({"preset": preset})
    supernet = build_supernet(cfg, 19)
    params = sum(p.numel() for p in supernet.weight_parameters())
    search_ips = train_images_per_s(supernet, cfg.batch_size, tuple(cfg.crop_size))
    del supernet
    h, w = (int(v) for v in lut_size.split("x"))
    values = {"preset": preset, "dataset": "cityscapes", "data_root": data, "epochs": 2, "warmup_epochs": 1,
              "steps_per_epoch": steps, "max_val_images": 1, "input_size": [h, w], "device": "cpu",
              "threads": threads, "lut_warmup": 1, "lut_repeats": 1, "lut_rounds": 1, "lut_calibrate": 0}
    t0 = time.time()
    rec = run_search(values, out / preset)
    seconds = time.time() - t0
    epochs = [json.loads(line) for line in (out / preset / "metrics.jsonl").read_text().splitlines() if line.strip()]
    genotype = load_genotype(out / preset / "genotype.json")
    full = dict(genotype.to_dict(), input_size=list(cfg.input_size))
    net = build_network(load_genotype(full)).eval()
    x = torch.randn(1, 3, *cfg.input_size)
    flops = count_flops(net, x)
    from workbench.nas.paper_presets import PAPER_RETRAIN

    retrain_crop = tuple(PAPER_RETRAIN[preset]["crop_size"])
    retrain_ips = train_images_per_s(build_network(load_genotype(full)), 2, retrain_crop)
    return {"preset": preset, "status": rec["status"], "supernet_params_m": params / 1e6,
            "search_crop": list(cfg.crop_size), "search_batch": cfg.batch_size, "steps_per_epoch": steps,
            "search_seconds": round(seconds, 1), "epochs": epochs,
            "supernet_train_images_per_s": round(search_ips, 3),
            "derived_train_images_per_s": round(retrain_ips, 3), "retrain_crop_measured": list(retrain_crop),
            "retrain_batch_measured": 2,
            "checkpoint": (out / preset / "checkpoints" / "last.pt").is_file(),
            "derived_params_m": sum(p.numel() for p in net.parameters()) / 1e6,
            "derived_gflops_at_input_size": flops / 1e9, "input_size": list(cfg.input_size),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "paper": PAPERS[preset]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out-dir", required=True)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--lut-size", default="128x256")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default="benchmarks/results/paper_presets.json")
    p.add_argument("--one", help=argparse.SUPPRESS)
    args = p.parse_args()
    out = Path(args.out_dir)
    data = out / "data"
    if args.one:
        print(json.dumps(one(args.one, str(data), out, args.steps, args.lut_size, args.threads)))
        return
    from workbench.data.synth import generate
    from workbench.device import cpu_model

    if not (data / "synth.json").exists():
        generate("cityscapes", data, count=8, val_count=2, size=(512, 1024), seed=0)
    rows = []
    for preset in PRESETS:
        res = subprocess.run([sys.executable, __file__, "--out-dir", str(out), "--steps", str(args.steps),
                              "--lut-size", args.lut_size, "--threads", str(args.threads), "--one", preset],
                             capture_output=True, text=True, check=True)
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        print(f"{preset}: {r['status']}, supernet {r['supernet_params_m']:.2f} M params, peak RSS "
              f"{r['peak_rss_mb']:.0f} MB, search {r['search_seconds']:.0f} s, {r['supernet_train_images_per_s']:.2f} "
              f"img/s search, {r['derived_train_images_per_s']:.2f} img/s retrain; derived {r['derived_params_m']:.2f} M "
              f"params, {r['derived_gflops_at_input_size']:.1f} GFLOPs at {r['input_size']}", flush=True)
    result = {"machine": cpu_model(), "cores": os.cpu_count(),
              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "command": "python benchmarks/paper_presets.py " + " ".join(sys.argv[1:]), "presets": rows}
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
