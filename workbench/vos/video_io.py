"""A user's own footage: a video file (imageio + ffmpeg) or a folder of frames, and the mask of
its first frame. Every problem is one line naming the file."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from workbench.data.io import open_image, read_rgb
from workbench.errors import DataError

log = logging.getLogger(__name__)

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


class FrameStream:
    """The frames of a video file or a frame folder from frame `start` on (at most `max_frames`),
    decoded one at a time: iterating holds one frame in memory, whatever the video's length.
    Each `iter()` starts again from `start`. Problems are one DataError naming the file."""

    def __init__(self, path: str | Path, max_frames: int | None = None, start: int = 0):
        self.path, self.max_frames, self.start = Path(path), max_frames or None, int(start)
        if not self.path.exists():
            raise DataError(self.path, "video file or frame folder not found")
        self.files: list[Path] | None = None
        if self.path.is_dir():
            files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)
            if files and self.start >= len(files):
                raise DataError(self.path, f"start frame {self.start} is past the last frame ({len(files)} frames)")
            self.files = files[self.start:self.start + self.max_frames] if self.max_frames else files[self.start:]
            if not self.files:
                raise DataError(self.path, f"no frames ({', '.join(FRAME_SUFFIXES)}) in the folder")
        self.size: tuple[int, int] | None = None
        first = next(iter(self), None)
        if first is None:
            raise DataError(self.path, f"no frames from frame {self.start} on" if self.start else "the video has no frames")
        self.first_name, self.first = first
        self.size = tuple(self.first.shape[:2])

    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        """(name, uint8 [H, W, 3]) pairs: file stems, or the frame numbers 00000.. of a video file."""
        if self.files is not None:
            for f in self.files:
                frame = read_rgb(f)
                if self.size is not None and frame.shape[:2] != self.size:
                    raise DataError(f, f"frame is {frame.shape[1]}x{frame.shape[0]}, the first was "
                                       f"{self.size[1]}x{self.size[0]} (frames of different sizes in the folder)")
                yield f.stem, frame
            return
        try:
            import imageio.v2 as imageio

            reader = imageio.get_reader(str(self.path), "ffmpeg")
        except Exception as exc:  # ffmpeg errors come in many classes
            raise DataError(self.path, f"cannot read video ({exc.__class__.__name__}: "
                                       f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
        try:
            for i, frame in enumerate(reader):
                if self.max_frames and i >= self.start + self.max_frames:
                    break
                if i >= self.start:
                    yield f"{i:05d}", np.asarray(frame, dtype=np.uint8)[..., :3]
        except DataError:
            raise
        except Exception as exc:
            raise DataError(self.path, f"cannot read video ({exc.__class__.__name__}: "
                                       f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
        finally:
            reader.close()


def read_frames(path: str | Path, max_frames: int | None = None, start: int = 0) -> tuple[np.ndarray, list[str]]:
    """uint8 [T, H, W, 3] frames from frame `start` on (at most max_frames) and their names, all in
    memory (the offline baseline needs them all; one-pass streams a FrameStream instead)."""
    names, frames = zip(*FrameStream(path, max_frames, start))
    return np.stack(frames), list(names)


# An anti-aliased edge is a run of in-between values one pixel wide: a value almost all of whose
# pixels (EDGE_FRACTION) touch another value is an edge, not an object, and its pixels go to the
# nearest object value. When such edge pixels are more than SOFT_MAX of the mask's foreground, the
# mask is soft or blurred, and it is refused.
EDGE_FRACTION = 0.9
SOFT_MAX = 0.5


def read_first_mask(path: str | Path, size: tuple[int, int], what: str = "first-frame mask") -> np.ndarray:
    """The first-frame object mask as uint8 ids (0 background, 1..K objects, 255 void).

    Accepts what Cutie and SAM 2 users bring: a palette-indexed PNG (as DAVIS), a grayscale one
    (values are ids; 0/255 only is one object) and an RGB(A) one (black is background, each other
    colour one object: the DAVIS palette's index when every colour is in it, else 1..K in colour
    order). A soft or anti-aliased grayscale/RGB mask is thresholded to its object colours when
    its in-between values are a thin edge (a warning says how many pixels moved), and refused
    with a message otherwise; it never becomes dozens of objects. Refuses empty masks and a size
    mismatch.
    """
    path = Path(path)
    img = open_image(path)
    if img.mode in ("RGB", "RGBA"):
        mask = _rgb_ids(path, np.asarray(img.convert("RGB"), dtype=np.uint8))
    elif img.mode in ("P", "L", "1", "LA"):
        gray = img.mode != "P"
        mask = np.asarray(img.convert("L") if gray else img, dtype=np.uint8)
        if gray:
            mask = _gray_ids(path, mask)
    else:
        raise DataError(path, f"{what} is a {img.mode} image; expected a palette-indexed, "
                              "grayscale or RGB PNG")
    if mask.shape != tuple(size):
        raise DataError(path, f"{what} is {mask.shape[1]}x{mask.shape[0]} (WxH) but the "
                              f"video frames are {size[1]}x{size[0]}")
    if not ((mask > 0) & (mask < 255)).any():
        raise DataError(path, f"{what} is empty: no object pixels (ids 1..254)")
    ids = sorted(set(np.unique(mask).tolist()) - {0, 255})
    if ids != list(range(1, len(ids) + 1)):
        raise DataError(path, f"object ids {ids[:8]}{'...' if len(ids) > 8 else ''} are not 1..K: number the "
                              "objects 1, 2, ..., K (an anti-aliased or soft mask has many grey values)")
    return mask


def _snap(path: Path, values: np.ndarray, inverse: np.ndarray, background: np.ndarray, fixed: np.ndarray,
          shape: tuple[int, int], what: str) -> tuple[np.ndarray, np.ndarray]:
    """(kept values, per-pixel index into them): edge-only values moved to the nearest kept value.
    `background` marks the background value(s), `fixed` the values always kept (background, void)."""
    labels = inverse.reshape(shape)
    edge = np.zeros(shape, bool)  # pixels with a 4-neighbour of another value
    rows, cols = labels[1:] != labels[:-1], labels[:, 1:] != labels[:, :-1]
    edge[1:] |= rows
    edge[:-1] |= rows
    edge[:, 1:] |= cols
    edge[:, :-1] |= cols
    counts = np.bincount(inverse, minlength=len(values))
    on_edge = np.bincount(inverse[edge.reshape(-1)], minlength=len(values))
    keep = fixed | (on_edge < EDGE_FRACTION * counts)
    stray = int(counts[~keep].sum())
    if stray:
        foreground = int(counts[~background].sum())
        if not (keep & ~background).any() or stray > SOFT_MAX * foreground:
            raise DataError(path, f"first-frame mask has {int((~keep).sum())} {what} that lie only on edges, "
                                  f"{100 * stray / max(foreground, 1):.0f} % of the object pixels: a soft or blurred "
                                  "mask? Save it with hard edges (nearest-neighbour) or as an indexed PNG")
        log.warning("%s: %d pixels of %d in-between %s (an anti-aliased edge) assigned to the nearest object "
                    "or background", path, stray, int((~keep).sum()), what)
    kept = np.flatnonzero(keep)
    dist = ((values[:, None, :].astype(np.int32) - values[None, kept, :].astype(np.int32)) ** 2).sum(-1)
    return values[kept], dist.argmin(axis=1)[inverse]


def _rgb_ids(path: Path, rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    values, inverse = np.unique(rgb.reshape(-1, 3), axis=0, return_inverse=True)
    black = (values == 0).all(axis=1)
    values, index = _snap(path, values, inverse.reshape(-1), black, black, (h, w), "colours")
    objects = [i for i in range(len(values)) if values[i].any()]
    if len(objects) > 254:
        raise DataError(path, f"first-frame mask has {len(objects)} object colours; at most 254 objects")
    from workbench.data.labels import davis_palette

    palette = {tuple(davis_palette()[3 * k:3 * k + 3]): k for k in range(1, 255)}
    colours = [tuple(int(c) for c in values[i]) for i in objects]
    if all(c in palette for c in colours):  # an RGB copy of a DAVIS annotation keeps its ids
        ids = [palette[c] for c in colours]
    else:
        ids = list(range(1, len(objects) + 1))  # colour order: deterministic
    lut = np.zeros(len(values), np.uint8)
    lut[objects] = ids
    return lut[index].reshape(h, w)


def _gray_ids(path: Path, gray: np.ndarray) -> np.ndarray:
    """Grey values are ids (255 void); only 0 and 255 is one object; edge-only greys are snapped."""
    values, inverse = np.unique(gray.reshape(-1), return_inverse=True)
    values, index = _snap(path, values[:, None], inverse.reshape(-1), values == 0, (values == 0) | (values == 255),
                          gray.shape, "grey values")
    out = values[index, 0].reshape(gray.shape).astype(np.uint8)
    if set(values[:, 0].tolist()) <= {0, 255}:
        return (out == 255).astype(np.uint8)
    return out


class OverlayWriter:
    """An mp4 of frames with each object's mask blended in its DAVIS palette colour (what a user
    watches to judge a result), written frame by frame; H.264 via imageio-ffmpeg, odd sizes padded."""

    def __init__(self, path: str | Path, fps: float = 24.0, alpha: float = 0.5):
        import imageio.v2 as imageio

        from workbench.data.labels import davis_palette

        self.path, self.alpha = Path(path), alpha
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.palette = np.array(davis_palette(), np.float32).reshape(-1, 3)
        try:
            self.writer = imageio.get_writer(str(self.path), fps=fps, codec="libx264", macro_block_size=1,
                                             ffmpeg_log_level="error")
        except OSError as exc:
            raise DataError(self.path, f"cannot write the overlay video ({exc})") from None

    def add(self, frame: np.ndarray, labels: np.ndarray) -> None:
        out = frame.astype(np.float32)
        on = (labels > 0) & (labels < 255)
        out[on] = (1 - self.alpha) * out[on] + self.alpha * self.palette[labels[on]]
        h, w = out.shape[:2]
        self.writer.append_data(np.pad(out.round().astype(np.uint8), ((0, h % 2), (0, w % 2), (0, 0)), mode="edge"))

    def __enter__(self) -> OverlayWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.writer.close()
