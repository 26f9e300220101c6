"""DAVIS 2017 semi-supervised evaluation: region similarity J and boundary accuracy F.

Written from the published definitions (the official toolkit is GPL; no code is taken from it),
following the toolkit's rules so that the numbers agree:
- J is the IoU of an object's predicted and true masks; an empty union scores 1.
- F is the F-measure of one-pixel boundaries (`seg2bmap`) matched within
  `ceil(0.008 * image diagonal)` pixels (a disk dilation); an object absent from both masks
  scores 1, a boundary on one side only scores 0.
- every annotated frame but the first and the last is scored, per object;
- void (255) counts as background; the objects are 1..max id of the first annotation; a result
  with a larger id is an error; a missing result frame is an error naming it.
- per object: mean, recall (fraction of frames > 0.5), decay (mean of the first of 4 bins minus
  the mean of the last); global = mean over all objects of all sequences; J&F = (J + F) / 2.
All values are fractions in [0, 1].
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
from scipy import ndimage
from tqdm.auto import tqdm

from workbench.data import io
from workbench.data.davis import list_sequences
from workbench.errors import DataError

log = logging.getLogger(__name__)

BOUNDARY_FRACTION = 0.008
VOID = 255
MEASURES = ("J&F", "J_mean", "J_recall", "J_decay", "F_mean", "F_recall", "F_decay")


# --- per-frame measures -------------------------------------------------------------------------


def seg2bmap(mask: np.ndarray) -> np.ndarray:
    """One-pixel boundary map of a binary mask: a pixel is on the boundary when it differs from
    its right, lower or lower-right neighbour (the boundary sits half a pixel towards the origin).
    In the last row only the right neighbour counts, in the last column only the lower one, and the
    bottom-right pixel is never a boundary."""
    seg = np.asarray(mask, dtype=bool)
    right = np.zeros_like(seg)
    down = np.zeros_like(seg)
    diag = np.zeros_like(seg)
    right[:, :-1] = seg[:, 1:]
    down[:-1, :] = seg[1:, :]
    diag[:-1, :-1] = seg[1:, 1:]
    bmap = (seg ^ right) | (seg ^ down) | (seg ^ diag)
    bmap[-1, :] = seg[-1, :] ^ right[-1, :]
    bmap[:, -1] = seg[:, -1] ^ down[:, -1]
    bmap[-1, -1] = False
    return bmap


def boundary_radius(shape: tuple[int, int], fraction: float = BOUNDARY_FRACTION) -> int:
    """Matching tolerance in pixels: ceil(fraction * image diagonal)."""
    return int(math.ceil(fraction * math.hypot(shape[0], shape[1])))


def disk(radius: int) -> np.ndarray:
    """The structuring element {(y, x): x^2 + y^2 <= r^2}, shape (2r+1, 2r+1)."""
    r = np.arange(-radius, radius + 1)
    return (r[:, None] ** 2 + r[None, :] ** 2) <= radius ** 2


def dilate_disk(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation by `disk(radius)`, computed as 'Euclidean distance to the mask <= radius'
    (the same set, but linear time instead of time proportional to the disk's area)."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return np.zeros_like(mask)
    return ndimage.distance_transform_edt(~mask) <= radius


def boundary_f(pred: np.ndarray, gt: np.ndarray, radius: int | None = None) -> float:
    """Boundary F-measure of two binary masks of one object in one frame."""
    pred_b, gt_b = seg2bmap(pred), seg2bmap(gt)
    n_pred, n_gt = int(pred_b.sum()), int(gt_b.sum())
    if n_pred == 0 and n_gt == 0:
        return 1.0
    if n_pred == 0 or n_gt == 0:
        return 0.0
    radius = boundary_radius(gt.shape) if radius is None else radius
    # Only boundary pixels matter: work inside their joint bounding box.
    ys, xs = np.nonzero(pred_b | gt_b)
    box = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
    pred_b, gt_b = pred_b[box], gt_b[box]
    precision = np.count_nonzero(pred_b & dilate_disk(gt_b, radius)) / n_pred
    recall = np.count_nonzero(gt_b & dilate_disk(pred_b, radius)) / n_gt
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def region_j(pred: np.ndarray, gt: np.ndarray, num_objects: int) -> np.ndarray:
    """J of objects 1..K in one frame (index maps with values 0..K), shape (K,)."""
    k = num_objects + 1
    joint = np.bincount(gt.ravel().astype(np.int64) * k + pred.ravel(), minlength=k * k).reshape(k, k)
    inter = np.diag(joint)[1:].astype(np.float64)
    union = joint.sum(axis=1)[1:] + joint.sum(axis=0)[1:] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 1.0)


def frame_scores(pred: np.ndarray, gt: np.ndarray, num_objects: int) -> tuple[np.ndarray, np.ndarray]:
    """(J, F) of every object in one frame. `gt` may hold void and ids above K: both count as
    background; `pred` must hold only 0..K."""
    gt = np.where(gt > num_objects, 0, gt)
    j = region_j(pred, gt, num_objects)
    radius = boundary_radius(gt.shape)
    f = np.array([boundary_f(pred == obj, gt == obj, radius) for obj in range(1, num_objects + 1)])
    return j, f


def statistics(values: np.ndarray, bins: int = 4) -> tuple[float, float, float]:
    """(mean, recall, decay) of one object's per-frame scores. Decay splits the frames into 4
    bins whose edges are rounded from linspace(1, n, 5) (neighbouring bins share their edge frame,
    as in the toolkit) and subtracts the last bin's mean from the first's."""
    values = np.asarray(values, dtype=np.float64)
    mean = float(np.nanmean(values))
    recall = float(np.nanmean(values > 0.5))
    edges = np.round(np.linspace(1, len(values), bins + 1) + 1e-10).astype(int) - 1
    first = values[edges[0]: edges[1] + 1]
    last = values[edges[bins - 1]: edges[bins] + 1]
    return mean, recall, float(np.nanmean(first) - np.nanmean(last))


# --- sequences ----------------------------------------------------------------------------------


def annotation_files(root: Path, seq: str, resolution: str = "480p") -> list[Path]:
    folder = root / "Annotations" / resolution / seq
    files = sorted(folder.glob("*.png"))
    if not files:
        raise DataError(folder, f"no annotation PNGs for sequence {seq!r}")
    return files


def num_objects_of(first_annotation: np.ndarray) -> int:
    """Object count from the first annotation: its largest id, void excluded."""
    ids = first_annotation[first_annotation != VOID]
    return int(ids.max(initial=0))


def check_results(root: Path, seq: str, results_dir: Path, resolution: str = "480p") -> Path:
    """The sequence's result folder, after checking that every scored frame is there (the first
    and last frames are not read, as in the toolkit)."""
    scored = annotation_files(root, seq, resolution)[1:-1]
    res_dir = results_dir / seq
    if not res_dir.is_dir():
        raise DataError(res_dir, f"no results for sequence {seq!r}")
    missing = [f.name for f in scored if not (res_dir / f.name).is_file()]
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise DataError(res_dir, f"{len(missing)} of {len(scored)} result frames missing: {shown}")
    return res_dir


def evaluate_sequence(root: Path, seq: str, results_dir: Path,
                      resolution: str = "480p") -> tuple[np.ndarray, np.ndarray]:
    """Per-frame scores (J, F), each (objects, frames - 2), of one sequence's results."""
    files = annotation_files(root, seq, resolution)
    if len(files) < 3:
        raise DataError(files[0].parent, f"sequence {seq!r} has {len(files)} annotated frames; "
                                         "the first and last are not scored, so at least 3 are needed")
    num_objects = num_objects_of(io.read_indexed_png(files[0]))
    scored = files[1:-1]
    res_dir = check_results(root, seq, results_dir, resolution)
    j_all = np.zeros((num_objects, len(scored)))
    f_all = np.zeros((num_objects, len(scored)))
    for t, gt_path in enumerate(scored):
        gt = io.read_indexed_png(gt_path)
        res_path = res_dir / gt_path.name
        pred = io.read_label_png(res_path)
        if pred.shape != gt.shape:
            raise DataError(res_path, f"result size {pred.shape[1]}x{pred.shape[0]} (WxH) differs from "
                                      f"the annotation {gt.shape[1]}x{gt.shape[0]}")
        top = int(pred.max(initial=0))
        if top > num_objects:
            raise DataError(res_path, f"object id {top} in the result, but the first annotation of "
                                      f"{seq!r} has {num_objects} object(s)")
        j_all[:, t], f_all[:, t] = frame_scores(pred, gt, num_objects)
    return j_all, f_all


def _summary(j: np.ndarray, f: np.ndarray) -> dict:
    jm, jr, jd = statistics(j)
    fm, fr, fd = statistics(f)
    return {"J&F": (jm + fm) / 2, "J_mean": jm, "J_recall": jr, "J_decay": jd,
            "F_mean": fm, "F_recall": fr, "F_decay": fd}


def evaluate_vos(root: str | Path, split: str, results_dir: str | Path,
                 sequences: list[str] | None = None, resolution: str = "480p") -> dict:
    """Score a results tree `results_dir/{seq}/{frame}.png` against a DAVIS 2017 split.

    Returns {'global': {J&F, J_mean, J_recall, J_decay, F_mean, F_recall, F_decay},
    'objects': {'{seq}_{k}': same keys}, 'sequences': {seq: {'J&F', 'J_mean', 'F_mean',
    'num_objects', 'frames'}}}: global values are means over all objects.
    """
    root, results_dir = Path(root), Path(results_dir)
    if not results_dir.is_dir():
        raise DataError(results_dir, "results directory not found")
    names = list(sequences) if sequences is not None else list_sequences(root, split)
    for seq in names:                      # fail on a missing file before the long part
        check_results(root, seq, results_dir, resolution)
    objects: dict[str, dict] = {}
    per_sequence: dict[str, dict] = {}
    for seq in tqdm(names, desc=f"eval vos {split}", leave=False, disable=None):
        j, f = evaluate_sequence(root, seq, results_dir, resolution)
        rows = [_summary(j[k], f[k]) for k in range(len(j))]
        for k, row in enumerate(rows, start=1):
            objects[f"{seq}_{k}"] = row
        if not rows:
            log.warning("sequence %s: the first annotation holds no object; nothing to score", seq)
            continue
        jm = float(np.mean([r["J_mean"] for r in rows]))
        fm = float(np.mean([r["F_mean"] for r in rows]))
        per_sequence[seq] = {"J&F": (jm + fm) / 2, "J_mean": jm, "F_mean": fm,
                             "num_objects": len(rows), "frames": j.shape[1]}
    if not objects:
        raise DataError(root, f"no objects to score in split {split!r}")
    glob = {m: float(np.mean([o[m] for o in objects.values()])) for m in MEASURES if m != "J&F"}
    glob = {"J&F": (glob["J_mean"] + glob["F_mean"]) / 2, **glob}
    log.info("DAVIS %s: J&F %.4f (J %.4f, F %.4f) over %d objects", split, glob["J&F"],
             glob["J_mean"], glob["F_mean"], len(objects))
    return {"global": glob, "objects": objects, "sequences": per_sequence}
