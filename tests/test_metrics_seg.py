"""Segmentation metrics: hand-computed confusion matrices, agreement with the official Cityscapes
pixel-level evaluator on the same files, bad prediction files, CLI and most-frequent baseline."""

from __future__ import annotations

import glob
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from workbench.cli import main
from workbench.data import io, labels
from workbench.errors import DataError
from workbench.metrics.baselines import class_frequencies, most_frequent_class
from workbench.metrics.segmentation import ConfusionMatrix, evaluate_predictions

H, W = 24, 48
IDS = [(c, f"{c}_000000_{f:06d}") for c, f in [("aachen", 19), ("aachen", 42), ("bonn", 7), ("bonn", 8)]]


def _blocks(rng: np.random.Generator, values: list[int], block: int = 6) -> np.ndarray:
    """A random piecewise-constant label map (blocks), so classes have real areas."""
    small = rng.choice(values, size=(H // block, W // block))
    return np.kron(small, np.ones((block, block), dtype=np.int64)).astype(np.uint8)


def _cityscapes_tree(tmp: Path, seed: int = 0) -> tuple[Path, Path]:
    """gtFine/val labelId maps over a subset of ids (some classes absent everywhere) and
    predictions that agree on some pixels and use ignored labelIds (0, 4) on others."""
    rng = np.random.default_rng(seed)
    root, pred = tmp / "cs", tmp / "pred"
    gt_ids = [0, 4, 7, 8, 11, 17, 21, 23, 24, 26, 33]       # road sidewalk building pole ... + ignored
    pred_ids = [0, 7, 8, 11, 12, 21, 24, 26, 27, 4]         # wall, truck only predicted
    for i, (city, image_id) in enumerate(IDS):
        gt = _blocks(rng, gt_ids)
        p = np.where(rng.random((H, W)) < 0.6, gt, _blocks(rng, pred_ids, block=3))
        io.write_label_png(root / "gtFine" / "val" / city / f"{image_id}_gtFine_labelIds.png", gt)
        # both flat and nested layouts: the evaluator searches the whole tree
        sub = pred / city if i % 2 else pred
        io.write_label_png(sub / f"{image_id}_leftImg8bit.png", p)
    return root, pred


def test_confusion_matrix_hand_computed():
    cm = ConfusionMatrix(4)
    cm.update(np.array([0, 1, 1, 1, 0, 5]), np.array([0, 0, 1, 1, 255, 2]))
    assert cm.matrix.tolist() == [[1, 1, 0, 0], [0, 2, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    r = cm.compute()
    assert r["per_class_iou"][:3] == pytest.approx([1 / 2, 2 / 3, 0.0])
    assert math.isnan(r["per_class_iou"][3])          # in neither GT nor prediction
    assert r["miou"] == pytest.approx((1 / 2 + 2 / 3 + 0) / 3)
    assert r["pixel_acc"] == pytest.approx(3 / 5)      # the void-predicted class-2 pixel is wrong
    assert r["mean_acc"] == pytest.approx((1 / 2 + 1 + 0) / 3)


def test_confusion_matrix_torch_equals_numpy_and_accumulates():
    rng = np.random.default_rng(1)
    pred = rng.integers(0, 6, size=(2, 17, 23))
    target = rng.integers(0, 5, size=(2, 17, 23))
    target[:, :3] = 255
    a, b = ConfusionMatrix(5), ConfusionMatrix(5)
    a.update(pred, target)
    b.update(torch.from_numpy(pred[:1]), torch.from_numpy(target[:1]))
    b.update(torch.from_numpy(pred[1:]), torch.from_numpy(target[1:]))
    assert np.array_equal(a.matrix, b.matrix) and np.array_equal(a.unmatched, b.unmatched)
    assert a.matrix.sum() + a.unmatched.sum() == (target != 255).sum()
    with pytest.raises(ValueError, match="shape"):
        a.update(pred[0], target)


def test_miou_matches_official_cityscapes_evaluator(tmp_path, monkeypatch):
    import cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling as official

    root, pred = _cityscapes_tree(tmp_path)
    for name, value in dict(predictionPath=str(pred), predictionWalk=None, evalInstLevelScore=False,
                            evalPixelAccuracy=False, quiet=True, JSONOutput=False).items():
        monkeypatch.setattr(official.args, name, value)
    gts = sorted(glob.glob(str(root / "gtFine" / "val" / "*" / "*_gtFine_labelIds.png")))
    preds = [official.getPrediction(official.args, gt) for gt in gts]
    ref = official.evaluateImgLists(preds, gts, official.args)

    ours = evaluate_predictions("cityscapes", root, "val", pred)
    assert ours["num_images"] == len(gts) == 4
    assert ours["miou"] == pytest.approx(ref["averageScoreClasses"], abs=1e-12)
    nan_classes = 0
    for name, iou in ours["per_class_iou"].items():
        if math.isnan(ref["classScores"][name]):
            nan_classes += 1
            assert math.isnan(iou), name
        else:
            assert iou == pytest.approx(ref["classScores"][name], abs=1e-12), name
    assert 0 < nan_classes < 19          # the case of classes absent from both is exercised


def test_cityscapes_prediction_errors(tmp_path):
    root, pred = _cityscapes_tree(tmp_path)
    extra = pred / "aachen_000000_000019_copy.png"
    io.write_label_png(extra, np.zeros((H, W), np.uint8))
    with pytest.raises(DataError, match="2 predictions match aachen_000000_000019"):
        evaluate_predictions("cityscapes", root, "val", pred)
    extra.unlink()
    missing = pred / "bonn" / "bonn_000000_000008_leftImg8bit.png"
    missing.unlink()
    with pytest.raises(DataError, match=r"no prediction bonn_000000_000008\*\.png"):
        evaluate_predictions("cityscapes", root, "val", pred)
    io.write_label_png(missing, np.zeros((H, W + 2), np.uint8))
    with pytest.raises(DataError, match="bonn_000000_000008_leftImg8bit.png: prediction size"):
        evaluate_predictions("cityscapes", root, "val", pred)
    io.write_label_png(missing, np.full((H, W), 34, np.uint8))
    with pytest.raises(DataError, match="unknown Cityscapes labelId 34"):
        evaluate_predictions("cityscapes", root, "val", pred)
    io.write_rgb(missing, np.zeros((H, W, 3), np.uint8))
    with pytest.raises(DataError, match="single-channel"):
        evaluate_predictions("cityscapes", root, "val", pred)


def _camvid_tree(tmp: Path) -> Path:
    root = tmp / "camvid"
    rng = np.random.default_rng(3)
    for split, n in (("train", 3), ("val", 2)):
        for i in range(n):
            label = _blocks(rng, [0, 1, 3, 3, 3, 5, 11])   # road (3) dominates, 11 = void
            io.write_rgb(root / split / f"{split}{i:03d}.png", np.zeros((H, W, 3), np.uint8))
            io.write_label_png(root / f"{split}annot" / f"{split}{i:03d}.png", label)
    return root


def test_camvid_evaluation_equals_confusion_matrix(tmp_path):
    root = _camvid_tree(tmp_path)
    pred_dir = tmp_path / "pred"
    rng = np.random.default_rng(4)
    cm = ConfusionMatrix(11)
    for gt_path in sorted((root / "valannot").glob("*.png")):
        gt = io.read_label_png(gt_path)
        pred = rng.integers(0, 12, size=gt.shape).astype(np.uint8)   # 11 (void) is always wrong
        io.write_label_png(pred_dir / gt_path.name, pred)
        cm.update(np.where(pred == 11, 255, pred), np.where(gt == 11, 255, gt))
    result = evaluate_predictions("camvid", root, "val", pred_dir)
    assert result["miou"] == pytest.approx(cm.compute()["miou"])
    assert result["confusion_matrix"] == cm.matrix.tolist()
    (pred_dir / "val001.png").unlink()
    with pytest.raises(DataError, match="val001.png: prediction missing"):
        evaluate_predictions("camvid", root, "val", pred_dir)


def test_most_frequent_baseline_and_cli(tmp_path, capsys):
    root = _camvid_tree(tmp_path)
    counts = class_frequencies("camvid", root, "train")
    expected = np.bincount(np.concatenate([io.read_label_png(p).ravel()
                                           for p in (root / "trainannot").glob("*.png")]), minlength=12)
    assert counts.tolist() == expected[:11].tolist()
    out = tmp_path / "mf"
    assert main(["baseline", "most-frequent", "--dataset", "camvid", "--root", str(root),
                 "--split", "val", "--out", str(out)]) == 0
    assert "road" in capsys.readouterr().out
    preds = sorted(out.glob("*.png"))
    assert [p.name for p in preds] == ["val000.png", "val001.png"]
    assert all((io.read_label_png(p) == 3).all() for p in preds)

    js = tmp_path / "seg.json"
    assert main(["eval", "seg", "--dataset", "camvid", "--root", str(root), "--split", "val",
                 "--pred", str(out), "--json", str(js)]) == 0
    printed = capsys.readouterr().out
    record = json.loads(js.read_text())
    gts = np.stack([io.read_label_png(p) for p in sorted((root / "valannot").glob("*.png"))])
    labelled = gts != 11
    road_iou = (gts[labelled] == 3).sum() / labelled.sum()      # road everywhere: IoU = road share
    assert record["per_class_iou"]["road"] == pytest.approx(road_iou)
    assert record["miou"] == pytest.approx(road_iou / 4)   # sky, building, tree present: IoU 0
    assert record["per_class_iou"]["car"] is None           # absent from both -> NaN -> null
    assert "mIoU" in printed and f"{100 * road_iou / 4:6.2f}" in printed

    assert main(["eval", "seg", "--dataset", "camvid", "--root", str(root), "--split", "val",
                 "--pred", str(tmp_path / "nowhere")]) == 2
    assert "error:" in capsys.readouterr().err


def test_most_frequent_cityscapes_writes_label_ids(tmp_path):
    root, _ = _cityscapes_tree(tmp_path)
    # evaluate the val split as its own "train" split: the most frequent train id is known
    train_id = most_frequent_class("cityscapes", root, "val", tmp_path / "mf", train_split="val")
    gts = np.stack([io.read_label_png(p) for p in sorted((root / "gtFine" / "val").glob("*/*.png"))])
    train = labels.cityscapes_id_to_train_id()[gts]
    assert train_id == int(np.argmax(np.bincount(train[train != 255], minlength=19)))
    files = sorted((tmp_path / "mf").glob("*.png"))
    assert [f.name for f in files] == sorted(f"{i}.png" for _, i in IDS)
    label_id = labels.cityscapes_train_id_to_id()[train_id]
    assert all((io.read_label_png(f) == label_id).all() for f in files)
    result = evaluate_predictions("cityscapes", root, "val", tmp_path / "mf")
    assert result["per_class_iou"][labels.cityscapes_class_names()[train_id]] > 0
