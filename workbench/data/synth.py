"""Synthetic datasets written in the real on-disk formats (Cityscapes, CamVid SegNet, DAVIS 2017).

Because the files are the real formats, the real loaders, checkers and evaluators are exercised
end to end. Every image has its own random generator seeded from (seed, split, index), so the
same seed gives byte-identical files and a larger `count` extends a dataset without changing
the images it already had.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from workbench.data import io
from workbench.data.labels import CAMVID_VOID
from workbench.data.synth_street import FEATURED, StreetScene
from workbench.data.synth_video import render_video
from workbench.errors import ConfigError

log = logging.getLogger(__name__)

KINDS = ("cityscapes", "camvid", "davis")
DEFAULT_SIZE = {"cityscapes": (256, 512), "camvid": (360, 480), "davis": (480, 854)}
DEFAULT_FRAMES = 25
CITIES = {"train": ["aachen", "bochum", "bremen", "cologne", "darmstadt", "dusseldorf", "erfurt",
                    "hamburg", "hanover", "jena", "krefeld", "strasbourg", "stuttgart", "tubingen",
                    "ulm", "weimar", "zurich"],
          "val": ["frankfurt", "lindau", "munster"]}
CAMVID_SEQUENCES = {"train": "0001TP", "val": "0016E5", "test": "Seq05VD"}
_SPLIT_CODE = {"train": 0, "val": 1, "test": 2}
_KIND_CODE = {"cityscapes": 0, "camvid": 1, "davis": 2}

# Cityscapes labelId -> CamVid (SegNet 11-class) index, following the CamVid 32 -> 11 grouping.
_CAMVID_FROM_ID = {11: 1, 12: 1, 15: 1, 17: 2, 18: 2, 7: 3, 9: 3, 10: 3, 8: 4, 21: 5, 22: 5,
                   19: 6, 20: 6, 13: 7, 14: 7, 26: 8, 27: 8, 28: 8, 29: 8, 30: 8, 31: 8, 24: 9,
                   25: 10, 32: 10, 33: 10, 23: 0}
CAMVID_LUT = np.full(256, CAMVID_VOID, dtype=np.uint8)
for _id, _cls in _CAMVID_FROM_ID.items():
    CAMVID_LUT[_id] = _cls


def _rng(seed: int, kind: str, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, _KIND_CODE[kind], _SPLIT_CODE[split], index])


def street_scene(seed: int, kind: str, split: str, index: int, size: tuple[int, int]):
    """(image uint8 HxWx3, Cityscapes labelIds uint8 HxW) of one scene."""
    scene = StreetScene(_rng(seed, kind, split, index), size[0], size[1], FEATURED[index % len(FEATURED)])
    return scene.render()


def _cityscapes_item(out: Path, split: str, i: int, size, seed: int) -> None:
    city = CITIES[split][(i // 25) % len(CITIES[split])]
    stem = f"{city}_{i:06d}_{19:06d}"
    image, label = street_scene(seed, "cityscapes", split, i, size)
    io.write_rgb(out / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png", image)
    io.write_label_png(out / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png", label)


def _camvid_item(out: Path, split: str, i: int, size, seed: int) -> None:
    image, label = street_scene(seed, "camvid", split, i, size)
    name = f"{CAMVID_SEQUENCES[split]}_{30 * (i + 1):06d}.png"
    io.write_rgb(out / split / name, image)
    io.write_label_png(out / f"{split}annot" / name, CAMVID_LUT[label])


def _davis_item(out: Path, split: str, i: int, size, seed: int, frames: int, name: str) -> None:
    video, masks = render_video(_rng(seed, "davis", split, i), frames, size[0], size[1])
    for t in range(frames):
        io.write_rgb(out / "JPEGImages" / "480p" / name / f"{t:05d}.jpg", video[t], quality=90)
        io.write_indexed_png(out / "Annotations" / "480p" / name / f"{t:05d}.png", masks[t])


def _run(fn, tasks: list[tuple], workers: int, desc: str) -> None:
    """Run the independent per-item tasks, in worker processes when workers > 1 (same files:
    each item has its own seed)."""
    if workers <= 1 or len(tasks) < 2:
        for task in tqdm(tasks, desc=desc, leave=False, disable=None):
            fn(*task)
        return
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(fn, *task) for task in tasks]
        for fut in tqdm(futures, desc=desc, leave=False, disable=None):
            fut.result()


def generate(kind: str, out: str | Path, *, count: int, size: tuple[int, int] | None = None,
             frames: int | None = None, seed: int = 0, val_count: int | None = None,
             workers: int = 1) -> Path:
    """Write a synthetic dataset of `kind` under `out` and return `out`.

    count: training images (cityscapes, camvid) or training sequences (davis); val_count: the same
    for val (default count // 4, at least 1; camvid also gets a test split of that size).
    workers: processes to render with (the files do not depend on it).
    """
    if kind not in KINDS:
        raise ConfigError(f"kind: unknown dataset kind {kind!r} (choose from {', '.join(KINDS)})")
    if count < 1:
        raise ConfigError(f"count: must be at least 1, got {count}")
    size = tuple(size or DEFAULT_SIZE[kind])
    if len(size) != 2 or min(size) < 16:
        raise ConfigError(f"size: expected (height, width) of at least 16 pixels, got {size}")
    frames = DEFAULT_FRAMES if frames is None else frames
    if kind == "davis" and frames < 2:
        raise ConfigError(f"frames: a video needs at least 2 frames, got {frames}")
    val_count = max(1, count // 4) if val_count is None else val_count
    if val_count < 1:
        raise ConfigError(f"val_count: must be at least 1, got {val_count}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    log.info("generating synth-%s: %d train + %d val at %dx%d in %s", kind, count, val_count, *size, out)
    if kind == "cityscapes":
        for split, n in (("train", count), ("val", val_count)):
            _run(_cityscapes_item, [(out, split, i, size, seed) for i in range(n)], workers,
                 f"synth-cityscapes {split}")
    elif kind == "camvid":
        for split, n in (("train", count), ("val", val_count), ("test", val_count)):
            _run(_camvid_item, [(out, split, i, size, seed) for i in range(n)], workers, f"synth-camvid {split}")
    else:
        sets = out / "ImageSets" / "2017"
        sets.mkdir(parents=True, exist_ok=True)
        first = {"train": 0, "val": count}
        for split, n in (("train", count), ("val", val_count)):
            names = [f"synth{first[split] + i:04d}" for i in range(n)]
            _run(_davis_item, [(out, split, i, size, seed, frames, names[i]) for i in range(n)], workers,
                 f"synth-davis {split}")
            (sets / f"{split}.txt").write_text("".join(f"{name}\n" for name in names))
    meta = {"generator": "workbench.data.synth", "kind": kind, "count": count, "val_count": val_count,
            "size": list(size), "frames": frames if kind == "davis" else None, "seed": seed}
    (out / "synth.json").write_text(json.dumps(meta, indent=1) + "\n")
    return out
