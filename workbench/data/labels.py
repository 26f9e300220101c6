"""Label tables: Cityscapes from the official `cityscapesscripts` table, CamVid (SegNet layout),
DAVIS palette."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

IGNORE_INDEX = 255


@lru_cache(maxsize=1)
def cityscapes_labels():
    """The official label table (`cityscapesscripts.helpers.labels.labels`)."""
    from cityscapesscripts.helpers.labels import labels

    return labels


@lru_cache(maxsize=1)
def cityscapes_id_to_train_id() -> np.ndarray:
    """Lookup array of length 256: labelId -> trainId (255 = ignore, also for unknown ids)."""
    lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    for label in cityscapes_labels():
        if 0 <= label.id < 256 and 0 <= label.trainId < 255:
            lut[label.id] = label.trainId
    return lut


@lru_cache(maxsize=1)
def cityscapes_train_id_to_id() -> np.ndarray:
    """trainId -> labelId, for writing predictions the official evaluator reads."""
    lut = np.zeros(256, dtype=np.uint8)
    for label in cityscapes_labels():
        if 0 <= label.trainId < 255 and label.id >= 0 and not lut[label.trainId]:
            lut[label.trainId] = label.id
    return lut


@lru_cache(maxsize=1)
def cityscapes_valid_label_ids() -> frozenset[int]:
    """Every labelId that may appear in a gtFine labelIds PNG (0..33)."""
    return frozenset(lbl.id for lbl in cityscapes_labels() if lbl.id >= 0)


def cityscapes_class_names() -> list[str]:
    names = {lbl.trainId: lbl.name for lbl in cityscapes_labels() if 0 <= lbl.trainId < 255}
    return [names[i] for i in range(len(names))]


def cityscapes_train_id_colors() -> np.ndarray:
    """(19, 3) uint8 colours of the train ids, for label-map visualisations."""
    colors = {lbl.trainId: lbl.color for lbl in cityscapes_labels() if 0 <= lbl.trainId < 255}
    return np.array([colors[i] for i in range(len(colors))], dtype=np.uint8)


# CamVid in the SegNet layout: 11 classes, index 11 = void (mapped to ignore).
CAMVID_CLASSES = ["sky", "building", "pole", "road", "sidewalk", "tree", "sign_symbol", "fence",
                  "car", "pedestrian", "bicyclist"]
CAMVID_VOID = 11
CAMVID_COLORS = np.array([
    [128, 128, 128], [128, 0, 0], [192, 192, 128], [128, 64, 128], [0, 0, 192], [128, 128, 0],
    [192, 128, 128], [64, 64, 128], [64, 0, 128], [64, 64, 0], [0, 128, 192]], dtype=np.uint8)


def camvid_to_train_id(label: np.ndarray) -> np.ndarray:
    """Class-index map -> train ids (void 11 -> 255)."""
    out = label.astype(np.uint8, copy=True)
    out[out == CAMVID_VOID] = IGNORE_INDEX
    return out


def davis_palette() -> list[int]:
    """The DAVIS PNG palette (same construction as the official toolkit's colour map)."""
    palette = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette.extend([r, g, b])
    return palette
