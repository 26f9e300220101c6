"""`workbench data check`: read every file of a dataset tree through the real loaders.

The checks are the loaders' own (`SegDataset.load`, `davis.load_sequence`), so a tree that passes
here also loads in training; the first problem raises a `DataError` naming the file.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from workbench.data import davis
from workbench.data.segmentation import build_seg_dataset
from workbench.errors import ConfigError, DataError

SPLITS = {"cityscapes": ("train", "val", "test"), "camvid": ("train", "val", "test"), "davis": ("train", "val")}


def _present_splits(kind: str, root: Path) -> list[str]:
    if kind == "cityscapes":
        found = [s for s in SPLITS[kind] if (root / "leftImg8bit" / s).is_dir() or (root / "gtFine" / s).is_dir()]
    elif kind == "camvid":
        found = [s for s in SPLITS[kind] if (root / s).is_dir() or (root / f"{s}annot").is_dir()]
    else:
        found = [s for s in SPLITS[kind] if (root / "ImageSets" / "2017" / f"{s}.txt").exists()]
    if not found:
        raise DataError(root, f"no {kind} splits found (expected {', '.join(SPLITS[kind])})")
    return found


def _check_seg(kind: str, root: Path, split: str) -> dict:
    ds = build_seg_dataset(kind, root, split, train=False)
    counts = np.zeros(256, dtype=np.int64)
    sizes: Counter = Counter()
    for i in range(len(ds)):
        image, label = ds.load(i)
        sizes[f"{image.shape[0]}x{image.shape[1]}"] += 1
        counts += np.bincount(label.ravel(), minlength=256)
    total = int(counts.sum())
    classes = {name: round(counts[c] / total, 5) for c, name in enumerate(ds.class_names) if counts[c]}
    return {"images": len(ds), "sizes": dict(sizes), "classes_present": len(classes),
            "num_classes": ds.num_classes, "class_fraction": classes,
            "ignore_fraction": round(counts[ds.ignore_index] / total, 5)}


def _check_davis(root: Path, split: str) -> dict:
    names = davis.list_sequences(root, split)
    sizes: Counter = Counter()
    objects, frames, annotated = {}, 0, 0
    for name in names:
        seq = davis.load_sequence(root, name)
        sizes[f"{seq.frames.shape[1]}x{seq.frames.shape[2]}"] += 1
        objects[name] = seq.num_objects
        frames += len(seq)
        annotated += len(seq.masks)
    return {"sequences": len(names), "frames": frames, "annotated_frames": annotated,
            "sizes": dict(sizes), "objects": objects}


def check_dataset(kind: str, root: str | Path, split: str | None = None) -> dict:
    """Validate a dataset tree; return a summary per split. Raises DataError on the first problem."""
    if kind not in SPLITS:
        raise ConfigError(f"kind: unknown dataset kind {kind!r} (choose from {', '.join(SPLITS)})")
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "dataset root not found")
    splits = [split] if split else _present_splits(kind, root)
    result = {"kind": kind, "root": str(root), "splits": {}}
    for s in splits:
        result["splits"][s] = _check_davis(root, s) if kind == "davis" else _check_seg(kind, root, s)
    return result
