"""YouTube-VOS scoring: an object counts from the frame after its first annotated one, late
entrants included, every later annotated frame (the last too); numbers checked by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from workbench.cli import main
from workbench.data.io import write_indexed_png
from workbench.errors import DataError
from workbench.metrics.davis import boundary_f
from workbench.metrics.youtube_vos import evaluate_youtube_vos, scored_frames

FRAMES = ["00000", "00005", "00010", "00015"]


def box(y0: int, y1: int, x0: int, x1: int, value: int, mask: np.ndarray) -> np.ndarray:
    mask[y0:y1, x0:x1] = value
    return mask


def make_split(root: Path) -> dict[str, np.ndarray]:
    """One video of 4 annotated frames: object 1 from 00000, object 2 enters at 00010."""
    gts = {}
    for t, name in enumerate(FRAMES):
        m = box(4, 12, 4, 12, 1, np.zeros((32, 32), np.uint8))
        if t >= 2:
            box(16, 28, 16, 28, 2, m)
        gts[name] = m
        write_indexed_png(root / "valid" / "Annotations" / "v1" / f"{name}.png", m)
    meta = {"videos": {"v1": {"objects": {"1": {"category": "a", "frames": FRAMES},
                                          "2": {"category": "b", "frames": FRAMES[2:]}}}}}
    (root / "valid" / "meta.json").write_text(json.dumps(meta))
    return gts


def test_scored_frames_start_after_each_objects_first_frame():
    assert scored_frames(FRAMES, {1: "00000", 2: "00010"}) == {1: FRAMES[1:], 2: ["00015"]}


def test_late_object_scored_from_its_first_frame_by_hand(tmp_path, capsys):
    gts = make_split(tmp_path / "yt")
    res = tmp_path / "res" / "v1"
    # object 1: perfect at 00005, half its box at 00010 (IoU 0.5), shifted at 00015; object 2 perfect
    # at 00015. Frames before object 2's entry would be its "absent in both" 1.0s: they must not count.
    preds = {"00005": gts["00005"].copy(),
             "00010": box(4, 12, 4, 8, 1, box(16, 28, 16, 28, 2, np.zeros((32, 32), np.uint8))),
             "00015": box(6, 14, 4, 12, 1, box(16, 28, 16, 28, 2, np.zeros((32, 32), np.uint8)))}
    for name, p in preds.items():
        write_indexed_png(res / f"{name}.png", p)
    out = evaluate_youtube_vos(tmp_path / "yt", "valid", tmp_path / "res")
    o1, o2 = out["objects"]["v1_1"], out["objects"]["v1_2"]
    # object 1: J = 1, 32/64, and rows 6..13 vs 4..11 overlap 6 of 10 rows: 48/80
    assert o1["frames"] == 3 and o1["J_mean"] == pytest.approx((1 + 0.5 + 48 / 80) / 3)
    f1 = [1.0, boundary_f(preds["00010"] == 1, gts["00010"] == 1), boundary_f(preds["00015"] == 1, gts["00015"] == 1)]
    assert o1["F_mean"] == pytest.approx(np.mean(f1)) and f1[1] < 1
    assert o2["frames"] == 1 and o2["J_mean"] == 1.0 and o2["first_frame"] == "00010"
    assert out["global"]["J_mean"] == pytest.approx((o1["J_mean"] + 1.0) / 2)
    assert out["global"]["J&F"] == pytest.approx((out["global"]["J_mean"] + out["global"]["F_mean"]) / 2)
    # the first frame needs no result; the CLI scores the same tree
    assert main(["eval", "vos", "--layout", "youtube-vos", "--root", str(tmp_path / "yt"), "--split", "valid",
                 "--results", str(tmp_path / "res"), "--json", str(tmp_path / "o.json")]) == 0
    assert json.loads((tmp_path / "o.json").read_text())["global"]["J_mean"] == pytest.approx(out["global"]["J_mean"])


def test_missing_frames_and_unknown_ids_are_errors(tmp_path):
    make_split(tmp_path / "yt")
    res = tmp_path / "res" / "v1"
    write_indexed_png(res / "00005.png", np.zeros((32, 32), np.uint8))
    with pytest.raises(DataError, match="2 of 3 result frames missing: 00010, 00015"):
        evaluate_youtube_vos(tmp_path / "yt", "valid", tmp_path / "res")
    for name in FRAMES[2:]:
        write_indexed_png(res / f"{name}.png", np.full((32, 32), 3, np.uint8))
    with pytest.raises(DataError, match="object id 3 in the result"):
        evaluate_youtube_vos(tmp_path / "yt", "valid", tmp_path / "res")
    with pytest.raises(DataError, match="no video 'nope'"):
        evaluate_youtube_vos(tmp_path / "yt", "valid", tmp_path / "res", videos=["nope"])
