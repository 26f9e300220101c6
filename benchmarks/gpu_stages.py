"""What each paper stage costs on one accelerator: search step time, retrain and pretrain images/s,
peak memory, and the wall time those figures imply for the paper presets' schedules on 1 and 8 GPUs.

For `gas-paper`, `lgcnet-paper` and `autortnet-paper`, on `--device`:

- **search**: the preset's supernet at its search crop and batch (224x448, batch 2), the search's
  own weight step (SGD, gradient clipping) and architecture step (`workbench.nas.architect`, with
  the latency term over a table whose every entry is 1 ms: the term's cost does not depend on the
  prices), at fp32 and bf16 autocast. A warm-up epoch runs weight steps only, a search epoch both.
- **retrain**: the network the supernet derives at initialisation, at the paper retrain's crop and
  batch (512x1024, batch 12: `workbench.nas.paper_presets.PAPER_RETRAIN`), one SGD step of cross
  entropy, in fp32 contiguous and in bf16 autocast + `channels_last`.
- **pretrain**: the same network's body as a 1,000-class classifier (`workbench.seg.pretrain`) at
  224x224, batch 256 (`PretrainConfig`'s defaults), fp32 and bf16 + `channels_last`.

Every figure is the median of `--rounds` rounds of `--steps` synchronised steps after `--warmup`
untimed ones, on random tensors already on the device: the compute alone, no data loading. Peak
memory is `torch.cuda.max_memory_allocated` per variant. The wall-time projection multiplies these
per-step figures by the schedules (Cityscapes 2,975 training images, halved for the search;
ImageNet-1k 1,281,167 images for `--pretrain-epochs`); the 8-GPU figure divides by 8, i.e. perfect
data-parallel scaling and data loading that keeps up: a lower bound, not a measurement.

    python benchmarks/gpu_stages.py --device cuda --json benchmarks/results/gpu/gpu_stages.json
    python benchmarks/gpu_stages.py --device cpu --scale 0.125 --steps 1 --rounds 1 --json /tmp/s.json  # smoke
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PRESETS = ("gas-paper", "lgcnet-paper", "autortnet-paper")
CITYSCAPES_TRAIN = 2975  # images in Cityscapes' fine train split
IMAGENET_TRAIN = 1_281_167  # images in ImageNet-1k's train split


def scaled(size, scale: float) -> tuple[int, int]:
    return tuple(max(32, int(round(v * scale / 32)) * 32) for v in size)


def timed(step, device: torch.device, warmup: int, steps: int, rounds: int) -> dict:
    """Median over rounds of the mean seconds per step; peak memory over all of them."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    try:
        for _ in range(warmup):
            step()
        sync()
        per_round = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            for _ in range(steps):
                step()
            sync()
            per_round.append((time.perf_counter() - t0) / steps)
    except torch.cuda.OutOfMemoryError as exc:
        return {"error": f"out of memory: {str(exc).splitlines()[0][:200]}"}
    out = {"seconds_per_step": statistics.median(per_round), "rounds": [round(s, 6) for s in per_round]}
    if device.type == "cuda":
        out["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    return out


def search_variant(cfg, device: torch.device, crop: tuple[int, int], args) -> dict:
    """The search's weight step and architecture step of `cfg`'s supernet at one precision."""
    from workbench.nas.architect import Architect
    from workbench.nas.search import build_supernet

    torch.manual_seed(0)
    model = build_supernet(cfg, 19).to(device)
    lut = {"entries": {p.key: 1.0 for p in model.lut_probes(tuple(cfg.input_size))},
           "input_size": list(cfg.input_size)}
    architect = Architect(model, model.latency_model(lut).to(device), lr=cfg.arch_lr,
                          weight_decay=cfg.arch_weight_decay, latency_weight=max(cfg.latency_weight, 0.01),
                          target_latency_ms=None, precision=cfg.precision)
    w_opt = torch.optim.SGD(model.weight_parameters(), lr=cfg.lr, momentum=cfg.momentum)
    x = torch.randn(cfg.batch_size, 3, *crop, device=device)
    y = torch.randint(0, 19, (cfg.batch_size, *crop), device=device)
    model.train()

    def weight_step():
        w_opt.zero_grad(set_to_none=True)
        with architect.precision.autocast():
            logits = model(x, model.arch_weights(sample=True))
        F.cross_entropy(logits.float(), y).backward()
        torch.nn.utils.clip_grad_norm_(model.weight_parameters(), cfg.grad_clip)
        w_opt.step()

    def search_step():
        architect.step(x, y)
        weight_step()

    return {"weight_step": timed(weight_step, device, args.warmup, args.steps, args.rounds),
            "search_step": timed(search_step, device, args.warmup, args.steps, args.rounds),
            "crop": list(crop), "batch": cfg.batch_size,
            "supernet_params_m": round(sum(p.numel() for p in model.weight_parameters()) / 1e6, 3)}


def search_figures(preset: str, precision: str, device: torch.device, scale: float, args) -> dict:
    """The preset's search steps at one precision."""
    from workbench.nas.search import resolve_config

    cfg = resolve_config({"preset": preset, "precision": precision, "device": device.type})
    out = search_variant(cfg, device, scaled(cfg.crop_size, scale), args)
    print(f"{preset} search {precision}: {out['search_step']}", flush=True)
    return out


def initial_genotype(preset: str, scale: float) -> dict:
    """The genotype the preset's supernet derives at initialisation (seed 0): the network the
    retrain and pretrain figures are taken of."""
    from workbench.nas.search import build_supernet, make_genotype, resolve_config

    cfg = resolve_config({"preset": preset})
    torch.manual_seed(0)
    genotype = make_genotype(cfg, build_supernet(cfg, 19).derive(), 19).to_dict()
    genotype["input_size"] = list(scaled(cfg.input_size, scale))
    return genotype


def schedule(preset: str) -> dict:
    from workbench.nas.search import resolve_config

    cfg = resolve_config({"preset": preset})
    return {"epochs": cfg.epochs, "warmup_epochs": cfg.warmup_epochs,
            "steps_per_epoch": CITYSCAPES_TRAIN // 2 // cfg.batch_size}


def train_variant(model_of, batch: int, size: tuple[int, int], classes: int, dense: bool, fast: bool,
                  device: torch.device, args) -> dict:
    """One SGD step of cross entropy: fp32 contiguous, or (`fast`) bf16 autocast with channels_last."""
    torch.manual_seed(0)
    model = model_of().to(device).train()
    x = torch.randn(batch, 3, *size, device=device)
    if fast:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    y = torch.randint(0, classes, (batch, *size) if dense else (batch,), device=device)

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=fast):
            logits = model(x)
        F.cross_entropy(logits.float(), y, ignore_index=255).backward()
        opt.step()

    fig = timed(step, device, args.warmup, args.steps, args.rounds)
    if "seconds_per_step" in fig:
        fig["images_per_s"] = round(batch / fig["seconds_per_step"], 2)
    return fig


def train_figures(model_of, batch: int, size: tuple[int, int], classes: int, dense: bool, device: torch.device,
                  args) -> dict:
    return {"fp32": train_variant(model_of, batch, size, classes, dense, False, device, args),
            "bf16_channels_last": train_variant(model_of, batch, size, classes, dense, True, device, args),
            "batch": batch, "size": list(size)}


def project(preset: str, search: dict, retrain: dict, pretrain: dict, args) -> dict:
    """Hours per stage on 1 GPU from the per-step figures (stages not measured are left out); 8 GPUs as
    a perfect-scaling lower bound."""
    from workbench.nas.paper_presets import PAPER_RETRAIN

    def best(fig: dict) -> float | None:
        values = [v["images_per_s"] for k, v in fig.items() if isinstance(v, dict) and "images_per_s" in v]
        return max(values) if values else None

    sched = schedule(preset)
    hours = {}
    for precision in ("fp32", "bf16"):
        s = search.get(precision)
        if s is None:
            continue
        if "seconds_per_step" in s["weight_step"] and "seconds_per_step" in s["search_step"]:
            seconds = sched["steps_per_epoch"] * (sched["warmup_epochs"] * s["weight_step"]["seconds_per_step"]
                                                  + (sched["epochs"] - sched["warmup_epochs"])
                                                  * s["search_step"]["seconds_per_step"])
            hours[f"search_{precision}"] = seconds / 3600
    retrain_images = PAPER_RETRAIN[preset]["epochs"] * CITYSCAPES_TRAIN
    if retrain and best(retrain):
        hours["retrain"] = retrain_images / best(retrain) / 3600
    if pretrain and best(pretrain):
        hours["pretrain"] = args.pretrain_epochs * IMAGENET_TRAIN / best(pretrain) / 3600
    return {"hours_1_gpu": {k: round(v, 2) for k, v in hours.items()},
            "hours_8_gpus_lower_bound": {k: round(v / 8, 2) for k, v in hours.items()},
            "retrain_images": retrain_images, "pretrain_images": args.pretrain_epochs * IMAGENET_TRAIN}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--presets", nargs="+", default=list(PRESETS))
    p.add_argument("--scale", type=float, default=1.0, help="shrink every crop (smoke runs on the CPU)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--retrain-batch", type=int, default=None, help="default: the paper retrain's (12)")
    p.add_argument("--pretrain-batch", type=int, default=None, help="default: PretrainConfig's (256)")
    p.add_argument("--pretrain-epochs", type=int, default=90)
    p.add_argument("--json", required=True)
    args = p.parse_args()

    from workbench.nas.paper_presets import PAPER_RETRAIN
    from workbench.seg.pretrain import BodyClassifier, PretrainConfig

    defaults = {f.name: f.default for f in dataclasses.fields(PretrainConfig)}
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    record = {"created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "command": " ".join(sys.argv), "torch": torch.__version__, "device": args.device,
              "device_name": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
              "scale": args.scale, "warmup": args.warmup, "steps": args.steps, "rounds": args.rounds,
              "presets": {}}
    from workbench.nas.network import build_network

    def save() -> None:  # after every stage: a run stopped by its time limit keeps what it measured
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(record, indent=1))

    for preset in args.presets:
        genotype = initial_genotype(preset, args.scale)
        entry = record["presets"][preset] = {
            "derived_params_m": round(sum(q.numel() for q in build_network(genotype).parameters()) / 1e6, 3),
            "schedule": schedule(preset), "search": {}, "retrain": {}, "pretrain": {}}
        # cheapest first: the supernet's search step is the slow one on a GPU (launch-bound)
        rcrop = scaled(PAPER_RETRAIN[preset]["crop_size"], args.scale)
        rbatch = args.retrain_batch or PAPER_RETRAIN[preset]["batch_size"]
        entry["retrain"] = train_figures(lambda g=genotype: build_network(g), rbatch, rcrop, 19, True, device, args)
        print(f"{preset} retrain: {entry['retrain']}", flush=True)
        save()
        psize = scaled((defaults["image_size"],) * 2, args.scale)
        pbatch = args.pretrain_batch or defaults["batch_size"]
        entry["pretrain"] = train_figures(lambda g=genotype: BodyClassifier(g, 1000), pbatch, psize, 1000, False,
                                          device, args)
        print(f"{preset} pretrain: {entry['pretrain']}", flush=True)
        save()
        for precision in ("fp32", "bf16"):
            entry["search"][precision] = search_figures(preset, precision, device, args.scale, args)
            entry["projection"] = project(preset, entry["search"], entry["retrain"], entry["pretrain"], args)
            save()
    print(json.dumps({k: v.get("projection") for k, v in record["presets"].items()}, indent=1))


if __name__ == "__main__":
    main()
