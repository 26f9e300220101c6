"""Semantic-segmentation metrics: a confusion matrix over train ids, per-class IoU and mIoU.

The definitions follow the official Cityscapes pixel-level evaluator (`cityscapesscripts`):
- pixels whose ground truth is `ignore_index` are not counted at all;
- a prediction outside 0..C-1 (a labelId that maps to "ignore", CamVid's void) on a labelled
  pixel is a false negative of the true class and a false positive of no class;
- a class absent from both ground truth and prediction has IoU NaN and is left out of the mean.
A test runs both evaluators on the same files.
"""

from __future__ import annotations

import fnmatch
import logging
import os
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from workbench.data import io, labels
from workbench.errors import ConfigError, DataError

log = logging.getLogger(__name__)

DATASETS = ("cityscapes", "camvid")


def _to_numpy(x) -> np.ndarray:
    if type(x).__module__.startswith("torch"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


class ConfusionMatrix:
    """Accumulates `matrix[gt, pred]` (int64, C x C) over any number of label maps.

    `unmatched[gt]` counts labelled pixels whose prediction is not a class (>= C or < 0); it
    enters the IoU and accuracy as false negatives, as in the official Cityscapes evaluator.
    """

    def __init__(self, num_classes: int, ignore_index: int = labels.IGNORE_INDEX):
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        self.reset()

    def reset(self) -> None:
        self.matrix = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)
        self.unmatched = np.zeros(self.num_classes, dtype=np.int64)

    def update(self, pred, target) -> None:
        """Add one batch: `pred` and `target` are integer arrays/tensors of the same shape."""
        if type(pred).__module__.startswith("torch") and type(target).__module__.startswith("torch"):
            self._update_torch(pred, target)
            return
        pred, target = _to_numpy(pred), _to_numpy(target)
        if pred.shape != target.shape:
            raise ValueError(f"prediction shape {pred.shape} != target shape {target.shape}")
        t = target.reshape(-1).astype(np.int64)
        p = pred.reshape(-1).astype(np.int64)
        keep = t != self.ignore_index
        t, p = t[keep], p[keep]
        c = self.num_classes
        if t.size and (t.min() < 0 or t.max() >= c):
            bad = int(t[(t < 0) | (t >= c)][0])
            raise ValueError(f"target value {bad} is neither a class (0..{c - 1}) nor ignore_index")
        inside = (p >= 0) & (p < c)
        self.matrix += np.bincount(t[inside] * c + p[inside], minlength=c * c).reshape(c, c)
        self.unmatched += np.bincount(t[~inside], minlength=c)

    def _update_torch(self, pred, target) -> None:
        """Same as `update`, computed on the tensors' device (only the C x C result moves)."""
        import torch

        if pred.shape != target.shape:
            raise ValueError(f"prediction shape {tuple(pred.shape)} != target shape {tuple(target.shape)}")
        t = target.reshape(-1).long()
        p = pred.reshape(-1).long().to(t.device)
        keep = t != self.ignore_index
        t, p = t[keep], p[keep]
        c = self.num_classes
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= c):
            raise ValueError(f"target values must be classes 0..{c - 1} or ignore_index")
        inside = (p >= 0) & (p < c)
        counts = torch.bincount(t[inside] * c + p[inside], minlength=c * c).reshape(c, c)
        self.matrix += counts.cpu().numpy().astype(np.int64)
        self.unmatched += torch.bincount(t[~inside], minlength=c).cpu().numpy().astype(np.int64)

    def compute(self) -> dict:
        """{'miou', 'per_class_iou' (list, NaN = class absent from GT and prediction),
        'pixel_acc', 'mean_acc', 'per_class_acc'}; all fractions in [0, 1]."""
        m = np.asarray(self.matrix, dtype=np.float64)
        tp = np.diag(m)
        gt = m.sum(axis=1) + self.unmatched      # labelled pixels of each class
        union = gt + m.sum(axis=0) - tp          # tp + fn + fp
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = np.where(union > 0, tp / union, np.nan)
            acc = np.where(gt > 0, tp / gt, np.nan)
        total = gt.sum()
        return {
            "miou": _nanmean(iou),
            "per_class_iou": [float(v) for v in iou],
            "pixel_acc": float(tp.sum() / total) if total else float("nan"),
            "mean_acc": _nanmean(acc),
            "per_class_acc": [float(v) for v in acc],
        }


def _nanmean(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")


# --- evaluating prediction files ----------------------------------------------------------------


def _cityscapes_pairs(root: Path, split: str, pred_dir: Path) -> list[tuple[str, Path, Path]]:
    """(image id, gt file, prediction file): for every GT file exactly one prediction named
    `{city}_{seq}_{frame}*.png` anywhere under pred_dir (the official evaluator's search)."""
    gt_dir = root / "gtFine" / split
    gt_files = sorted(gt_dir.glob("*/*_gtFine_labelIds.png"))
    if not gt_files:
        raise DataError(gt_dir, "no *_gtFine_labelIds.png files (not a Cityscapes split?)")
    walk = [(Path(d), sorted(f for f in files if f.endswith(".png"))) for d, _, files in os.walk(pred_dir)]
    pairs = []
    for gt in gt_files:
        image_id = gt.name[: -len("_gtFine_labelIds.png")]
        pattern = f"{image_id}*.png"
        found = [d / f for d, files in walk for f in fnmatch.filter(files, pattern)]
        if not found:
            raise DataError(pred_dir, f"no prediction {pattern} for ground truth {gt}")
        if len(found) > 1:
            raise DataError(pred_dir, f"{len(found)} predictions match {pattern} ({found[0].name}, "
                                      f"{found[1].name}, ...) for ground truth {gt}; need exactly one")
        pairs.append((image_id, gt, found[0]))
    return pairs


def _camvid_pairs(root: Path, split: str, pred_dir: Path) -> list[tuple[str, Path, Path]]:
    """(image id, annotation file, prediction file named like the annotation)."""
    gt_dir = root / f"{split}annot"
    gt_files = sorted(gt_dir.glob("*.png"))
    if not gt_files:
        raise DataError(gt_dir, "no annotation PNGs (not a CamVid split?)")
    pairs = []
    for gt in gt_files:
        pred = pred_dir / gt.name
        if not pred.is_file():
            raise DataError(pred, f"prediction missing for annotation {gt}")
        pairs.append((gt.stem, gt, pred))
    return pairs


def _read_pair(dataset: str, gt_path: Path, pred_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(prediction, target) as train ids; predictions outside the classes become 255."""
    gt = io.read_label_png(gt_path)
    pred = io.read_label_png(pred_path)
    if pred.shape != gt.shape:
        raise DataError(pred_path, f"prediction size {pred.shape[1]}x{pred.shape[0]} (WxH) differs from "
                                   f"ground truth {gt_path.name} {gt.shape[1]}x{gt.shape[0]}")
    if dataset == "cityscapes":
        valid = np.zeros(256, dtype=bool)
        valid[list(labels.cityscapes_valid_label_ids())] = True
        for path, arr in ((gt_path, gt), (pred_path, pred)):
            present = np.flatnonzero(np.bincount(arr.ravel(), minlength=256))
            unknown = present[~valid[present]]
            if unknown.size:
                raise DataError(path, f"unknown Cityscapes labelId {int(unknown[0])} (labelIds are 0..33)")
        lut = labels.cityscapes_id_to_train_id()
        return lut[pred], lut[gt]
    for path, arr in ((gt_path, gt), (pred_path, pred)):
        if arr.max(initial=0) > labels.CAMVID_VOID:
            raise DataError(path, f"unknown CamVid class index {int(arr.max())} "
                                  f"(0..{labels.CAMVID_VOID - 1}, {labels.CAMVID_VOID} = void)")
    return labels.camvid_to_train_id(pred), labels.camvid_to_train_id(gt)


def class_names(dataset: str) -> list[str]:
    if dataset == "cityscapes":
        return labels.cityscapes_class_names()
    if dataset == "camvid":
        return list(labels.CAMVID_CLASSES)
    raise ConfigError(f"dataset: unknown segmentation dataset {dataset!r} (choose from {', '.join(DATASETS)})")


def prediction_pairs(dataset: str, root: str | Path, split: str,
                     pred_dir: str | Path) -> list[tuple[str, Path, Path]]:
    """(image id, ground-truth file, prediction file) for every labelled image of the split."""
    class_names(dataset)
    root, pred_dir = Path(root), Path(pred_dir)
    if not pred_dir.is_dir():
        raise DataError(pred_dir, "prediction directory not found")
    if dataset == "cityscapes":
        return _cityscapes_pairs(root, split, pred_dir)
    return _camvid_pairs(root, split, pred_dir)


def evaluate_predictions(dataset: str, root: str | Path, split: str, pred_dir: str | Path) -> dict:
    """Score prediction PNGs of a split (Cityscapes labelIds / CamVid class indices).

    Returns {'miou', 'pixel_acc', 'mean_acc', 'per_class_iou' {name: iou}, 'class_names',
    'confusion_matrix', 'num_images', 'dataset', 'split'}; values are fractions, NaN for a class
    absent from both ground truth and predictions.
    """
    names = class_names(dataset)
    pairs = prediction_pairs(dataset, root, split, pred_dir)
    cm = ConfusionMatrix(len(names))
    for _, gt_path, pred_path in tqdm(pairs, desc=f"eval {dataset} {split}", leave=False,
                                      disable=None):
        pred, target = _read_pair(dataset, gt_path, pred_path)
        cm.update(pred, target)
    scores = cm.compute()
    log.info("%s %s: mIoU %.4f, pixel acc %.4f over %d images", dataset, split, scores["miou"],
             scores["pixel_acc"], len(pairs))
    return {
        "dataset": dataset, "split": split, "num_images": len(pairs),
        "miou": scores["miou"], "pixel_acc": scores["pixel_acc"], "mean_acc": scores["mean_acc"],
        "per_class_iou": dict(zip(names, scores["per_class_iou"])),
        "per_class_acc": dict(zip(names, scores["per_class_acc"])),
        "class_names": names,
        "confusion_matrix": cm.matrix.tolist(),
    }
