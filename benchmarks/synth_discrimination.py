"""Does synth-cityscapes discriminate between architectures?

Trains a tiny 3-layer conv net (5x5 receptive field, full resolution) and a deeper, wider
encoder-decoder with dilated convolutions and image-level pooling (large context) for the same
number of steps on the same data, and records both validation mIoU. If colour alone separated the
classes, the tiny net would do about as well; it must score clearly lower.

Also writes a montage of images with their label maps and the class-frequency table.
Results: benchmarks/results/synth_discrimination.json, synth_cityscapes_class_frequency.json,
synth_cityscapes_montage.png.

    .venv/bin/python benchmarks/synth_discrimination.py [--steps 300] [--size 128x256]
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from workbench.data.segmentation import build_seg_dataset, colorize
from workbench.data.synth import generate
from workbench.device import device_fingerprint, resolve_device

log = logging.getLogger("synth_discrimination")
RESULTS = Path(__file__).resolve().parent / "results"

try:
    from workbench.metrics.segmentation import ConfusionMatrix
except ImportError:  # metrics not there yet: the same definitions, locally
    class ConfusionMatrix:  # type: ignore[no-redef]
        def __init__(self, num_classes: int, ignore_index: int = 255):
            self.c, self.ignore_index = num_classes, ignore_index
            self.matrix = np.zeros((num_classes, num_classes), np.int64)

        def update(self, pred, target) -> None:
            p, t = np.asarray(pred).ravel(), np.asarray(target).ravel()
            keep = t != self.ignore_index
            self.matrix += np.bincount(t[keep] * self.c + p[keep], minlength=self.c ** 2).reshape(self.c, self.c)

        def compute(self) -> dict:
            m = self.matrix
            union = m.sum(0) + m.sum(1) - np.diag(m)
            iou = np.where(union > 0, np.diag(m) / np.maximum(union, 1), np.nan)
            return {"miou": float(np.nanmean(iou)), "per_class_iou": iou.tolist(),
                    "pixel_acc": float(np.diag(m).sum() / max(m.sum(), 1))}


def tiny_net(num_classes: int) -> nn.Module:
    """Three 3x3/1x1 convolutions at full resolution: sees colour and local texture only."""
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(inplace=True),
                         nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(inplace=True),
                         nn.Conv2d(16, num_classes, 1))


def _cbr(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ContextNet(nn.Module):
    """Encoder to stride 8, dilated convolutions and image pooling for context, decoder with a
    stride-2 skip for thin structures."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.s2 = nn.Sequential(_cbr(3, 24, 2), _cbr(24, 24))
        self.s4 = nn.Sequential(_cbr(24, 48, 2), _cbr(48, 48))
        self.s8 = nn.Sequential(_cbr(48, 96, 2), _cbr(96, 96), _cbr(96, 96, dilation=2),
                                _cbr(96, 96, dilation=4), _cbr(96, 96, dilation=8))
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(96, 96, 1), nn.ReLU(inplace=True))
        self.fuse8 = _cbr(192, 96)
        self.fuse4 = _cbr(96 + 48, 64)
        self.fuse2 = _cbr(64 + 24, 48)
        self.head = nn.Conv2d(48, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        f2 = self.s2(x)
        f4 = self.s4(f2)
        f8 = self.s8(f4)
        g = self.pool(f8).expand_as(f8)
        y = self.fuse8(torch.cat([f8, g], 1))
        y = F.interpolate(y, size=f4.shape[-2:], mode="bilinear", align_corners=False)
        y = self.fuse4(torch.cat([y, f4], 1))
        y = F.interpolate(y, size=f2.shape[-2:], mode="bilinear", align_corners=False)
        y = self.fuse2(torch.cat([y, f2], 1))
        return F.interpolate(self.head(y), size=size, mode="bilinear", align_corners=False)


def train_and_eval(model: nn.Module, train_ds, val_ds, steps: int, batch: int, lr: float, seed: int,
                   device: torch.device) -> dict:
    torch.manual_seed(seed)
    model.to(device)
    loader = torch.utils.data.DataLoader(train_ds, batch_size=batch, shuffle=True, drop_last=True)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    model.train()
    t0, step, it = time.time(), 0, iter(loader)
    bar = tqdm(total=steps, desc=type(model).__name__, leave=False, disable=None)
    while step < steps:
        try:
            x, y = next(it)
        except StopIteration:
            it = iter(loader)
            continue
        x, y = x.to(device), y.to(device)
        loss = F.cross_entropy(model(x), y, ignore_index=255)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        step += 1
        bar.update()
        if step % 50 == 0:
            log.info("%s step %d/%d loss %.3f", type(model).__name__, step, steps, loss.item())
    bar.close()
    train_time = time.time() - t0
    model.eval()
    cm = ConfusionMatrix(val_ds.num_classes)
    with torch.no_grad():
        for i in range(len(val_ds)):
            x, y = val_ds[i]
            cm.update(model(x[None].to(device)).argmax(1)[0].cpu(), y)
    r = cm.compute()
    return {"miou": float(r["miou"]), "pixel_acc": float(r["pixel_acc"]),
            "per_class_iou": {n: (None if v != v else round(float(v), 4))
                              for n, v in zip(val_ds.class_names, r["per_class_iou"])},
            "params": sum(p.numel() for p in model.parameters()), "train_time_s": round(train_time, 1)}


def class_frequency(ds) -> dict:
    """Pixel share and share of images containing each class (train ids; ignore separately)."""
    pixels, images = np.zeros(256, np.int64), np.zeros(256, np.int64)
    for i in range(len(ds)):
        _, label = ds.load(i)
        counts = np.bincount(label.ravel(), minlength=256)
        pixels += counts
        images += counts > 0
    total = pixels.sum()
    table = {name: {"pixel_pct": round(100 * pixels[c] / total, 3), "image_pct": round(100 * images[c] / len(ds), 1)}
             for c, name in enumerate(ds.class_names)}
    table["(ignore)"] = {"pixel_pct": round(100 * pixels[255] / total, 3), "image_pct": round(100 * images[255] / len(ds), 1)}
    return table


def montage(root: Path, path: Path, n: int = 6) -> None:
    ds = build_seg_dataset("cityscapes", root, "val", train=False)
    rows = []
    for i in range(min(n, len(ds))):
        image, label = ds.load(i)
        rows.append(np.concatenate([image, colorize(label, "cityscapes")], axis=1))
    pairs = [np.concatenate(rows[i:i + 2], axis=1) for i in range(0, len(rows) - 1, 2)]
    full = Image.fromarray(np.concatenate(pairs, axis=0))   # 256 colours keep the PNG small
    full.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", default="128x256")
    ap.add_argument("--train-count", type=int, default=240)
    ap.add_argument("--val-count", type=int, default=48)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    torch.set_num_threads(1)   # the cores are shared
    device = resolve_device(args.device)
    h, w = (int(v) for v in args.size.split("x"))
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        root = generate("cityscapes", Path(tmp) / "bench", count=args.train_count, val_count=args.val_count,
                        size=(h, w), seed=args.seed)
        gen_s = time.time() - t0
        show = generate("cityscapes", Path(tmp) / "show", count=1, val_count=6, size=(256, 512), seed=args.seed)
        montage(show, args.out / "synth_cityscapes_montage.png")
        train_ds = build_seg_dataset("cityscapes", root, "train", train=True, crop_size=(h, w), scale_range=(0.75, 1.5))
        val_ds = build_seg_dataset("cityscapes", root, "val", train=False)
        freq = class_frequency(build_seg_dataset("cityscapes", root, "train", train=False))
        (args.out / "synth_cityscapes_class_frequency.json").write_text(json.dumps(
            {"dataset": f"synth-cityscapes train, {args.train_count} images at {h}x{w}, seed {args.seed}",
             "classes": freq}, indent=1) + "\n")
        results = {}
        for name, build in (("tiny_3layer", tiny_net), ("context_encoder_decoder", ContextNet)):
            torch.manual_seed(args.seed)
            results[name] = train_and_eval(build(train_ds.num_classes), train_ds, val_ds, args.steps,
                                           args.batch, 3e-3, args.seed, device)
            log.info("%s: mIoU %.3f (%.0f s)", name, results[name]["miou"], results[name]["train_time_s"])
    record = {"dataset": {"kind": "synth-cityscapes", "size": [h, w], "train": args.train_count,
                          "val": args.val_count, "seed": args.seed, "generation_s": round(gen_s, 1)},
              "budget": {"steps": args.steps, "batch": args.batch, "optimizer": "AdamW one-cycle lr 3e-3",
                         "augmentation": "scale 0.75-1.5, crop, flip", "threads": 1},
              "models": results,
              "miou_gap": round(results["context_encoder_decoder"]["miou"] - results["tiny_3layer"]["miou"], 4),
              "machine": {"platform": platform.platform(), **device_fingerprint(device, threads=1)}}
    (args.out / "synth_discrimination.json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"tiny 3-layer mIoU {results['tiny_3layer']['miou']:.3f}  vs  context encoder-decoder "
          f"mIoU {results['context_encoder_decoder']['miou']:.3f}")


if __name__ == "__main__":
    main()
