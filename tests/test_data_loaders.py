"""Segmentation and DAVIS loaders: shapes, the official label mapping, transforms that keep image
and label aligned, determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from cityscapesscripts.helpers.labels import id2label
from PIL import Image

from workbench.data import io
from workbench.data.davis import list_sequences, load_sequence
from workbench.data.segmentation import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    build_seg_dataset,
    colorize,
    denormalize,
    normalize,
)


def _official_train_id(label_id: int) -> int:
    t = id2label[label_id].trainId
    return 255 if t in (-1, 255) else t


def test_cityscapes_eval_items_and_official_mapping(tiny_cityscapes):
    ds = build_seg_dataset("cityscapes", tiny_cityscapes, "val", train=False)
    assert len(ds) == 4 and ds.num_classes == 19 and ds.ignore_index == 255
    assert ds.class_names[0] == "road" and ds.class_names[18] == "bicycle"
    x, y = ds[0]
    assert x.shape == (3, 64, 128) and x.dtype == torch.float32
    assert y.shape == (64, 128) and y.dtype == torch.int64
    img_path, lbl_path = ds.pairs[0]
    city, seq, frame = ds.image_ids[0].split("_")
    assert img_path.parent.name == city and lbl_path.name == f"{city}_{seq}_{frame}_gtFine_labelIds.png"
    raw = np.asarray(Image.open(lbl_path))
    expected = np.vectorize(_official_train_id)(raw)
    assert np.array_equal(y.numpy(), expected)
    assert set(np.unique(raw[expected == 255])) & {0, 1, 4, 5, 6, 9, 10, 14}   # ignored ids occur
    # the image is the file's pixels, normalised
    assert np.array_equal(denormalize(x), np.asarray(Image.open(img_path).convert("RGB")))


def test_camvid_void_maps_to_ignore(tiny_camvid):
    ds = build_seg_dataset("camvid", tiny_camvid, "train", train=False)
    assert ds.num_classes == 11 and ds.image_ids[0] == ds.pairs[0][0].stem
    raw = np.asarray(Image.open(ds.pairs[0][1]))
    _, y = ds[0]
    assert np.array_equal(y.numpy(), np.where(raw == 11, 255, raw))


def test_normalize_uses_imagenet_statistics():
    image = np.full((2, 3, 3), 255, dtype=np.uint8)
    x = normalize(image)
    for c in range(3):
        assert x[c, 0, 0].item() == pytest.approx((1.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c], rel=1e-5)


def _aligned_tree(tmp: Path) -> Path:
    """A Cityscapes tree whose image colour encodes the label, so alignment can be checked."""
    rng = np.random.default_rng(0)
    ids = np.array([7, 8, 11, 21, 23, 26])
    label = np.kron(rng.choice(ids, size=(6, 10)), np.ones((8, 8), dtype=np.int64)).astype(np.uint8)
    image = np.stack([label * 7, 255 - label * 7, np.full_like(label, 100)], axis=-1)
    stem = "aachen_000000_000019"
    io.write_rgb(tmp / "leftImg8bit" / "train" / "aachen" / f"{stem}_leftImg8bit.png", image)
    io.write_label_png(tmp / "gtFine" / "train" / "aachen" / f"{stem}_gtFine_labelIds.png", label)
    return tmp


def _label_from_image(x: torch.Tensor) -> np.ndarray:
    red = denormalize(x)[..., 0].astype(np.int64)
    ids = np.rint(red / 7).astype(np.int64)
    lut = {7: 0, 8: 1, 11: 2, 21: 8, 23: 10, 26: 13}
    return np.vectorize(lambda v: lut.get(v, -1))(ids)


def _interior(y: np.ndarray) -> np.ndarray:
    """Pixels whose 5x5 neighbourhood has one label (bilinear resampling blends only at edges)."""
    pad = np.pad(y, 2, constant_values=-1)   # pixels at the crop border are not interior
    same = np.ones_like(y, dtype=bool)
    for dy in range(5):
        for dx in range(5):
            same &= pad[dy:dy + y.shape[0], dx:dx + y.shape[1]] == y
    return same & (y != 255)


def test_train_transform_keeps_image_and_label_aligned(tmp_path):
    root = _aligned_tree(tmp_path)
    ds = build_seg_dataset("cityscapes", root, "train", train=True, crop_size=(32, 48), scale_range=(0.75, 1.5))
    torch.manual_seed(0)
    for _ in range(12):
        x, y = ds[0]
        assert x.shape == (3, 32, 48) and y.shape == (32, 48)
        inner = _interior(y.numpy())
        assert inner.sum() > 100
        assert np.array_equal(_label_from_image(x)[inner], y.numpy()[inner])
    # exact alignment without resampling: scale 1, crop and flip only
    ds = build_seg_dataset("cityscapes", root, "train", train=True, crop_size=(40, 64), scale_range=(1, 1))
    for _ in range(6):
        x, y = ds[0]
        assert np.array_equal(_label_from_image(x), y.numpy())


def test_padding_uses_ignore_label_and_mean_colour(tmp_path):
    root = _aligned_tree(tmp_path)
    ds = build_seg_dataset("cityscapes", root, "train", train=True, crop_size=(64, 100),
                           scale_range=(1, 1), flip=False)
    x, y = ds[0]
    assert x.shape == (3, 64, 100)
    assert (y[48:] == 255).all() and (y[:, 80:] == 255).all() and (y[:48, :80] != 255).all()
    assert torch.all(x[:, 48:] == 0)       # 0 after normalisation = the ImageNet mean colour


def test_train_transforms_are_seeded_and_random(tiny_cityscapes):
    ds = build_seg_dataset("cityscapes", tiny_cityscapes, "train", train=True, crop_size=(48, 96))
    torch.manual_seed(5)
    a = [ds[i] for i in range(3)]
    torch.manual_seed(5)
    b = [ds[i] for i in range(3)]
    assert all(torch.equal(p[0], q[0]) and torch.equal(p[1], q[1]) for p, q in zip(a, b))
    c = [ds[0] for _ in range(4)]
    assert any(not torch.equal(c[0][0], o[0]) for o in c[1:])
    loader = torch.utils.data.DataLoader(ds, batch_size=4)
    x, y = next(iter(loader))
    assert x.shape == (4, 3, 48, 96) and y.shape == (4, 48, 96)


def test_eval_transform_is_deterministic(tiny_camvid):
    ds = build_seg_dataset("camvid", tiny_camvid, "val", train=False, crop_size=(32, 32))
    torch.manual_seed(0)
    x1, y1 = ds[1]
    torch.manual_seed(1)
    x2, y2 = ds[1]
    assert torch.equal(x1, x2) and torch.equal(y1, y2) and x1.shape == (3, 64, 128)


def test_colorize_uses_official_colours():
    out = colorize(np.array([[0, 255]]), "cityscapes")
    assert out[0, 0].tolist() == list(id2label[7].color) and out[0, 1].tolist() == [0, 0, 0]


def test_davis_sequences(tiny_davis):
    names = list_sequences(tiny_davis, "val")
    assert len(names) == 2
    seq = load_sequence(tiny_davis, names[0])
    assert seq.frames.shape == (8, 64, 112, 3) and seq.frames.dtype == np.uint8
    assert seq.frame_names == [f"{t:05d}" for t in range(8)] and sorted(seq.masks) == list(range(8))
    first = np.asarray(Image.open(tiny_davis / "Annotations" / "480p" / names[0] / "00000.png"))
    assert np.array_equal(seq.masks[0], first)
    assert seq.num_objects == int(first.max()) and 2 <= seq.num_objects <= 5
    assert all(m.dtype == np.uint8 and m.shape == (64, 112) for m in seq.masks.values())
