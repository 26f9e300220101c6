"""Training clips synthesized from still images with instance masks (static-image pretraining).

OVS-Net-era VOS methods pretrain on image segmentation data made into short videos: each image
and its instance masks, warped by random affine transforms, become the frames of a clip, so the
network learns detection, mask propagation and re-identification before it sees real video.

Two sources: a COCO-format JSON (`instances_*.json`, decoded with pycocotools; images under
`images/` beside it or the folder of `file_name`) or a folder of `images/<stem>.jpg` with indexed
`masks/<stem>.png` (0 background, 1..K instances). Each image becomes a `DavisSequence` of
`frames` warped copies (the first unwarped) with its masks on every frame, so the same clip
sampler trains on it. Warps are drawn from a generator seeded by `seed` and the image's index:
the same data on every run.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from workbench.data import io
from workbench.data.davis import DavisSequence
from workbench.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def warp(image: np.ndarray, mask: np.ndarray, g: torch.Generator, degrees: float = 15.0,
         translate: float = 0.1, scale: tuple[float, float] = (0.85, 1.15)) -> tuple[np.ndarray, np.ndarray]:
    """The same random affine transform of an image (bilinear) and its mask (nearest)."""
    r = torch.rand(4, generator=g).tolist()
    h, w = mask.shape
    angle = (2 * r[0] - 1) * degrees
    shift = [int(round((2 * r[1] - 1) * translate * w)), int(round((2 * r[2] - 1) * translate * h))]
    s = scale[0] + r[3] * (scale[1] - scale[0])
    img = TF.affine(torch.from_numpy(image.copy()).permute(2, 0, 1), angle=angle, translate=shift, scale=s,
                    shear=[0.0, 0.0], interpolation=InterpolationMode.BILINEAR)
    msk = TF.affine(torch.from_numpy(mask.copy())[None], angle=angle, translate=shift, scale=s, shear=[0.0, 0.0],
                    interpolation=InterpolationMode.NEAREST)
    return img.permute(1, 2, 0).numpy(), msk[0].numpy()


def as_clip(name: str, image: np.ndarray, mask: np.ndarray, frames: int, g: torch.Generator) -> DavisSequence:
    images, masks = [image], [mask]
    for _ in range(frames - 1):
        a, b = warp(image, mask, g)
        images.append(a)
        masks.append(b)
    ids = [int(i) for i in np.unique(mask) if 0 < i < 255]
    return DavisSequence(name, np.stack(images), [f"{t:05d}" for t in range(frames)],
                         dict(enumerate(masks)), max(ids, default=0))


def _folder_items(root: Path) -> list[tuple[str, Path, np.ndarray | None]]:
    images, masks = root / "images", root / "masks"
    if not images.is_dir() or not masks.is_dir():
        raise DataError(root, "static clips: expected images/ and masks/ (or a COCO JSON file)")
    out = []
    for path in sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        m = masks / f"{path.stem}.png"
        if not m.is_file():
            raise DataError(m, f"no instance mask for {path.name}")
        out.append((path.stem, path, io.read_indexed_png(m)))
    return out


def _coco_items(path: Path, max_objects: int = 254) -> list[tuple[str, Path, np.ndarray]]:
    try:
        from pycocotools import mask as coco_mask
    except ImportError:
        raise DataError(path, "reading COCO masks needs pycocotools (pip install pycocotools)") from None
    try:
        data = json.loads(path.read_text())
        images = {im["id"]: im for im in data["images"]}
        anns = data["annotations"]
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(path, f"not a COCO instances JSON ({exc.__class__.__name__}: {exc})") from None
    by_image: dict[int, list[dict]] = {}
    for a in anns:
        if not a.get("iscrowd", 0):
            by_image.setdefault(a["image_id"], []).append(a)
    base = path.parent / "images" if (path.parent / "images").is_dir() else path.parent
    out = []
    for image_id, im in sorted(images.items()):
        h, w = int(im["height"]), int(im["width"])
        mask = np.zeros((h, w), np.uint8)
        objs = sorted(by_image.get(image_id, []), key=lambda a: -a.get("area", 0))[:max_objects]
        for k, a in enumerate(objs):  # ids 1..K by decreasing area: smaller objects drawn over larger
            seg = a["segmentation"]
            rle = coco_mask.merge(coco_mask.frPyObjects(seg, h, w)) if isinstance(seg, list) else \
                (coco_mask.frPyObjects(seg, h, w) if isinstance(seg.get("counts"), list) else seg)
            mask[coco_mask.decode(rle).astype(bool)] = k + 1
        out.append((Path(im["file_name"]).stem, base / im["file_name"], mask))
    return out


def load_static(root: str | Path, frames: int = 3, seed: int = 0, max_images: int | None = None) -> list[DavisSequence]:
    """Clips of `frames` warped copies of every image that has at least one instance."""
    root = Path(root)
    if root.is_file() and root.suffix == ".json":
        items = _coco_items(root)
    elif root.is_dir() and (json_files := sorted(root.glob("*.json"))):
        items = _coco_items(json_files[0])
    else:
        items = _folder_items(root)
    clips = []
    for i, (name, image_path, mask) in enumerate(items[:max_images] if max_images else items):
        if not ((mask > 0) & (mask < 255)).any():
            continue
        image = io.read_rgb(image_path)
        if image.shape[:2] != mask.shape:
            raise DataError(image_path, f"image is {image.shape[1]}x{image.shape[0]}, its mask "
                                        f"{mask.shape[1]}x{mask.shape[0]}")
        g = torch.Generator().manual_seed(seed * 1_000_003 + i)
        clips.append(as_clip(name, image, mask, frames, g))
    if not clips:
        raise DataError(root, "static clips: no image with an instance mask")
    return clips

