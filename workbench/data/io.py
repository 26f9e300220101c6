"""Image reading and writing with one clear error per bad file.

Every reader raises `DataError(path, problem)` instead of letting PIL or numpy fail deep inside
a data loader: a corrupt image, an RGB file where an indexed PNG is required, a missing file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from workbench.data.labels import davis_palette
from workbench.errors import DataError


def open_image(path: str | Path) -> Image.Image:
    """Open and decode an image, or raise one DataError naming the file."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file not found")
    try:
        img = Image.open(path)
        img.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(path, f"unreadable or corrupt image ({exc.__class__.__name__})") from None
    return img


def image_size(path: str | Path) -> tuple[int, int]:
    """(height, width) without decoding the pixels."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file not found")
    try:
        with Image.open(path) as img:
            w, h = img.size
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(path, f"unreadable or corrupt image ({exc.__class__.__name__})") from None
    return h, w


def read_rgb(path: str | Path) -> np.ndarray:
    """HxWx3 uint8."""
    img = open_image(path)
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8)


def _lossless(img: Image.Image, path: str | Path) -> Image.Image:
    if img.format not in (None, "PNG"):
        raise DataError(path, f"label map stored as {img.format}: lossy or foreign formats change the ids; "
                              "labels must be PNG files")
    return img


def read_label_png(path: str | Path) -> np.ndarray:
    """HxW uint8 of a single-channel label PNG (mode L or P); refuses RGB label maps."""
    img = _lossless(open_image(path), path)
    if img.mode not in ("L", "P", "I", "I;16"):
        raise DataError(path, f"expected a single-channel label PNG, got mode {img.mode} "
                              "(an RGB colour map instead of an id map?)")
    arr = np.asarray(img)
    if arr.ndim != 2:
        raise DataError(path, f"expected a 2-D label map, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        if arr.max(initial=0) > 255:
            raise DataError(path, f"label value {int(arr.max())} does not fit in 8 bits")
        arr = arr.astype(np.uint8)
    return arr


def read_indexed_png(path: str | Path) -> np.ndarray:
    """HxW uint8 palette indices of a palette (mode P) PNG, as DAVIS annotations are stored."""
    img = _lossless(open_image(path), path)
    if img.mode != "P":
        raise DataError(path, f"expected a palette-indexed PNG (mode P), got mode {img.mode}")
    return np.asarray(img, dtype=np.uint8)


def write_label_png(path: str | Path, label: np.ndarray) -> None:
    """Write an id map as a mode-L PNG (Cityscapes labelIds, CamVid annotations)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(label, dtype=np.uint8), mode="L").save(path)


def write_indexed_png(path: str | Path, label: np.ndarray, palette: list[int] | None = None) -> None:
    """Write a palette-indexed PNG (DAVIS annotations and results)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(np.asarray(label, dtype=np.uint8), mode="P")
    img.putpalette(palette or davis_palette())
    img.save(path)


def write_rgb(path: str | Path, image: np.ndarray, quality: int = 92) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(np.asarray(image, dtype=np.uint8), mode="RGB")
    if path.suffix.lower() in (".jpg", ".jpeg"):
        img.save(path, quality=quality)
    else:
        img.save(path)
