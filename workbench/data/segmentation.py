"""Semantic segmentation datasets (Cityscapes, CamVid SegNet layout) with the usual transforms.

Items are (image float32 [3,H,W] normalised with the ImageNet statistics, label int64 [H,W] of
train ids with 255 = ignore). The file pairs are checked when the dataset is built (cheap: names
only); sizes and label ids are checked when an item is read, so a bad file raises a `DataError`
naming it instead of a tensor-shape error deep in a training loop.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, Subset

from workbench.data import io, labels
from workbench.errors import ConfigError, DataError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IGNORE_INDEX = labels.IGNORE_INDEX
DATASETS = ("cityscapes", "camvid")


def denormalize(tensor: torch.Tensor | np.ndarray) -> np.ndarray:
    """Normalised [3,H,W] image -> uint8 HxWx3 for display."""
    x = torch.as_tensor(tensor).detach().float().cpu()
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    x = (x * std + mean).clamp(0, 1)
    return (x.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)


def normalize(image: np.ndarray) -> torch.Tensor:
    """uint8 HxWx3 -> float32 [3,H,W] normalised with IMAGENET_MEAN / IMAGENET_STD."""
    x = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).float() / 255.0
    return (x - torch.tensor(IMAGENET_MEAN).view(3, 1, 1)) / torch.tensor(IMAGENET_STD).view(3, 1, 1)


def class_colors(name: str) -> np.ndarray:
    """(num_classes, 3) uint8 colours of the train ids (Cityscapes official, CamVid SegNet)."""
    return labels.cityscapes_train_id_colors() if name == "cityscapes" else labels.CAMVID_COLORS


def colorize(label: np.ndarray, name: str) -> np.ndarray:
    """Train-id map -> HxWx3 uint8 colour image (ignore = black)."""
    lut = np.zeros((256, 3), dtype=np.uint8)
    colors = class_colors(name)
    lut[: len(colors)] = colors
    return lut[np.asarray(label, dtype=np.int64).clip(0, 255)]


def _cityscapes_pairs(root: Path, split: str) -> tuple[list[tuple[Path, Path]], list[str]]:
    img_dir, lbl_dir = root / "leftImg8bit" / split, root / "gtFine" / split
    for d in (img_dir, lbl_dir):
        if not d.is_dir():
            raise DataError(d, f"missing split folder for split {split!r}")
    images = sorted(img_dir.glob("*/*_leftImg8bit.png"))
    if not images:
        raise DataError(img_dir, "empty split: no *_leftImg8bit.png images")
    pairs, ids = [], []
    for img in images:
        stem = img.name[: -len("_leftImg8bit.png")]
        lbl = lbl_dir / img.parent.name / f"{stem}_gtFine_labelIds.png"
        if not lbl.exists():
            raise DataError(lbl, f"missing label for image {img.name}")
        pairs.append((img, lbl))
        ids.append(stem)
    for lbl in lbl_dir.glob("*/*_gtFine_labelIds.png"):
        img = img_dir / lbl.parent.name / (lbl.name[: -len("_gtFine_labelIds.png")] + "_leftImg8bit.png")
        if not img.exists():
            raise DataError(img, f"missing image for label {lbl.name}")
    return pairs, ids


def _camvid_pairs(root: Path, split: str) -> tuple[list[tuple[Path, Path]], list[str]]:
    img_dir, lbl_dir = root / split, root / f"{split}annot"
    for d in (img_dir, lbl_dir):
        if not d.is_dir():
            raise DataError(d, f"missing split folder for split {split!r}")
    images = sorted(p for p in img_dir.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not images:
        raise DataError(img_dir, "empty split: no images")
    pairs = []
    for img in images:
        lbl = lbl_dir / f"{img.stem}.png"
        if not lbl.exists():
            raise DataError(lbl, f"missing label for image {img.name}")
        pairs.append((img, lbl))
    stems = {img.stem for img in images}
    for lbl in sorted(lbl_dir.glob("*.png")):
        if lbl.stem not in stems:
            raise DataError(img_dir / lbl.name, f"missing image for label {lbl.name}")
    return pairs, [img.stem for img in images]


class SegDataset(Dataset):
    """Image/label pairs of one split; `load(i)` reads and validates, `__getitem__` transforms."""

    def __init__(self, name: str, root: str | Path, split: str, *, train: bool,
                 crop_size: tuple[int, int] | None = None, scale_range: tuple[float, float] = (0.5, 2.0),
                 flip: bool = True, preload: bool = False):
        if name not in DATASETS:
            raise ConfigError(f"dataset: unknown segmentation dataset {name!r} (choose from {', '.join(DATASETS)})")
        if crop_size is not None and (len(crop_size) != 2 or min(crop_size) < 1):
            raise ConfigError(f"crop_size: expected (height, width), got {crop_size}")
        if not (0 < scale_range[0] <= scale_range[1]):
            raise ConfigError(f"scale_range: expected 0 < min <= max, got {scale_range}")
        self.name, self.root, self.split = name, Path(root), split
        self.train, self.crop_size, self.scale_range, self.flip = train, crop_size, tuple(scale_range), flip
        if not self.root.is_dir():
            raise DataError(self.root, "dataset root not found")
        if name == "cityscapes":
            self.pairs, self.image_ids = _cityscapes_pairs(self.root, split)
            self.class_names = labels.cityscapes_class_names()
            self._lut = labels.cityscapes_id_to_train_id()
            self._valid = np.zeros(256, dtype=bool)
            self._valid[list(labels.cityscapes_valid_label_ids())] = True
        else:
            self.pairs, self.image_ids = _camvid_pairs(self.root, split)
            self.class_names = list(labels.CAMVID_CLASSES)
            self._lut = np.arange(256, dtype=np.uint8)
            self._lut[labels.CAMVID_VOID] = IGNORE_INDEX
            self._valid = np.zeros(256, dtype=bool)
            self._valid[: labels.CAMVID_VOID + 1] = True
        self.num_classes = len(self.class_names)
        self.ignore_index = IGNORE_INDEX
        self._decoded: list[tuple[np.ndarray, np.ndarray]] | None = None
        if preload:
            self._decoded = [self.load(i) for i in range(len(self.pairs))]

    def __len__(self) -> int:
        return len(self.pairs)

    def encode(self, raw: np.ndarray, path: str | Path | None = None) -> np.ndarray:
        """Raw label ids (labelIds / CamVid indices) -> train ids; unknown ids raise DataError."""
        bad = ~self._valid[raw]
        if bad.any():
            values = sorted(int(v) for v in np.unique(raw[bad]))[:5]
            raise DataError(path, f"unknown label id(s) {values} for {self.name}")
        return self._lut[raw]

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(image uint8 HxWx3, train ids uint8 HxW) without transforms, validated."""
        if self._decoded is not None:
            return self._decoded[index]
        img_path, lbl_path = self.pairs[index]
        image = io.read_rgb(img_path)
        raw = io.read_label_png(lbl_path)
        if raw.shape != image.shape[:2]:
            raise DataError(lbl_path, f"label size {raw.shape[0]}x{raw.shape[1]} does not match image "
                                      f"{img_path.name} size {image.shape[0]}x{image.shape[1]}")
        return image, self.encode(raw, lbl_path)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, label = self.load(index)
        x = normalize(image)
        y = torch.from_numpy(label.astype(np.int64))
        if self.train:
            x, y = train_transform(x, y, self.crop_size, self.scale_range, self.flip)
        return x, y


def train_transform(x: torch.Tensor, y: torch.Tensor, crop_size, scale_range, flip: bool):
    """Random scale, pad (image 0 = mean colour, label ignore) and crop, horizontal flip.

    Uses torch's global generator, so `seed_everything` (and DataLoader worker seeding) make it
    reproducible.
    """
    lo, hi = scale_range
    s = lo + (hi - lo) * torch.rand(()).item()
    h, w = y.shape
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    if (nh, nw) != (h, w):
        x = F.interpolate(x[None], size=(nh, nw), mode="bilinear", align_corners=False)[0]
        y = F.interpolate(y[None, None].float(), size=(nh, nw), mode="nearest")[0, 0].long()
    if crop_size is not None:
        ch, cw = crop_size
        ph, pw = max(0, ch - nh), max(0, cw - nw)
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), value=0.0)
            y = F.pad(y, (0, pw, 0, ph), value=IGNORE_INDEX)
        top = int(torch.randint(0, y.shape[0] - ch + 1, ()).item())
        left = int(torch.randint(0, y.shape[1] - cw + 1, ()).item())
        x, y = x[:, top:top + ch, left:left + cw], y[top:top + ch, left:left + cw]
    if flip and torch.rand(()).item() < 0.5:
        x, y = x.flip(-1), y.flip(-1)
    return x.contiguous(), y.contiguous()


def build_seg_dataset(name: str, root: str | Path, split: str, *, train: bool,
                      crop_size: tuple[int, int] | None = None,
                      scale_range: tuple[float, float] = (0.5, 2.0), flip: bool = True,
                      preload: bool = False) -> SegDataset:
    """A Cityscapes or CamVid split; `train=True` adds random scale/crop/flip, else full images.

    `preload` decodes every PNG once when the dataset is built and keeps the arrays in memory
    (uint8: 100 KB per 128x256 pair); for small datasets decoding otherwise costs about as much as
    the augmentation of every item, every epoch.
    """
    return SegDataset(name, root, split, train=train, crop_size=crop_size, scale_range=scale_range, flip=flip,
                      preload=preload)


def holdout_split(train_set, scored_set, fraction: float) -> tuple[Subset, Subset]:
    """(training images, held-out images): a fixed random `fraction` of the training split (the same
    images for every seed and run, so candidates are scored alike), kept out of training and read
    without augmentation from `scored_set` (the same split loaded for evaluation)."""
    n = len(train_set)
    held = max(1, round(n * fraction))
    if n - held < 1:
        raise ConfigError(f"holdout: {fraction} of {n} training images leaves none to train on")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0)).tolist()
    train, scored = Subset(train_set, sorted(order[held:])), Subset(scored_set, sorted(order[:held]))
    for part, source in ((train, train_set), (scored, scored_set)):
        part.num_classes, part.ignore_index = source.num_classes, source.ignore_index
    return train, scored
