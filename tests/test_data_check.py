"""`workbench data check` and the loaders on broken trees: one clear error naming the file."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench.cli import main
from workbench.data import io
from workbench.data.check import check_dataset
from workbench.data.davis import list_sequences, load_sequence
from workbench.data.segmentation import build_seg_dataset
from workbench.errors import DataError


def _copy(src: Path, tmp: Path) -> Path:
    return Path(shutil.copytree(src, tmp / src.name))


def _first_cs_pair(root: Path, split: str = "train") -> tuple[Path, Path]:
    img = sorted((root / "leftImg8bit" / split).glob("*/*_leftImg8bit.png"))[0]
    lbl = root / "gtFine" / split / img.parent.name / img.name.replace("_leftImg8bit.png", "_gtFine_labelIds.png")
    return img, lbl


def _cli_error(capsys, *args: str) -> str:
    assert main(["data", "check", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_good_trees_pass_with_summary(tiny_cityscapes, tiny_camvid, tiny_davis, capsys):
    summary = check_dataset("cityscapes", tiny_cityscapes)
    assert summary["splits"]["train"]["images"] == 8 and summary["splits"]["val"]["images"] == 4
    assert summary["splits"]["train"]["sizes"] == {"64x128": 8}
    assert main(["data", "check", "camvid", "--root", str(tiny_camvid), "--split", "test"]) == 0
    out = capsys.readouterr().out
    assert "test: 4 images" in out and "/11 classes present" in out
    assert main(["data", "check", "davis", "--root", str(tiny_davis)]) == 0
    out = capsys.readouterr().out
    assert "train: 3 sequences, 24 frames (24 annotated)" in out and "val: 2 sequences" in out


def test_missing_label(tiny_cityscapes, tmp_path, capsys):
    root = _copy(tiny_cityscapes, tmp_path)
    _, lbl = _first_cs_pair(root)
    lbl.unlink()
    err = _cli_error(capsys, "cityscapes", "--root", str(root))
    assert str(lbl) in err and "missing label" in err
    with pytest.raises(DataError, match="missing label"):
        build_seg_dataset("cityscapes", root, "train", train=True)


def test_missing_image(tiny_camvid, tmp_path, capsys):
    root = _copy(tiny_camvid, tmp_path)
    img = sorted((root / "val").glob("*.png"))[1]
    img.unlink()
    err = _cli_error(capsys, "camvid", "--root", str(root), "--split", "val")
    assert str(img) in err and "missing image" in err


def test_size_mismatch(tiny_cityscapes, tmp_path, capsys):
    root = _copy(tiny_cityscapes, tmp_path)
    _, lbl = _first_cs_pair(root, "val")
    io.write_label_png(lbl, np.full((32, 64), 7, np.uint8))
    err = _cli_error(capsys, "cityscapes", "--root", str(root), "--split", "val")
    assert str(lbl) in err and "32x64 does not match" in err
    ds = build_seg_dataset("cityscapes", root, "val", train=False)   # lazy: the names are fine
    with pytest.raises(DataError, match="does not match"):
        ds[0]


@pytest.mark.parametrize("kind,bad", [("cityscapes", 40), ("camvid", 12)])
def test_unknown_label_id(kind, bad, tiny_cityscapes, tiny_camvid, tmp_path, capsys):
    root = _copy(tiny_cityscapes if kind == "cityscapes" else tiny_camvid, tmp_path)
    lbl = build_seg_dataset(kind, root, "train", train=False).pairs[2][1]
    label = np.asarray(Image.open(lbl)).copy()
    label[5, 5] = bad
    io.write_label_png(lbl, label)
    err = _cli_error(capsys, kind, "--root", str(root), "--split", "train")
    assert str(lbl) in err and f"unknown label id(s) [{bad}]" in err


def test_rgb_label_where_id_map_required(tiny_cityscapes, tmp_path, capsys):
    root = _copy(tiny_cityscapes, tmp_path)
    _, lbl = _first_cs_pair(root)
    Image.open(lbl).convert("RGB").save(lbl)
    err = _cli_error(capsys, "cityscapes", "--root", str(root), "--split", "train")
    assert str(lbl) in err and "mode RGB" in err


def test_rgb_annotation_where_indexed_png_required(tiny_davis, tmp_path, capsys):
    root = _copy(tiny_davis, tmp_path)
    name = list_sequences(root, "val")[0]
    ann = root / "Annotations" / "480p" / name / "00003.png"
    Image.open(ann).convert("RGB").save(ann)
    err = _cli_error(capsys, "davis", "--root", str(root), "--split", "val")
    assert str(ann) in err and "palette-indexed" in err
    with pytest.raises(DataError, match="palette-indexed"):
        load_sequence(root, name)


def test_empty_and_missing_split_file(tiny_davis, tmp_path, capsys):
    root = _copy(tiny_davis, tmp_path)
    split_file = root / "ImageSets" / "2017" / "val.txt"
    split_file.write_text("\n")
    err = _cli_error(capsys, "davis", "--root", str(root), "--split", "val")
    assert str(split_file) in err and "empty split file" in err
    split_file.unlink()
    err = _cli_error(capsys, "davis", "--root", str(root), "--split", "val")
    assert str(split_file) in err and "missing split file" in err


def test_empty_and_missing_split_folder(tiny_camvid, tmp_path, capsys):
    root = _copy(tiny_camvid, tmp_path)
    for p in (root / "test").iterdir():
        p.unlink()
    err = _cli_error(capsys, "camvid", "--root", str(root), "--split", "test")
    assert str(root / "test") in err and "empty split" in err
    err = _cli_error(capsys, "camvid", "--root", str(root), "--split", "extra")
    assert str(root / "extra") in err and "missing split folder" in err


def test_unreadable_image(tiny_cityscapes, tiny_davis, tmp_path, capsys):
    root = _copy(tiny_cityscapes, tmp_path)
    img, _ = _first_cs_pair(root)
    img.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    err = _cli_error(capsys, "cityscapes", "--root", str(root), "--split", "train")
    assert str(img) in err and "unreadable" in err
    droot = _copy(tiny_davis, tmp_path)
    name = list_sequences(droot, "train")[1]
    frame = droot / "JPEGImages" / "480p" / name / "00002.jpg"
    frame.write_bytes(frame.read_bytes()[:40])
    err = _cli_error(capsys, "davis", "--root", str(droot), "--split", "train")
    assert str(frame) in err and "unreadable" in err


def test_davis_annotation_problems(tiny_davis, tmp_path):
    root = _copy(tiny_davis, tmp_path)
    name = list_sequences(root, "train")[0]
    ann_dir = root / "Annotations" / "480p" / name
    io.write_indexed_png(ann_dir / "00004.png", np.zeros((10, 10), np.uint8))
    with pytest.raises(DataError, match="does not match frame size 64x112"):
        check_dataset("davis", root, "train")
    (ann_dir / "00004.png").unlink()
    (ann_dir / "00000.png").unlink()
    with pytest.raises(DataError, match="missing first-frame annotation"):
        load_sequence(root, name)
    io.write_indexed_png(ann_dir / "00099.png", np.zeros((64, 112), np.uint8))
    with pytest.raises(DataError, match="annotation without a frame"):
        load_sequence(root, name)


def test_missing_root(tmp_path, capsys):
    err = _cli_error(capsys, "cityscapes", "--root", str(tmp_path / "nowhere"))
    assert "dataset root not found" in err
