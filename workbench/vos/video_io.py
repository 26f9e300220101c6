"""A user's own footage: a video file (imageio + ffmpeg) or a folder of frames, and the mask of
its first frame. Every problem is one line naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from workbench.data.io import open_image, read_rgb
from workbench.errors import DataError

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def read_frames(path: str | Path, max_frames: int | None = None) -> tuple[np.ndarray, list[str]]:
    """uint8 [T, H, W, 3] frames and their names (file stems, or 00000.. for a video file)."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "video file or frame folder not found")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)
        files = files[:max_frames] if max_frames else files
        if not files:
            raise DataError(path, f"no frames ({', '.join(FRAME_SUFFIXES)}) in the folder")
        frames = [read_rgb(f) for f in files]
        shapes = {f.shape for f in frames}
        if len(shapes) > 1:
            raise DataError(path, f"frames of different sizes in the folder: {sorted(shapes)}")
        return np.stack(frames), [f.stem for f in files]
    try:
        import imageio.v2 as imageio

        reader = imageio.get_reader(str(path), "ffmpeg")
        frames = []
        for i, frame in enumerate(reader):
            if max_frames and i >= max_frames:
                break
            frames.append(np.asarray(frame, dtype=np.uint8)[..., :3])
        reader.close()
    except Exception as exc:  # ffmpeg errors come in many classes
        raise DataError(path, f"cannot read video ({exc.__class__.__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not frames:
        raise DataError(path, "the video has no frames")
    return np.stack(frames), [f"{i:05d}" for i in range(len(frames))]


def read_first_mask(path: str | Path, size: tuple[int, int]) -> np.ndarray:
    """The first-frame object mask as uint8 ids (0 background, 1..K objects, 255 void).

    Accepts a palette-indexed PNG (as DAVIS) or a grayscale one; a grayscale mask with only the
    values 0 and 255 is read as one object. Refuses RGB, empty masks and a size mismatch.
    """
    path = Path(path)
    img = open_image(path)
    if img.mode not in ("P", "L", "1"):
        raise DataError(path, f"first-frame mask is a {img.mode} image; expected a palette-indexed "
                              "or grayscale PNG whose pixel values are object ids (0 = background)")
    mask = np.asarray(img.convert("L") if img.mode == "1" else img, dtype=np.uint8)
    if img.mode in ("L", "1") and set(np.unique(mask).tolist()) <= {0, 255}:
        mask = (mask == 255).astype(np.uint8)
    if mask.shape != tuple(size):
        raise DataError(path, f"first-frame mask is {mask.shape[1]}x{mask.shape[0]} (WxH) but the "
                              f"video frames are {size[1]}x{size[0]}")
    if not ((mask > 0) & (mask < 255)).any():
        raise DataError(path, "first-frame mask is empty: no object pixels (ids 1..254)")
    ids = sorted(set(np.unique(mask).tolist()) - {0, 255})
    if ids != list(range(1, len(ids) + 1)):
        raise DataError(path, f"object ids {ids[:8]}{'...' if len(ids) > 8 else ''} are not 1..K: number the "
                              "objects 1, 2, ..., K (an anti-aliased or soft mask has many grey values)")
    return mask
