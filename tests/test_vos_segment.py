"""Segmenting a DAVIS split and a video through the CLI: files, formats, records, errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from workbench.cli import main
from workbench.data.davis import list_sequences, load_sequence
from workbench.data.io import write_indexed_png, write_rgb
from workbench.runs import RunDir
from workbench.vos.model import ModelSpec, OVSNet


@pytest.fixture(scope="module")
def untrained_model(tmp_path_factory):
    """A run directory holding an untrained OVS-Net checkpoint (formats, not accuracy)."""
    torch.manual_seed(0)
    spec = ModelSpec()
    rd = RunDir(tmp_path_factory.mktemp("vos_model"))
    rd.save_checkpoint({"model": OVSNet(spec).state_dict(), "epoch": 0,
                        "spec": dataclasses.asdict(spec)})
    return rd.path


def test_segment_split_all_methods(tiny_davis, untrained_model, tmp_path, capsys):
    out = tmp_path / "seg"
    rc = main(["vos", "segment", "--run-dir", str(untrained_model), "--data-root", str(tiny_davis),
               "--split", "val", "--out", str(out), "--method", "all", "--device", "cpu", "--threads", "1",
               "--tracker-set", "score_thresh=0.0"])
    assert rc == 0
    rec = RunDir(out).record()
    assert rec["kind"] == "vos_segment" and rec["status"] == "finished"
    for method in ("onepass", "offline", "copy"):
        res = rec["methods_results"][method]
        assert 0.0 <= res["jf"] <= 1.0 and res["fps"] > 0
        for seq in list_sequences(tiny_davis, "val"):
            s = load_sequence(tiny_davis, seq)
            files = sorted((out / method / seq).glob("*.png"))
            assert [f.stem for f in files] == s.frame_names
            for f in files:
                img = Image.open(f)
                assert img.mode == "P" and img.size == (s.frames.shape[2], s.frames.shape[1])
                ids = set(np.unique(np.asarray(img)).tolist())
                assert ids <= set(range(s.num_objects + 1))
            first = np.asarray(Image.open(files[0]))
            assert np.array_equal(first, np.where(s.masks[0] == 255, 0, s.masks[0]))
    # the copy baseline written here scores like the metrics helper's own copy baseline
    from workbench.metrics.baselines import copy_first_frame
    from workbench.metrics.davis import evaluate_vos

    ref = evaluate_vos(tiny_davis, "val", copy_first_frame(tiny_davis, "val", tmp_path / "ref"))
    assert rec["methods_results"]["copy"]["jf"] == pytest.approx(ref["global"]["J&F"])
    assert rec["metrics"]["jf"] == rec["methods_results"]["onepass"]["jf"]
    # and `workbench eval vos` reads our PNGs
    assert main(["eval", "vos", "--root", str(tiny_davis), "--split", "val",
                 "--results", str(out / "onepass")]) == 0


def _video(tmp_path, t=4, h=48, w=80):
    rng = np.random.default_rng(1)
    for i in range(t):
        write_rgb(tmp_path / "frames" / f"{i:05d}.jpg", (rng.random((h, w, 3)) * 255).astype(np.uint8))
    return tmp_path / "frames"


def test_segment_video_folder(untrained_model, tmp_path):
    frames = _video(tmp_path)
    m = np.zeros((48, 80), np.uint8)
    m[10:30, 10:30] = 1
    write_indexed_png(tmp_path / "first.png", m)
    out = tmp_path / "out"
    assert main(["vos", "segment", "--run-dir", str(untrained_model), "--video", str(frames),
                 "--first-mask", str(tmp_path / "first.png"), "--out", str(out),
                 "--device", "cpu", "--threads", "1"]) == 0
    files = sorted((out / "onepass" / "frames").glob("*.png"))
    assert len(files) == 4 and Image.open(files[1]).size == (80, 48)
    rec = RunDir(out).record()
    assert rec["metrics"]["fps"] > 0 and "jf" not in rec["metrics"]


def test_segment_video_start_and_max_frames(untrained_model, tmp_path, capsys):
    """--start 1 --max-frames 2 segments frames 00001-00002 (the mask is frame 1's); an RGB mask
    in its own colours is read; a start past the end is one error line."""
    frames = _video(tmp_path, t=5)
    rgb = np.zeros((48, 80, 3), np.uint8)
    rgb[10:30, 10:30] = (255, 160, 0)
    Image.fromarray(rgb, mode="RGB").save(tmp_path / "first.png")
    out = tmp_path / "out"
    assert main(["vos", "segment", "--run-dir", str(untrained_model), "--video", str(frames), "--first-mask",
                 str(tmp_path / "first.png"), "--out", str(out), "--device", "cpu", "--threads", "1",
                 "--method", "copy", "--start", "1", "--max-frames", "2"]) == 0
    files = sorted(p.name for p in (out / "copy" / "frames").glob("*.png"))
    assert files == ["00001.png", "00002.png"]
    first = np.asarray(Image.open(out / "copy" / "frames" / "00001.png"))
    assert np.array_equal(first, (rgb.any(axis=2)).astype(np.uint8))  # the colour became object 1
    # --overlay: an mp4 of the frames with the masks blended in the DAVIS colours
    import imageio.v2 as imageio

    assert main(["vos", "segment", "--video", str(frames), "--first-mask", str(tmp_path / "first.png"),
                 "--out", str(tmp_path / "ov"), "--method", "copy", "--overlay"]) == 0
    movie = imageio.mimread(tmp_path / "ov" / "copy" / "frames.mp4")
    assert len(movie) == 5 and movie[0].shape == (48, 80, 3)
    inside, outside = movie[2][12:28, 12:28].astype(float), movie[2][35:45, 60:75].astype(float)
    raw = np.asarray(Image.open(frames / "00002.jpg")).astype(float)
    assert np.abs(inside - raw[12:28, 12:28]).mean() > 3 * np.abs(outside - raw[35:45, 60:75]).mean()
    capsys.readouterr()
    assert main(["vos", "segment", "--video", str(frames), "--first-mask", str(tmp_path / "first.png"),
                 "--out", str(tmp_path / "late"), "--method", "copy", "--start", "9"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {frames}: start frame 9") and "\n" not in err


def test_one_pass_streams_frames_one_at_a_time(untrained_model, tmp_path, monkeypatch):
    """A video is decoded as it is segmented: when the first labels come out, only the frames up to
    them have been read (memory bounded by a frame, whatever the length)."""
    from workbench.vos import segment as seg
    from workbench.vos import video_io

    frames = _video(tmp_path, t=8)
    m = np.zeros((48, 80), np.uint8)
    m[10:30, 10:30] = 1
    write_indexed_png(tmp_path / "first.png", m)
    reads = []
    real = video_io.read_rgb
    monkeypatch.setattr(video_io, "read_rgb", lambda path: reads.append(path) or real(path))
    cfg = seg.SegmentConfig(model=str(untrained_model), video=str(frames), first_mask=str(tmp_path / "first.png"),
                            device="cpu")
    (video,) = seg.load_videos(cfg)
    assert len(reads) == 1  # the first frame (its size checks the mask)
    stream = seg.label_stream("onepass", seg.load_model(cfg.model), video, seg.TrackerConfig(), torch.device("cpu"))
    names = [next(stream)[0], next(stream)[0], next(stream)[0]]
    assert names == ["00000", "00001", "00002"] and len(reads) == 1 + 3
    assert len(list(stream)) == 5 and len(reads) == 1 + 8


def test_objects_entering_later_are_added_from_their_frame(untrained_model, tmp_path, capsys):
    """--masks DIR: object 2 is annotated at frame 3 (YouTube-VOS semantics). One-pass and copy
    output it from frame 3 on (its given pixels at frame 3), never before; offline refuses."""
    frames = _video(tmp_path, t=6)
    first = np.zeros((48, 80), np.uint8)
    first[8:24, 8:24] = 1
    write_indexed_png(tmp_path / "first.png", first)
    later = np.zeros((48, 80), np.uint8)
    later[28:44, 50:70] = 2
    later[8:24, 8:24] = 1  # an id that is already a target: ignored
    write_indexed_png(tmp_path / "masks" / "00003.png", later)
    out = tmp_path / "out"
    assert main(["vos", "segment", "--run-dir", str(untrained_model), "--video", str(frames), "--first-mask",
                 str(tmp_path / "first.png"), "--masks", str(tmp_path / "masks"), "--out", str(out),
                 "--method", "all", "--device", "cpu", "--threads", "1"]) == 0
    rec = RunDir(out).record()
    assert set(rec["methods_results"]) == {"onepass", "copy"}  # offline skipped: first-frame objects only
    for method in ("onepass", "copy"):
        labels = [np.asarray(Image.open(out / method / "frames" / f"{t:05d}.png")) for t in range(6)]
        assert all(2 not in lab for lab in labels[:3]), method
        assert np.array_equal(labels[3] == 2, later == 2), method
    copy = [np.asarray(Image.open(out / "copy" / "frames" / f"{t:05d}.png")) for t in range(6)]
    assert all(np.array_equal(copy[t], np.where(later == 2, 2, first)) for t in (3, 4, 5))
    capsys.readouterr()
    assert main(["vos", "segment", "--run-dir", str(untrained_model), "--video", str(frames), "--first-mask",
                 str(tmp_path / "first.png"), "--masks", str(tmp_path / "masks"), "--out", str(tmp_path / "off"),
                 "--method", "offline", "--device", "cpu"]) == 2
    assert "offline baselines take first-frame objects only" in capsys.readouterr().err
    write_indexed_png(tmp_path / "masks" / "clip9.png", later)
    assert main(["vos", "segment", "--video", str(frames), "--first-mask", str(tmp_path / "first.png"),
                 "--masks", str(tmp_path / "masks"), "--out", str(tmp_path / "bad"), "--method", "copy"]) == 2
    assert "no frame named 'clip9'" in capsys.readouterr().err and not (tmp_path / "bad").exists()


@pytest.mark.parametrize("case", ["empty", "rgb", "size"])
def test_segment_video_bad_first_mask(untrained_model, tmp_path, capsys, case):
    frames = _video(tmp_path)
    path = tmp_path / "first.png"
    if case == "empty":
        write_indexed_png(path, np.zeros((48, 80), np.uint8))
    elif case == "rgb":  # soft: noise of many colours, no object with an interior
        Image.fromarray((np.random.default_rng(0).random((48, 80, 3)) * 255).astype(np.uint8), mode="RGB").save(path)
    else:
        write_indexed_png(path, np.ones((40, 80), np.uint8))
    rc = main(["vos", "segment", "--run-dir", str(untrained_model), "--video", str(frames),
               "--first-mask", str(path), "--out", str(tmp_path / "out"), "--device", "cpu", "--threads", "1"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error: ") and str(path) in err and "\n" not in err


def test_roi_compose_equals_full_frame_argmax():
    """The fast per-RoI compositing gives the labels of argmax-then-threshold over full maps."""
    from workbench.vos.online import FrameResult, compose, compose_rois

    g = torch.Generator().manual_seed(0)
    for _ in range(10):
        objs = {}
        for i in range(1, 5):
            xy = torch.rand(2, generator=g) * torch.tensor([100.0, 60.0]) - 20
            wh = torch.rand(2, generator=g) * 60 + 5
            objs[i] = (torch.cat([xy, xy + wh]), torch.rand(8, 8, generator=g))
        res = FrameResult(objs, (1.7, 1.7))
        full = compose(res.probs((120, 200)), (120, 200))
        fast = compose_rois(res, (120, 200))
        assert full.dtype == fast.dtype == np.uint8
        assert (full == fast).mean() > 0.999


def test_attention_off_model_segments(tiny_davis, tmp_path):
    """The ablation switch: a model without mask-guided attention runs the same pipeline."""
    from workbench.vos.online import OnlineSegmenter

    torch.manual_seed(0)
    model = OVSNet(ModelSpec(attention=False, input_scale=1.0))
    assert not hasattr(model.mask, "att")
    s = load_sequence(tiny_davis, list_sequences(tiny_davis, "val")[0])
    labels = [lab for _, lab in OnlineSegmenter(model).run(s.frames, s.masks[0])]
    assert len(labels) == len(s.frames) and labels[1].shape == s.masks[0].shape
