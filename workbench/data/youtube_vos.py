"""YouTube-VOS 2019 layout: `<split>/JPEGImages/<video>/*.jpg`, `<split>/Annotations/<video>/*.png`
(palette PNGs) and `<split>/meta.json` (`{"videos": {video: {"objects": {id: {"category",
"frames"}}}}}`).

Unlike DAVIS, an object may first appear after frame 0 (its first annotated frame in meta.json),
and the train split is annotated every fifth frame. A video is read into the same record as a DAVIS
sequence (`DavisSequence`: frames, frame names, masks of the annotated frames), plus each object's
first frame, so training samples clips from either dataset alike.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from workbench.data import io
from workbench.data.davis import DavisSequence, read_annotations
from workbench.errors import DataError


def read_meta(root: str | Path, split: str) -> dict[str, dict]:
    """{video: {object id (int): first frame name}} from `<split>/meta.json`."""
    path = Path(root) / split / "meta.json"
    if not path.is_file():
        raise DataError(path, f"missing meta.json of split {split!r} (YouTube-VOS layout)")
    try:
        videos = json.loads(path.read_text())["videos"]
        return {name: {int(k): sorted(v["frames"])[0] for k, v in info["objects"].items()}
                for name, info in videos.items()}
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise DataError(path, f"not a YouTube-VOS meta.json ({exc.__class__.__name__}: {exc})") from None


def list_videos(root: str | Path, split: str) -> list[str]:
    names = sorted(read_meta(root, split))
    if not names:
        raise DataError(Path(root) / split / "meta.json", "no videos listed")
    return names


def load_video(root: str | Path, split: str, name: str, first_frames: dict[int, str] | None = None) -> DavisSequence:
    """Frames and annotated masks of one video, with each object's first frame (`first_appearance`).
    Every object of meta.json must be in the annotation of its first frame."""
    base = Path(root) / split
    frame_dir, ann_dir = base / "JPEGImages" / name, base / "Annotations" / name
    if not frame_dir.is_dir():
        raise DataError(frame_dir, f"missing frame folder of video {name!r}")
    paths = sorted(p for p in frame_dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not paths:
        raise DataError(frame_dir, "no frames (*.jpg)")
    stems = [p.stem for p in paths]
    index = {s: i for i, s in enumerate(stems)}
    frames = np.stack([io.read_rgb(p) for p in paths])
    masks = read_annotations(ann_dir, index, frame_dir, frames.shape[1:3])
    if not masks:
        raise DataError(ann_dir, f"no annotations of video {name!r}")
    first_frames = first_frames if first_frames is not None else read_meta(root, split).get(name, {})
    appearance = {}
    for obj, stem in first_frames.items():
        t = index.get(stem)
        if t is None or t not in masks or not (masks[t] == obj).any():
            raise DataError(ann_dir / f"{stem}.png", f"object {obj} of meta.json is not in the annotation of its "
                                                     f"first frame {stem}")
        appearance[obj] = t
    return DavisSequence(name, frames, stems, masks, max(appearance, default=0), paths, appearance)


def load_split(root: str | Path, split: str = "train") -> list[DavisSequence]:
    meta = read_meta(root, split)
    return [load_video(root, split, name, meta[name]) for name in sorted(meta)]
