"""Accuracy-latency frontier: searched networks vs hand-designed baselines on synth-cityscapes.

For each latency weight: search (`workbench.steps.search`, preset --preset), then retrain the
derived network, also widened (--widths, retrain's `width`, as `workbench scale`: a searched network is
tiny, widening it after the search is how it reaches the hand-designed networks' latencies); retrain
every baseline (default: the hand-designed frontier `workbench.seg.baselines.FRONTIER`) with the
same recipe (--recipe, default fast-v1) and budget (epochs, crop, batch, seed); benchmark every
retrained network at --size on --device (batch 1); collect (mIoU, measured latency) with
`workbench.steps.frontier` into benchmarks/results/frontier.json. Every step is a run directory
under --runs-dir and finished steps are skipped, so an interrupted sweep continues where it stopped
(the running step resumes from its checkpoint). One seed: for the seed-averaged comparison judged
at equal latency see benchmarks/proxy_benchmark.py and benchmarks/equal_latency.py.

Small (minutes, CPU):
    python benchmarks/frontier.py --runs-dir runs/frontier-small --synth-count 16 --synth-size 64x128 \
        --weights 0,1 --search-set input_size=64x128 crop_size=64x128 epochs=3 --epochs 2 \
        --crop 64x128 --size 64x128 --widths 1,2 --baselines pspnet_lcnet_035 --device cpu
Full (GPU):
    python benchmarks/frontier.py --device cuda --synth-count 500 --synth-size 512x1024 \
        --weights 0,0.05,0.1,0.3,1.0 --search-set input_size=512x1024 crop_size=256x512 epochs=30 \
        --widths 1,2,3,4 --epochs 100 --crop 512x1024 --size 512x1024
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from workbench import steps
from workbench.config import parse_overrides, parse_size
from workbench.jsonio import atomic_write_json
from workbench.runs import RunDir
from workbench.seg.baselines import FRONTIER

log = logging.getLogger("benchmarks.frontier")


def finished(run_dir: Path) -> bool:
    return RunDir(run_dir).record().get("status") == "finished"


def step(name: str, fn, config: dict, run_dir: Path, resume_key: str | None = "resume") -> None:
    """Run one step unless it already finished; resume it if it started."""
    if finished(run_dir):
        log.info("%s: already finished in %s", name, run_dir)
        return
    if resume_key and RunDir(run_dir).exists():
        config = {**config, resume_key: True}
    log.info("%s -> %s", name, run_dir)
    fn(config, run_dir)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs-dir", default="runs/frontier")
    p.add_argument("--data-root", default="datasets/synth-cityscapes")
    p.add_argument("--synth-count", type=int, default=64, help="generate the dataset if missing: train images")
    p.add_argument("--synth-size", default="256x512")
    p.add_argument("--preset", default="gas")
    p.add_argument("--weights", default="0,0.1,0.5,1.0", help="latency weights (lambda) to search with")
    p.add_argument("--search-set", nargs="*", default=[], metavar="KEY=VALUE", help="search config overrides")
    p.add_argument("--widths", default="1", help="width multipliers of each searched network to retrain")
    p.add_argument("--recipe", default="fast-v1", help="retrain recipe (workbench.seg.recipes), same for all")
    p.add_argument("--epochs", type=int, default=20, help="retrain epochs (same for every network)")
    p.add_argument("--crop", default="256x512")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the recipe's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--baselines", default=",".join(FRONTIER))
    p.add_argument("--size", default="512x1024", help="benchmark input size")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--out", default="benchmarks/results/frontier.json")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    t0 = time.time()
    runs = Path(args.runs_dir)
    data = Path(args.data_root)
    if not (data / "leftImg8bit" / "train").is_dir():
        steps.synth_data("cityscapes", data, count=args.synth_count, size=parse_size(args.synth_size))

    retrain = {"dataset": "cityscapes", "data_root": str(data), "recipe": args.recipe, "epochs": args.epochs,
               "crop_size": list(parse_size(args.crop)), "batch_size": args.batch_size, "lr": args.lr,
               "seed": args.seed, "device": args.device, "threads": args.threads}
    bench = {"size": list(parse_size(args.size)), "device": args.device, "threads": args.threads,
             "repeats": args.repeats, "memory": False}
    search_overrides = parse_overrides(args.search_set)
    try:
        widths = [float(w) for w in args.widths.split(",") if w.strip()]
    except ValueError:
        widths = []
    if not widths or not all(0 < w < float("inf") for w in widths):
        p.error(f"--widths: positive numbers separated by commas, got {args.widths!r}")
    trained = []
    for weight in [float(w) for w in args.weights.split(",") if w.strip()]:
        tag = f"{args.preset}_lw{weight:g}"
        search_dir = runs / f"search_{tag}"
        search_cfg = {"preset": args.preset, "latency_weight": weight, "dataset": "cityscapes",
                      "data_root": str(data), "device": args.device, "seed": args.seed, **search_overrides}
        if args.threads:
            search_cfg.setdefault("threads", args.threads)
        step(f"search {tag}", _search, search_cfg, search_dir)
        for width in widths:  # retrain keeps the widened genotype in its run and records the width
            name = tag if width == 1 else f"{tag}_x{width:g}"
            retrain_dir = runs / f"retrain_{name}"
            step(f"retrain {name}", steps.retrain,
                 {**retrain, "genotype": str(search_dir / "genotype.json"), "width": width}, retrain_dir)
            trained.append(retrain_dir)
    for name in filter(None, args.baselines.split(",")):
        retrain_dir = runs / f"baseline_{name}"
        step(f"retrain {name}", steps.retrain, {**retrain, "baseline": name}, retrain_dir)
        trained.append(retrain_dir)
    for retrain_dir in trained:
        step(f"bench {retrain_dir.name}", steps.benchmark, {**bench, "run": str(retrain_dir)},
             runs / f"bench_{retrain_dir.name}", resume_key=None)

    frontier_dir = runs / "frontier"
    steps.frontier({"roots": [str(runs)], "dataset": "cityscapes"}, frontier_dir)
    frontier = json.loads((frontier_dir / "frontier.json").read_text())
    frontier["budget"] = {"retrain": retrain, "search_overrides": search_overrides, "preset": args.preset,
                          "widths": widths,
                          "bench": bench, "data": {"root": str(data), "synth_count": args.synth_count,
                                                   "synth_size": args.synth_size}}
    frontier["wall_time_s"] = round(time.time() - t0, 1)
    out = Path(args.out)
    atomic_write_json(out, frontier)
    print("| network | kind | latency weight | mIoU | latency ms | GFLOPs | params (M) | Pareto |")
    print("|---|---|---:|---:|---:|---:|---:|:-:|")
    for pt in sorted(frontier["points"], key=lambda q: q["latency_ms"]):
        lw = "-" if pt["latency_weight"] is None else f"{pt['latency_weight']:g}"
        print(f"| {pt['name']} | {pt['kind']} | {lw} | {pt['miou']:.4f} | {pt['latency_ms']:.2f} | "
              f"{pt['gflops'] or 0:.3f} | {pt['params_m'] or 0:.2f} | {'yes' if pt['name'] in frontier['pareto'] else ''} |")
    print(f"\nwrote {out}", file=sys.stderr)
    return 0


def _search(config: dict, run_dir: Path) -> None:
    steps.search(config, run_dir)


if __name__ == "__main__":
    raise SystemExit(main())
