"""Trivial baselines, the floor every reported number must clear.

- VOS: copy the first-frame annotation to every frame (no tracking at all).
- Segmentation: predict the train split's most frequent class at every pixel.
Both write prediction files in the formats `workbench eval` reads.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from workbench.data import io, labels
from workbench.data.davis import list_sequences
from workbench.errors import DataError
from workbench.metrics.davis import annotation_files
from workbench.metrics.segmentation import class_names

log = logging.getLogger(__name__)


def copy_first_frame(root: str | Path, split: str, out_dir: str | Path,
                     resolution: str = "480p") -> Path:
    """Write `out_dir/{seq}/{frame}.png` = the first annotation (void -> background)."""
    root, out_dir = Path(root), Path(out_dir)
    for seq in tqdm(list_sequences(root, split), desc="copy first frame", leave=False, disable=None):
        files = annotation_files(root, seq, resolution)
        first = io.read_indexed_png(files[0]).copy()
        first[first == 255] = 0
        for f in files:
            io.write_indexed_png(out_dir / seq / f.name, first)
    log.info("copy-first-frame results for DAVIS %s written to %s", split, out_dir)
    return out_dir


def _train_labels(dataset: str, root: Path, split: str) -> list[Path]:
    if dataset == "cityscapes":
        folder = root / "gtFine" / split
        files = sorted(folder.glob("*/*_gtFine_labelIds.png"))
    else:
        folder = root / f"{split}annot"
        files = sorted(folder.glob("*.png"))
    if not files:
        raise DataError(folder, f"no label PNGs in split {split!r}")
    return files


def class_frequencies(dataset: str, root: str | Path, split: str = "train") -> np.ndarray:
    """Labelled-pixel count of every train id over a split's label maps."""
    num_classes = len(class_names(dataset))
    counts = np.zeros(num_classes, dtype=np.int64)
    for path in tqdm(_train_labels(dataset, Path(root), split), desc="count classes", leave=False,
                     disable=None):
        label = io.read_label_png(path)
        train = (labels.cityscapes_id_to_train_id()[label] if dataset == "cityscapes"
                 else labels.camvid_to_train_id(label))
        counts += np.bincount(train.ravel(), minlength=256)[:num_classes]
    return counts


def most_frequent_class(dataset: str, root: str | Path, split: str, out_dir: str | Path,
                        train_split: str = "train") -> int:
    """Predict the most frequent train id of `train_split` everywhere on `split`; returns it.

    Cityscapes predictions are labelId PNGs `{city}_{seq}_{frame}.png`, CamVid ones class-index
    PNGs named like the annotation.
    """
    names = class_names(dataset)
    root, out_dir = Path(root), Path(out_dir)
    counts = class_frequencies(dataset, root, train_split)
    if counts.sum() == 0:
        raise DataError(root, f"split {train_split!r} has no labelled pixels")
    train_id = int(np.argmax(counts))
    value = int(labels.cityscapes_train_id_to_id()[train_id]) if dataset == "cityscapes" else train_id
    for path in _train_labels(dataset, root, split):
        h, w = io.image_size(path)
        name = path.name.replace("_gtFine_labelIds", "") if dataset == "cityscapes" else path.name
        io.write_label_png(out_dir / name, np.full((h, w), value, dtype=np.uint8))
    log.info("most frequent class of %s %s: %s (train id %d); predictions for %s in %s", dataset,
             train_split, names[train_id], train_id, split, out_dir)
    return train_id
