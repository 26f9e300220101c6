"""Synthetic generators: determinism, the real on-disk conventions, and a benchmark that needs
shape and context rather than colour."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from cityscapesscripts.helpers.csHelpers import getCsFileInfo
from cityscapesscripts.helpers.labels import id2label
from PIL import Image

from workbench.cli import main
from workbench.data.synth import generate, street_scene
from workbench.data.synth_video import render_video
from workbench.errors import ConfigError


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("kind", ["cityscapes", "camvid", "davis"])
def test_same_seed_gives_byte_identical_files(tmp_path, kind):
    opts = dict(count=2, val_count=1, size=(40, 72), frames=3)
    a = _digest(generate(kind, tmp_path / "a", seed=3, **opts))
    b = _digest(generate(kind, tmp_path / "b", seed=3, **opts))
    c = _digest(generate(kind, tmp_path / "c", seed=4, **opts))
    assert len(a) > 3 and a == b
    images = [k for k in a if k.endswith((".jpg", "_leftImg8bit.png")) or k.startswith("train/")]
    assert images and all(a[k] != c[k] for k in images)


def test_larger_count_extends_without_changing_existing_images(tmp_path):
    small = _digest(generate("cityscapes", tmp_path / "s", count=2, val_count=1, size=(40, 72)))
    large = _digest(generate("cityscapes", tmp_path / "l", count=4, val_count=1, size=(40, 72)))
    shared = [k for k in small if k != "synth.json"]
    assert all(small[k] == large[k] for k in shared)
    assert len(large) == len(small) + 4


def test_cityscapes_layout_follows_official_conventions(tiny_cityscapes):
    images = sorted((tiny_cityscapes / "leftImg8bit" / "train").glob("*/*_leftImg8bit.png"))
    assert len(images) == 8
    assert len(list((tiny_cityscapes / "leftImg8bit" / "val").glob("*/*.png"))) == 4
    ids = set()
    for img in images:
        info = getCsFileInfo(img.name)           # the official file-name parser
        assert info.city == img.parent.name and info.type == "leftImg8bit" and info.ext == "png"
        assert len(info.sequenceNb) == 6 and len(info.frameNb) == 6
        label = tiny_cityscapes / "gtFine" / "train" / info.city / \
            f"{info.city}_{info.sequenceNb}_{info.frameNb}_gtFine_labelIds.png"
        lab = Image.open(label)
        assert lab.mode == "L" and lab.size == Image.open(img).size == (128, 64)
        assert Image.open(img).mode == "RGB"
        ids |= set(np.unique(np.asarray(lab)).tolist())
    assert ids <= set(id2label)                                  # only official labelIds
    assert {id2label[i].trainId for i in ids} & {255}            # some ignored ids occur ...
    assert len([i for i in ids if id2label[i].trainId != 255]) >= 12   # ... and most classes


def test_camvid_layout(tiny_camvid):
    for split, n in (("train", 8), ("val", 4), ("test", 4)):
        images = sorted((tiny_camvid / split).glob("*.png"))
        annots = sorted((tiny_camvid / f"{split}annot").glob("*.png"))
        assert [p.name for p in images] == [p.name for p in annots] and len(images) == n
    lab = Image.open(annots[0])
    assert lab.mode == "L" and np.asarray(lab).max() <= 11


def test_davis_layout_and_palette(tiny_davis):
    sets = tiny_davis / "ImageSets" / "2017"
    train = sets.joinpath("train.txt").read_text().split()
    val = sets.joinpath("val.txt").read_text().split()
    assert len(train) == 3 and len(val) == 2 and not set(train) & set(val)
    for name in train + val:
        frames = sorted((tiny_davis / "JPEGImages" / "480p" / name).glob("*.jpg"))
        annots = sorted((tiny_davis / "Annotations" / "480p" / name).glob("*.png"))
        assert [p.stem for p in frames] == [f"{t:05d}" for t in range(8)] == [p.stem for p in annots]
        ann = Image.open(annots[0])
        assert ann.mode == "P" and ann.size == Image.open(frames[0]).size == (112, 64)
        # the DAVIS colour map: 1 = dark red, 2 = dark green, 3 = olive, 4 = navy
        assert ann.getpalette()[:15] == [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0, 0, 0, 128]
        k = int(np.asarray(ann).max())
        assert 2 <= k <= 5 and set(np.unique(np.asarray(ann))) == set(range(k + 1))


def test_every_cityscapes_class_appears_in_a_small_set():
    seen = set()
    for i in range(12):
        _, label = street_scene(0, "cityscapes", "train", i, (128, 256))
        seen |= {id2label[int(v)].trainId for v in np.unique(label)}
    assert set(range(19)) <= seen


def test_classes_are_not_separable_by_colour():
    """Road is brighter than the sidewalk in some scenes and darker in others; the same holds for
    cars against buses and trucks: colour alone cannot tell them apart."""
    road_brighter, vehicle_brighter = set(), set()
    for i in range(24):
        image, label = street_scene(1, "cityscapes", "train", i, (96, 192))
        lum = image.astype(np.float32).mean(-1)
        road, walk = lum[label == 7], lum[label == 8]
        if road.size > 50 and walk.size > 50:
            road_brighter.add(bool(road.mean() > walk.mean()))
        car, big = lum[label == 26], lum[(label == 27) | (label == 28)]
        if car.size > 50 and big.size > 50:
            vehicle_brighter.add(bool(car.mean() > big.mean()))
    assert road_brighter == {True, False}
    assert vehicle_brighter == {True, False}


def test_davis_objects_leave_and_reenter_and_are_visible_first():
    reentered = 0
    for seed in range(6):
        _, masks = render_video(np.random.default_rng(seed), 10, 48, 80)
        k = int(masks[0].max())
        for obj in range(1, k + 1):
            area = (masks == obj).sum(axis=(1, 2))
            assert area[0] > 0                               # every object is in the first frame
            gone = np.nonzero(area == 0)[0]
            if gone.size and area[gone[-1] + 1:].any():
                reentered += 1
    assert reentered >= 1


def test_cli_synth_and_bad_arguments(tmp_path, capsys):
    assert main(["data", "synth", "camvid", "--out", str(tmp_path / "cv"), "--count", "2",
                 "--size", "32x48", "--seed", "1"]) == 0
    assert len(list((tmp_path / "cv" / "trainannot").glob("*.png"))) == 2
    assert main(["data", "synth", "davis", "--out", str(tmp_path / "d"), "--count", "0"]) == 2
    assert "--count" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["data", "synth", "cityscapes", "--size", "big"])
    with pytest.raises(ConfigError):
        generate("kitti", tmp_path / "k", count=1)


def test_worker_processes_write_the_same_files(tmp_path):
    opts = dict(count=3, val_count=1, size=(32, 64), seed=2)
    one = _digest(generate("camvid", tmp_path / "one", **opts))
    two = _digest(generate("camvid", tmp_path / "two", workers=2, **opts))
    assert one == two and len(one) == 2 * (3 + 1 + 1) + 1
