"""DAVIS 2017 J and F: agreement with the `vos-benchmark` package, hand-made cases for the
toolkit's rules (recall, decay, empty union, boundary tolerance, void, object count, missing
frames), the first-frame-copy baseline and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from workbench.cli import main
from workbench.data import io
from workbench.errors import DataError
from workbench.metrics import davis
from workbench.metrics.baselines import copy_first_frame
from workbench.metrics.davis import evaluate_vos


def _write(root: Path, sequences: dict[str, list[np.ndarray]], split: str = "val") -> Path:
    """A DAVIS tree: Annotations/480p/{seq}/{i:05d}.png (palette) + ImageSets/2017/{split}.txt."""
    for seq, masks in sequences.items():
        for i, m in enumerate(masks):
            io.write_indexed_png(root / "Annotations" / "480p" / seq / f"{i:05d}.png", m)
    split_file = root / "ImageSets" / "2017" / f"{split}.txt"
    split_file.parent.mkdir(parents=True, exist_ok=True)
    split_file.write_text("".join(f"{s}\n" for s in sequences))
    return root


def _results(out: Path, sequences: dict[str, list[np.ndarray]]) -> Path:
    for seq, masks in sequences.items():
        for i, m in enumerate(masks):
            io.write_indexed_png(out / seq / f"{i:05d}.png", m)
    return out


def _ellipse(h, w, cy, cx, ry, rx) -> np.ndarray:
    y, x = np.ogrid[:h, :w]
    return ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1


def _random_scene(rng, h=96, w=128, frames=9):
    """3 moving objects (object 3 leaves in the last frames) with a void band around object 1, and
    a noisy prediction: shifted objects, flipped pixels, a missed object, a spurious blob."""
    gts, preds = [], []
    for t in range(frames):
        gt = np.zeros((h, w), np.uint8)
        pred = np.zeros((h, w), np.uint8)
        for obj, (cy, cx, ry, rx) in enumerate([(30, 30, 14, 20), (60, 80, 18, 12), (25, 100, 8, 10)], 1):
            if obj == 3 and t >= frames - 3:
                continue
            cy, cx = cy + 2 * t * (obj - 2), cx + 3 * t
            shape = _ellipse(h, w, cy, cx, ry, rx)
            if obj == 1:
                gt[ndimage.binary_dilation(shape, iterations=2)] = 255
            gt[shape] = obj
            if not (obj == 2 and t == 4):
                dy, dx = rng.integers(-4, 5, size=2)
                pred[_ellipse(h, w, cy + dy, cx + dx, ry + rng.integers(-2, 3), rx)] = obj
        noise = rng.random((h, w)) < 0.002
        pred[noise] = rng.integers(0, 4, size=int(noise.sum()))
        if t == 5:
            pred[80:90, 10:25] = 1
        gts.append(gt)
        preds.append(pred)
    return gts, preds


def test_means_match_vos_benchmark(tmp_path):
    from vos_benchmark.benchmark import VideoEvaluator

    rng = np.random.default_rng(0)
    gt_seqs, res_seqs = {}, {}
    for seq in ("alpha", "beta"):
        gt_seqs[seq], res_seqs[seq] = _random_scene(rng)
    root = _write(tmp_path / "davis", gt_seqs)
    res = _results(tmp_path / "res", res_seqs)
    ours = evaluate_vos(root, "val", res)

    evaluator = VideoEvaluator(str(root / "Annotations" / "480p"), str(res))
    ref_j, ref_f = [], []
    for seq in gt_seqs:
        _, iou, boundary_f = evaluator(seq)
        for k in (1, 2, 3):
            assert ours["objects"][f"{seq}_{k}"]["J_mean"] == pytest.approx(iou[k] / 100, abs=1e-12)
            assert ours["objects"][f"{seq}_{k}"]["F_mean"] == pytest.approx(boundary_f[k] / 100, abs=1e-12)
            ref_j.append(iou[k] / 100)
            ref_f.append(boundary_f[k] / 100)
    assert ours["global"]["J_mean"] == pytest.approx(np.mean(ref_j), abs=1e-12)
    assert ours["global"]["F_mean"] == pytest.approx(np.mean(ref_f), abs=1e-12)
    assert ours["global"]["J&F"] == pytest.approx((np.mean(ref_j) + np.mean(ref_f)) / 2, abs=1e-12)
    assert 0.3 < ours["global"]["F_mean"] < 0.95     # a non-trivial case
    assert set(ours["sequences"]) == {"alpha", "beta"} and ours["sequences"]["alpha"]["frames"] == 7


def test_seg2bmap_hand_case():
    mask = np.zeros((5, 5), bool)
    mask[1:3, 1:3] = True
    expected = np.array([[1, 1, 1, 0, 0],
                         [1, 0, 1, 0, 0],
                         [1, 1, 1, 0, 0],
                         [0, 0, 0, 0, 0],
                         [0, 0, 0, 0, 0]], bool)
    assert np.array_equal(davis.seg2bmap(mask), expected)


def test_dilation_is_a_disk_and_radius_follows_the_diagonal():
    rng = np.random.default_rng(2)
    mask = rng.random((40, 50)) < 0.01
    for r in (1, 2, 5):
        ref = ndimage.binary_dilation(mask, structure=davis.disk(r))
        assert np.array_equal(davis.dilate_disk(mask, r), ref)
    assert davis.disk(2).sum() == 13          # x^2 + y^2 <= 4 on the integer grid
    assert davis.boundary_radius((480, 854)) == 8      # ceil(0.008 * 979.6)
    assert davis.boundary_radius((120, 160)) == 2      # ceil(0.008 * 200)


@pytest.mark.parametrize(("shift", "perfect"), [((0, 2), True), ((2, 0), True), ((1, 1), True),
                                                 ((0, 3), False), ((2, 2), False)])
def test_boundary_tolerance(shift, perfect):
    """120x160 -> tolerance 2 px: a shift within the disk scores F = 1 (while J < 1); a shift of
    (2, 2) is 2.83 px, outside the disk though inside a 5x5 square."""
    gt = np.zeros((120, 160), bool)
    gt[40:80, 50:110] = True
    pred = np.roll(gt, shift, axis=(0, 1))
    f = davis.boundary_f(pred, gt)
    assert (f == 1.0) == perfect
    assert f > 0.3
    assert davis.region_j(pred.astype(np.uint8), gt.astype(np.uint8), 1)[0] < 1


def _square_sequence(keep_rows: list[int], size=(40, 40)):
    """One 10x10 object; the prediction keeps the first m rows, so J = m / 10 exactly."""
    gt = np.zeros(size, np.uint8)
    gt[10:20, 10:20] = 1
    preds = []
    for m in [10, *keep_rows, 10]:
        p = np.zeros(size, np.uint8)
        p[10:10 + m, 10:20] = 1
        preds.append(p)
    return [gt] * len(preds), preds


def test_recall_and_decay_hand_computed(tmp_path):
    gts, preds = _square_sequence([9, 8, 6, 5, 3, 2, 1, 0])
    root = _write(tmp_path / "davis", {"sq": gts})
    result = evaluate_vos(root, "val", _results(tmp_path / "res", {"sq": preds}))
    obj = result["objects"]["sq_1"]
    assert obj["J_mean"] == pytest.approx(3.4 / 8)
    assert obj["J_recall"] == pytest.approx(3 / 8)       # 0.5 itself is not a success
    # 8 frames, bin edges round(linspace(1, 8, 5)) - 1 = 0, 2, 4, 5, 7:
    # first bin frames 0..2 (0.9, 0.8, 0.6), last bin frames 5..7 (0.2, 0.1, 0.0)
    assert obj["J_decay"] == pytest.approx((0.9 + 0.8 + 0.6) / 3 - 0.1)
    assert result["global"]["J_mean"] == obj["J_mean"]
    assert obj["F_recall"] == 7 / 8                        # only the empty prediction fails F


def test_empty_union_void_and_later_ids(tmp_path):
    first = np.zeros((40, 40), np.uint8)
    first[5:15, 5:15] = 1
    first[20:30, 20:30] = 2
    first[0, :] = 255                                     # void is not an object: K = 2
    later = np.zeros((40, 40), np.uint8)
    later[18:32, 18:32] = 255                             # void ring around object 2
    later[20:30, 20:30] = 2
    later[0:3, 0:3] = 7                                   # an id the first frame lacks: background
    pred = np.zeros((40, 40), np.uint8)
    pred[18:32, 18:32] = 2                                # covers the void ring too
    root = _write(tmp_path / "davis", {"s": [first, later, later, first]})
    result = evaluate_vos(root, "val", _results(tmp_path / "res", {"s": [first, pred, pred, first]}))
    assert result["sequences"]["s"]["num_objects"] == 2
    o1, o2 = result["objects"]["s_1"], result["objects"]["s_2"]
    assert o1["J_mean"] == 1.0 and o1["F_mean"] == 1.0  # absent from GT and prediction
    assert o2["J_mean"] == pytest.approx(100 / 196)      # void counted as background
    assert o2["F_mean"] < 1


def test_errors_too_many_objects_missing_frames_sizes(tmp_path):
    gts, preds = _square_sequence([9, 8, 7])
    root = _write(tmp_path / "davis", {"sq": gts})
    res = _results(tmp_path / "res", {"sq": preds})
    (res / "sq" / "00000.png").unlink()                   # first and last frames are not read
    (res / "sq" / "00004.png").unlink()
    assert evaluate_vos(root, "val", res)["objects"]["sq_1"]["J_mean"] == pytest.approx(0.8)
    (res / "sq" / "00002.png").unlink()
    with pytest.raises(DataError, match="1 of 3 result frames missing: 00002.png"):
        evaluate_vos(root, "val", res)
    bad = preds[2].copy()
    bad[0, 0] = 2
    io.write_indexed_png(res / "sq" / "00002.png", bad)
    with pytest.raises(DataError, match=r"00002.png: object id 2 in the result.*1 object"):
        evaluate_vos(root, "val", res)
    io.write_indexed_png(res / "sq" / "00002.png", np.zeros((40, 41), np.uint8))
    with pytest.raises(DataError, match="00002.png: result size 41x40"):
        evaluate_vos(root, "val", res)
    io.write_indexed_png(res / "sq" / "00002.png", preds[2])
    with pytest.raises(DataError, match="no results for sequence 'other'"):
        _write(root, {"sq": gts, "other": gts}, split="both")
        evaluate_vos(root, "both", res)
    with pytest.raises(DataError, match="split file"):
        evaluate_vos(root, "test", res)


def test_copy_first_frame_baseline_and_cli(tmp_path, capsys):
    rng = np.random.default_rng(5)
    moving, _ = _random_scene(rng, frames=6)
    static = [moving[0]] * 5
    root = _write(tmp_path / "davis", {"moving": moving, "static": static})
    out = tmp_path / "copy"
    assert main(["baseline", "copy-first-frame", "--root", str(root), "--split", "val",
                 "--out", str(out)]) == 0
    names = sorted(p.name for p in (out / "moving").glob("*.png"))
    assert names == [f"{i:05d}.png" for i in range(6)]
    copied = io.read_indexed_png(out / "moving" / "00003.png")
    assert np.array_equal(copied, np.where(moving[0] == 255, 0, moving[0]))

    js = tmp_path / "vos.json"
    assert main(["eval", "vos", "--root", str(root), "--split", "val", "--results", str(out),
                 "--json", str(js)]) == 0
    printed = capsys.readouterr().out
    record = json.loads(js.read_text())
    assert record == json.loads(json.dumps(evaluate_vos(root, "val", copy_first_frame(root, "val", out))))
    assert record["sequences"]["static"]["J&F"] == 1.0
    assert record["sequences"]["moving"]["J&F"] < 0.9
    assert {"moving_1", "moving_2", "moving_3", "static_3"} <= set(record["objects"])
    assert "global" in printed and "moving_2" in printed

    (out / "static" / "00002.png").unlink()
    assert main(["eval", "vos", "--root", str(root), "--split", "val", "--results", str(out)]) == 2
    assert "00002.png" in capsys.readouterr().err
