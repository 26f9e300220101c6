"""YouTube-VOS scoring: every object from its first annotated frame on.

In YouTube-VOS an object may enter late: it is given (as the semi-supervised input) on the first
frame it is annotated in, and the evaluator scores it on the annotated frames after that one, the
last frame included. DAVIS 2017 (`workbench.metrics.davis`) instead takes the objects of frame 0 and
drops the first and last frames. Per frame, J and F are DAVIS's (`frame_scores`); an object absent
from both masks of a scored frame scores 1, as there. Per object: mean, recall and decay over its
scored frames; global = mean over objects, J&F = (J + F) / 2.

The official server also reports seen and unseen categories separately. A local layout carries no
such split, so only the overall means are computed. Results are `results_dir/<video>/<frame>.png`
(the layout of a YouTube-VOS submission's `Annotations/` folder).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from workbench.data import io
from workbench.data.youtube_vos import list_videos, read_meta
from workbench.errors import DataError
from workbench.metrics.davis import MEASURES, frame_scores, statistics

log = logging.getLogger(__name__)


def scored_frames(annotated: list[str], first_frames: dict[int, str]) -> dict[int, list[str]]:
    """{object id: the annotated frame names it is scored on}: those after its first frame."""
    return {obj: [name for name in annotated if name > first] for obj, first in sorted(first_frames.items())}


def evaluate_video(ann_dir: Path, res_dir: Path, first_frames: dict[int, str]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """{object id: (J per scored frame, F per scored frame)} of one video's results."""
    annotated = sorted(p.stem for p in ann_dir.glob("*.png"))
    if not annotated:
        raise DataError(ann_dir, "no annotation PNGs")
    frames = scored_frames(annotated, first_frames)
    needed = sorted({name for names in frames.values() for name in names})
    missing = [name for name in needed if not (res_dir / f"{name}.png").is_file()]
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise DataError(res_dir, f"{len(missing)} of {len(needed)} result frames missing: {shown}")
    top = max(first_frames, default=0)
    scores: dict[int, tuple[list[float], list[float]]] = {obj: ([], []) for obj in frames}
    for name in needed:
        gt = io.read_indexed_png(ann_dir / f"{name}.png")
        res_path = res_dir / f"{name}.png"
        pred = io.read_label_png(res_path)
        if pred.shape != gt.shape:
            raise DataError(res_path, f"result size {pred.shape[1]}x{pred.shape[0]} (WxH) differs from "
                                      f"the annotation {gt.shape[1]}x{gt.shape[0]}")
        if int(pred.max(initial=0)) > top:
            raise DataError(res_path, f"object id {int(pred.max())} in the result, but meta.json lists ids up to {top}")
        j, f = frame_scores(pred, gt, top)
        for obj, names in frames.items():
            if name in names:
                scores[obj][0].append(j[obj - 1])
                scores[obj][1].append(f[obj - 1])
    return {obj: (np.array(js), np.array(fs)) for obj, (js, fs) in scores.items()}


def evaluate_youtube_vos(root: str | Path, split: str, results_dir: str | Path, videos: list[str] | None = None) -> dict:
    """Score `results_dir/<video>/<frame>.png` against a YouTube-VOS-layout split, each object from
    its first frame in meta.json on. Returns {'global', 'objects': {'<video>_<id>': ...},
    'sequences': {video: {'J&F', 'J_mean', 'F_mean', 'num_objects', 'frames'}}} like the DAVIS scorer."""
    root, results_dir = Path(root), Path(results_dir)
    if not results_dir.is_dir():
        raise DataError(results_dir, "results directory not found")
    meta = read_meta(root, split)
    names = list(videos) if videos is not None else list_videos(root, split)
    unknown = [v for v in names if v not in meta]
    if unknown:
        raise DataError(root / split / "meta.json", f"no video {unknown[0]!r} in meta.json")
    for video in names:                      # fail on a missing folder before the long part
        if not (results_dir / video).is_dir():
            raise DataError(results_dir / video, f"no results for video {video!r}")
    objects: dict[str, dict] = {}
    per_video: dict[str, dict] = {}
    for video in tqdm(names, desc=f"eval youtube-vos {split}", leave=False, disable=None):
        scores = evaluate_video(root / split / "Annotations" / video, results_dir / video, meta[video])
        rows = {}
        for obj, (j, f) in scores.items():
            if not len(j):
                log.warning("video %s: object %d has no annotated frame after its first; not scored", video, obj)
                continue
            jm, jr, jd = statistics(j)
            fm, fr, fd = statistics(f)
            rows[obj] = {"J&F": (jm + fm) / 2, "J_mean": jm, "J_recall": jr, "J_decay": jd,
                         "F_mean": fm, "F_recall": fr, "F_decay": fd, "first_frame": meta[video][obj],
                         "frames": len(j)}
        objects.update({f"{video}_{obj}": row for obj, row in rows.items()})
        if rows:
            jm = float(np.mean([r["J_mean"] for r in rows.values()]))
            fm = float(np.mean([r["F_mean"] for r in rows.values()]))
            per_video[video] = {"J&F": (jm + fm) / 2, "J_mean": jm, "F_mean": fm, "num_objects": len(rows),
                                "frames": max(r["frames"] for r in rows.values())}
    if not objects:
        raise DataError(root / split, "no objects to score")
    glob = {m: float(np.mean([o[m] for o in objects.values()])) for m in MEASURES if m != "J&F"}
    glob = {"J&F": (glob["J_mean"] + glob["F_mean"]) / 2, **glob}
    log.info("YouTube-VOS %s: J&F %.4f (J %.4f, F %.4f) over %d objects", split, glob["J&F"], glob["J_mean"],
             glob["F_mean"], len(objects))
    return {"global": glob, "objects": objects, "sequences": per_video, "protocol": "youtube-vos"}
