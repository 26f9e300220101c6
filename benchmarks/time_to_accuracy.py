"""Time to accuracy: training seconds each recipe needs to reach `plain-v1`'s final mIoU.

Images per second (`train_throughput.py`) says how fast a recipe runs, not how much of the
budget it needs: a recipe that learns more per image reaches a given accuracy sooner even at the
same speed. This measures both in the same runs, as DAWNBench's time-to-accuracy does. Every arm
is a real `workbench retrain` in a fresh process (`--set eval_every=1`, so the run's metrics hold
a validation mIoU after every epoch), the arms alternated within each seed; `+tcmalloc` arms run
under `WORKBENCH_ALLOCATOR=tcmalloc`, the shipped switch.

The rules, fixed before the first run:
- A network's target is the mean over seeds of `plain-v1`'s final val mIoU (system allocator).
- An arm's time to target, per seed, is its summed training-epoch seconds (`epoch_time_s`:
  evaluation and process start not counted, for any arm) up to and including the first epoch
  whose val mIoU reaches the target; a seed that never reaches it counts as not reached.
- Speed-up to target = `plain-v1`'s mean total training seconds / the arm's mean time to target
  (only where every seed reached it). A mid-run evaluation of a cosine or poly schedule sits below
  what a run of that shorter budget would reach, so the figure is conservative.
- Images/s per arm = images / summed training-epoch seconds, mean over seeds.

    python benchmarks/time_to_accuracy.py --data datasets/proxy-camvid-128x256-400 \\
        --net benchmarks/results/proxy_genotypes/lgcnet-lw0.json --net fpn_mobilenetv3_small_050 \\
        --epochs 20 --seed 0 --seed 1 --out benchmarks/results/time_to_accuracy.json
    python benchmarks/time_to_accuracy.py --data datasets/proxy-camvid-128x256-400 \\
        --net benchmarks/results/proxy_genotypes/lgcnet-lw0.json --arm plain-v1 --arm fast-v3 \\
        --epochs 40 --seed 0 --seed 1 --out benchmarks/results/time_to_accuracy_40ep.json
    python benchmarks/time_to_accuracy.py --data datasets/proxy-camvid-128x256-400 \\
        --net benchmarks/results/proxy_genotypes/lgcnet-lw0.json --arm plain-v1 --arm fast-v3+tcmalloc \\
        --arm fast-v3+b16+tcmalloc --epochs 40 --seed 0 --seed 1 --out benchmarks/results/time_to_accuracy_b16.json
    python benchmarks/time_to_accuracy.py --data datasets/proxy-camvid-128x256-400 \\
        --net benchmarks/results/proxy_genotypes/lgcnet-lw0.json --arm plain-v1 --arm fast-v3+tcmalloc \\
        --arm fast-v3+c96+tcmalloc --arm fast-v3+c64+tcmalloc --epochs 40 --seed 0 --seed 1 \\
        --out benchmarks/results/time_to_accuracy_crop.json

The batch-16 arm (declared before its run, 2026-12-06) asks whether a larger batch is the lever left for
images/s: a scouting step timing on the 2-vCPU Intel Xeon ran lgcnet-lw0 1.41x and FPN-MobileNetV3-small-0.5
1.64x faster per image at batch 16 in channels_last than at batch 8 contiguous (1.12x / 1.30x at batch 8). It
trains the same epochs in half the optimizer steps at the recipe's own lr, one setting, not tuned; its
images are counted at its batch. Whether it still reaches the accuracy is what the run is for.
The crop arms (declared before their run, 2026-12-07) train on random 96x192 or 64x128 crops of the
128x256 images (after the recipe's random scale), as segmentation recipes train on crops of larger images;
a crop counts as one training image, and the JSON's `pixels_per_s` says what that hides.

Time only on a quiet machine (the JSON records the load average before and after).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # train_throughput.py, beside this file

TCMALLOC = {"WORKBENCH_ALLOCATOR": "tcmalloc"}
# arm: (recipe, environment, retrain fields that differ from the command line's)
ARMS: dict[str, tuple[str, dict[str, str], dict]] = {
    "plain-v1": ("plain-v1", {}, {}),
    "plain-v1+tcmalloc": ("plain-v1", TCMALLOC, {}),
    "fast-v1": ("fast-v1", {}, {}),
    "fast-v1+tcmalloc": ("fast-v1", TCMALLOC, {}),
    "fast-v3": ("fast-v3", {}, {}),  # the studies' recipe, at their 40-epoch budget
    "fast-v3+tcmalloc": ("fast-v3", TCMALLOC, {}),
    "fast-v3+b16+tcmalloc": ("fast-v3", TCMALLOC, {"batch_size": 16}),
    "fast-v4": ("fast-v4", {}, {}),  # batch 16 with its own peak lr: the recipe's batch
    "fast-v4+tcmalloc": ("fast-v4", TCMALLOC, {}),
    # channels_last + bf16 asked for, whatever the run-start probe would pick (bf16 convolutions pay on AMX tiles)
    "fast-v4+clbf16+tcmalloc": ("fast-v4", TCMALLOC, {"memory_format": "channels_last", "precision": "bf16"}),
    # training crops smaller than the image (evaluated at the full image, as every arm)
    "fast-v3+c96+tcmalloc": ("fast-v3", TCMALLOC, {"crop_size": [96, 192]}),
    "fast-v3+c64+tcmalloc": ("fast-v3", TCMALLOC, {"crop_size": [64, 128]}),
}


def one_run(net: str, arm: str, seed: int, args: argparse.Namespace, work: Path) -> dict:
    """One retrain of `net` under `arm`; its per-epoch curve of (training seconds so far, val mIoU)."""
    from train_throughput import retrain_in_processes

    from workbench.runs import RunDir
    from workbench.seg.recipes import get_recipe

    recipe, env, changed = ARMS[arm]
    size = [int(v) for v in args.size.split("x")]
    kw = {"genotype": net} if net.endswith(".json") else {"baseline": net}
    fields = {**kw, "dataset": args.dataset, "data_root": args.data, "epochs": args.epochs, "crop_size": size,
              "batch_size": args.batch or get_recipe(recipe).batch_size, "recipe": recipe, "threads": args.threads, "eval_size": size, **changed}
    batch = fields["batch_size"]
    sets = [f"{k}={v}" for k, v in changed.items() if k not in ("crop_size", "batch_size")]  # the rest via --set
    run_dir = work / f"{Path(net).stem}-{arm}-s{seed}"
    record = retrain_in_processes(fields, run_dir, 1, env, ("--seed", str(seed), "--set", "eval_every=1", *sets))
    metrics = RunDir(run_dir).metrics()
    train = {r["epoch"]: r["epoch_time_s"] for r in metrics if r.get("phase") == "train"}
    val = {r["epoch"]: r["miou"] for r in metrics if r.get("phase") == "val"}
    curve, spent = [], 0.0
    for epoch in sorted(train):
        spent += train[epoch]
        curve.append({"epoch": epoch + 1, "train_s": round(spent, 3), "miou": val.get(epoch)})
    speed = record.get("throughput") or {}
    return {"network": Path(net).stem, "arm": arm, "recipe": recipe, "seed": seed,
            "allocator": speed.get("allocator"), "memory_format": speed.get("memory_format"),
            "precision": speed.get("precision"), "batch": batch, "images": record["steps"] * batch,
            "train_s": round(spent, 3), "images_per_s": round(record["steps"] * batch / spent, 3),
            "crop": fields["crop_size"],
            "pixels_per_s": round(record["steps"] * batch * fields["crop_size"][0] * fields["crop_size"][1] / spent),
            "miou": record["metrics"]["miou"], "curve": curve}


def time_to(curve: list[dict], target: float) -> float | None:
    """Training seconds through the first epoch whose val mIoU reaches `target` (None: never)."""
    return next((c["train_s"] for c in curve if c["miou"] is not None and c["miou"] >= target), None)


def summarize(runs: list[dict], arms: list[str]) -> dict:
    """Per network: the target, and per arm mean mIoU, images/s, time to target and speed-ups."""
    out = {}
    for net in dict.fromkeys(r["network"] for r in runs):
        mine = [r for r in runs if r["network"] == net]
        base = [r for r in mine if r["arm"] == "plain-v1"]
        target = statistics.mean(r["miou"] for r in base)
        base_s = statistics.mean(r["train_s"] for r in base)
        base_ips = statistics.mean(r["images_per_s"] for r in base)
        base_pps = statistics.mean(r["pixels_per_s"] for r in base)
        rows = {}
        for arm in arms:
            rs = [r for r in mine if r["arm"] == arm]
            if not rs:
                continue
            reach = [time_to(r["curve"], target) for r in rs]
            ips = statistics.mean(r["images_per_s"] for r in rs)
            done = all(t is not None for t in reach)
            rows[arm] = {"miou": [r["miou"] for r in rs], "miou_mean": round(statistics.mean(r["miou"] for r in rs), 4),
                         "images_per_s": round(ips, 3), "images_per_s_x": round(ips / base_ips, 3),
                         "pixels_per_s_x": round(statistics.mean(r["pixels_per_s"] for r in rs) / base_pps, 3),
                         "time_to_target_s": reach,
                         "speedup_to_target": round(base_s / statistics.mean(reach), 2) if done else None}
        out[net] = {"target_miou": round(target, 4), "plain_v1_train_s": round(base_s, 2), "arms": rows}
    return out


def plot(runs: list[dict], summary: dict, path: Path) -> None:
    """mIoU against training minutes, one panel per network, one line per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nets = list(summary)
    fig, axes = plt.subplots(1, len(nets), figsize=(5.5 * len(nets), 4), squeeze=False)
    palette = ("tab:grey", "tab:brown", "tab:blue", "tab:green", "tab:purple", "tab:orange", "tab:red",
               "tab:olive", "tab:cyan", "tab:pink")
    colours = {arm: palette[i % len(palette)] for i, arm in enumerate(ARMS)}  # an added arm never lacks one
    for ax, net in zip(axes[0], nets):
        for r in (r for r in runs if r["network"] == net):
            pts = [(c["train_s"] / 60, c["miou"]) for c in r["curve"] if c["miou"] is not None]
            ax.plot(*zip(*pts), color=colours[r["arm"]], alpha=0.8,
                    label=r["arm"] if r["seed"] == min(x["seed"] for x in runs) else None)
        ax.axhline(summary[net]["target_miou"], color="black", lw=0.8, ls="--", label="plain-v1 final (target)")
        ax.set(title=net, xlabel="training minutes (evaluation not counted)", ylabel="val mIoU")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--net", action="append", required=True, help="baseline name or genotype.json (repeat)")
    p.add_argument("--data", required=True, help="dataset root")
    p.add_argument("--dataset", default="camvid")
    p.add_argument("--arm", action="append", choices=list(ARMS), help=f"arms (default all: {', '.join(ARMS)})")
    p.add_argument("--seed", action="append", type=int, help="seeds (repeat; default 0 and 1)")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch", type=int, default=None, help="batch size of every arm (default: each recipe's)")
    p.add_argument("--size", default="128x256")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--work", default="/tmp/time_to_accuracy_runs")
    p.add_argument("--out", default="benchmarks/results/time_to_accuracy.json")
    args = p.parse_args()
    arms = args.arm or list(ARMS)
    if "plain-v1" not in arms:
        p.error("--arm: plain-v1 sets the target; include it")
    from train_throughput import bf16_flags

    from workbench.device import cpu_model

    load_before = os.getloadavg()
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    runs = []
    for seed in args.seed or [0, 1]:
        for net in args.net:
            for arm in arms:
                runs.append(one_run(net, arm, seed, args, Path(args.work)))
                r = runs[-1]
                print(f"{r['network']} {arm} seed {seed}: mIoU {r['miou']:.4f}, {r['images_per_s']:.1f} images/s, "
                      f"{r['train_s']:.0f} s ({r['allocator'] or 'system'} allocator, {r['memory_format']}, "
                      f"{r['precision']})", flush=True)
    summary = summarize(runs, arms)
    result = {"machine": {"cpu": cpu_model(), "bf16_flags": bf16_flags(), "cores": os.cpu_count(),
                          "threads": args.threads},
              "started": started, "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "command": " ".join(sys.argv), "epochs": args.epochs, "batch": args.batch, "size": args.size,
              "summary": summary, "runs": runs,
              "loadavg_before": load_before, "loadavg_after": os.getloadavg()}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    plot(runs, summary, out.with_suffix(".png"))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
