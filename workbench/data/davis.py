"""DAVIS 2017 semi-supervised sequences: JPEG frames and palette-indexed annotations.

Layout: `JPEGImages/{res}/{seq}/{frame}.jpg`, `Annotations/{res}/{seq}/{frame}.png` (mode P:
0 background, 1..K objects, 255 void), `ImageSets/2017/{split}.txt`. The number of objects comes
from the first annotation, as in the official toolkit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from workbench.data import io
from workbench.errors import DataError

VOID = 255


@dataclass
class DavisSequence:
    name: str
    frames: np.ndarray                      # uint8 [T, H, W, 3]
    frame_names: list[str]                  # stems, e.g. '00000'
    masks: dict[int, np.ndarray]            # frame index -> uint8 [H, W], every annotated frame
    num_objects: int                        # max object id in the first annotation
    frame_paths: list[Path] = field(default_factory=list)
    first_appearance: dict[int, int] = field(default_factory=dict)  # object -> first frame (YouTube-VOS)

    def __len__(self) -> int:
        return len(self.frame_names)


def list_sequences(root: str | Path, split: str) -> list[str]:
    """Sequence names of `ImageSets/2017/{split}.txt`."""
    path = Path(root) / "ImageSets" / "2017" / f"{split}.txt"
    if not path.exists():
        raise DataError(path, f"missing split file for split {split!r}")
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not names:
        raise DataError(path, "empty split file: no sequences listed")
    return names


def _check_object_ids(masks: dict[int, np.ndarray], ann_dir: Path, stems: list[str]) -> int:
    """K, the number of objects: the first frame must number them 1..K (the evaluator scores ids
    1..max, so a gap would count as objects that are never there), and no later frame may hold
    an id the first frame does not."""
    ids = sorted(set(np.unique(masks[0]).tolist()) - {0, VOID})
    if not ids:
        raise DataError(ann_dir / f"{stems[0]}.png", "first-frame annotation has no objects (ids 1..254): "
                                                     "nothing to segment")
    if ids != list(range(1, len(ids) + 1)):
        raise DataError(ann_dir / f"{stems[0]}.png", f"object ids {ids} are not 1..K: DAVIS numbers the "
                                                     "first frame's objects 1, 2, ..., K")
    for t, mask in masks.items():
        extra = sorted(set(np.unique(mask).tolist()) - {0, VOID} - set(ids))
        if extra:
            raise DataError(ann_dir / f"{stems[t]}.png", f"object id {extra[0]} is not in the first frame "
                                                         f"(objects 1..{len(ids)})")
    return len(ids)


def read_annotations(ann_dir: Path, index: dict[str, int], frame_dir: Path, size: tuple[int, int]
                     ) -> dict[int, np.ndarray]:
    """{frame index: mask} of a folder of palette PNGs named like the frames (DAVIS, YouTube-VOS)."""
    masks = {}
    for ann in sorted(ann_dir.glob("*.png")) if ann_dir.is_dir() else []:
        if ann.stem not in index:
            raise DataError(ann, f"annotation without a frame (no {ann.stem}.jpg in {frame_dir})")
        mask = io.read_indexed_png(ann)
        if mask.shape != tuple(size):
            raise DataError(ann, f"annotation size {mask.shape[0]}x{mask.shape[1]} does not match frame size "
                                 f"{size[0]}x{size[1]}")
        masks[index[ann.stem]] = mask
    return masks


def load_sequence(root: str | Path, name: str, resolution: str = "480p") -> DavisSequence:
    """Read all frames and annotations of a sequence, checking names, sizes and PNG modes."""
    root = Path(root)
    frame_dir = root / "JPEGImages" / resolution / name
    ann_dir = root / "Annotations" / resolution / name
    if not frame_dir.is_dir():
        raise DataError(frame_dir, f"missing frame folder of sequence {name!r}")
    frame_paths = sorted(p for p in frame_dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not frame_paths:
        raise DataError(frame_dir, "no frames (*.jpg)")
    if not ann_dir.is_dir():
        raise DataError(ann_dir, f"missing annotation folder of sequence {name!r}")
    stems = [p.stem for p in frame_paths]
    index = {s: i for i, s in enumerate(stems)}
    frames = [io.read_rgb(p) for p in frame_paths]
    h, w = frames[0].shape[:2]
    for p, f in zip(frame_paths, frames):
        if f.shape[:2] != (h, w):
            raise DataError(p, f"frame size {f.shape[0]}x{f.shape[1]} differs from {frame_paths[0].name} {h}x{w}")
    masks = read_annotations(ann_dir, index, frame_dir, (h, w))
    if 0 not in masks:
        raise DataError(ann_dir / f"{stems[0]}.png", "missing first-frame annotation")
    num_objects = _check_object_ids(masks, ann_dir, stems)
    return DavisSequence(name, np.stack(frames), stems, masks, num_objects, frame_paths)
