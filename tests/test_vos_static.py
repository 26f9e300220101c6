"""Clips from still images with instance masks (COCO JSON or a folder), and two-stage training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from workbench.cli import main
from workbench.data.io import write_indexed_png
from workbench.errors import DataError
from workbench.runs import RunDir
from workbench.vos.static_clips import load_static, warp

TINY = ["--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "2", "--set", "crop_size=[48,96]",
        "--device", "cpu", "--threads", "1", "--seed", "0"]
H, W = 80, 120


def _scene(i: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(i)
    img = (rng.random((H, W, 3)) * 60 + 40).astype(np.uint8)
    mask = np.zeros((H, W), np.uint8)
    mask[10:40, 10:50], mask[45:75, 60:110] = 1, 2
    img[mask == 1], img[mask == 2] = (220, 40, 40), (40, 60, 220)
    return img, mask


@pytest.fixture(scope="module")
def still_images(tmp_path_factory) -> Path:
    """The same three scenes as a folder (images/ + masks/) and as a COCO JSON (polygons)."""
    root = tmp_path_factory.mktemp("static")
    coco = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "box"}]}
    for i in range(3):
        img, mask = _scene(i)
        for base in ("folder", "coco"):
            (root / base / "images").mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(root / base / "images" / f"im{i}.png")
        write_indexed_png(root / "folder" / "masks" / f"im{i}.png", mask)
        coco["images"].append({"id": i, "file_name": f"im{i}.png", "height": H, "width": W})
        for k, (y0, y1, x0, x1) in enumerate([(10, 40, 10, 50), (45, 75, 60, 110)]):
            poly = [x0, y0, x1, y0, x1, y1, x0, y1]
            coco["annotations"].append({"id": 10 * i + k, "image_id": i, "category_id": 1, "iscrowd": 0,
                                        "area": (x1 - x0) * (y1 - y0), "segmentation": [poly]})
    (root / "coco" / "instances.json").write_text(json.dumps(coco))
    return root


def test_warp_moves_image_and_mask_together():
    img, mask = _scene(0)
    g = torch.Generator().manual_seed(3)
    a, m = warp(img, mask, g)
    assert a.shape == img.shape and m.shape == mask.shape and not np.array_equal(m, mask)
    assert set(np.unique(m).tolist()) <= {0, 1, 2}  # nearest: no new ids
    red = (a[..., 0] > 150) & (a[..., 2] < 100)
    assert (red & (m == 1)).sum() > 0.8 * red.sum()  # the red box's pixels carry object 1's id


def test_folder_and_coco_sources_give_the_same_clips(still_images):
    folder = load_static(still_images / "folder", frames=3, seed=0)
    coco = load_static(still_images / "coco", frames=3, seed=0)
    assert len(folder) == len(coco) == 3
    for a, b in zip(folder, coco):
        assert a.frames.shape == (3, H, W, 3) and sorted(a.masks) == [0, 1, 2]
        assert np.array_equal(a.masks[0], _scene(int(a.name[2:]))[1])  # frame 0 unwarped
        # COCO ids follow decreasing area: 1 is the larger box (50x30), 2 the smaller (40x30)
        cov = [(b.masks[0] == k).sum() for k in (1, 2)]
        assert abs(cov[0] - 1500) < 150 and abs(cov[1] - 1200) < 120
        assert np.array_equal(a.frames, b.frames)  # same warps from the same seed


def test_bad_static_sources_are_one_line_errors(still_images, tmp_path):
    with pytest.raises(DataError, match="expected images/ and masks/"):
        load_static(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": 3}')
    with pytest.raises(DataError, match="not a COCO instances JSON"):
        load_static(bad)


def test_two_stage_training_static_then_video(still_images, tiny_davis, tmp_path, capsys):
    stage1, stage2 = tmp_path / "static", tmp_path / "video"
    assert main(["vos", "train", "--dataset", "static", "--data-root", str(still_images / "coco"),
                 "--run-dir", str(stage1), *TINY]) == 0
    assert main(["vos", "train", "--data-root", str(tiny_davis), "--init-from", str(stage1),
                 "--run-dir", str(stage2), *TINY[:-2], "--seed", "1"]) == 0
    assert RunDir(stage2).record()["init_from"] == str(stage1)
    capsys.readouterr()
    assert main(["vos", "train", "--data-root", str(tiny_davis), "--init-from", str(stage1), "--backbone",
                 "resnet18", "--run-dir", str(tmp_path / "other"), *TINY]) == 2
    assert "init_from" in capsys.readouterr().err
