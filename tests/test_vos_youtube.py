"""YouTube-VOS layout (objects that appear after frame 0, sparse annotations) and dataset mixing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from workbench.cli import main
from workbench.data.davis import list_sequences, load_sequence
from workbench.data.io import write_indexed_png
from workbench.data.youtube_vos import load_split, read_meta
from workbench.errors import DataError
from workbench.runs import RunDir
from workbench.vos.train import pick_sequences

TINY = ["--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "2", "--set", "crop_size=[48,96]",
        "--device", "cpu", "--threads", "1", "--seed", "0"]


def youtube_from_davis(davis: Path, out: Path) -> Path:
    """A tiny YouTube-VOS 2019 train split from the synthetic DAVIS train sequences: every second
    frame annotated; object 2 enters at frame 2 (it is removed from the earlier annotations)."""
    videos = {}
    for name in list_sequences(davis, "train"):
        seq = load_sequence(davis, name)
        frames_dir, ann_dir = out / "train" / "JPEGImages" / name, out / "train" / "Annotations" / name
        frames_dir.mkdir(parents=True)
        objects: dict[str, list[str]] = {}
        for t, (stem, path) in enumerate(zip(seq.frame_names, seq.frame_paths)):
            shutil.copy(path, frames_dir / path.name)
            if t % 2 or t not in seq.masks:
                continue
            mask = seq.masks[t].copy()
            if t < 2:
                mask[mask == 2] = 0
            write_indexed_png(ann_dir / f"{stem}.png", mask)
            for obj in np.unique(mask[(mask > 0) & (mask < 255)]).tolist():
                objects.setdefault(str(obj), []).append(stem)
        videos[name] = {"objects": {k: {"category": "thing", "frames": v} for k, v in objects.items()}}
    (out / "train" / "meta.json").write_text(json.dumps({"videos": videos}))
    return out


@pytest.fixture(scope="module")
def tiny_youtube(tiny_davis, tmp_path_factory) -> Path:
    return youtube_from_davis(tiny_davis, tmp_path_factory.mktemp("youtube") / "ytvos")


def test_loader_reads_sparse_annotations_and_late_objects(tiny_youtube):
    seqs = load_split(tiny_youtube, "train")
    assert len(seqs) == 3
    for s in seqs:
        assert sorted(s.masks) == list(range(0, len(s.frame_names), 2))  # every second frame
        assert s.first_appearance[1] == 0
        if 2 in s.first_appearance:
            assert s.first_appearance[2] == 2 and not (s.masks[0] == 2).any() and (s.masks[2] == 2).any()
    assert any(2 in s.first_appearance for s in seqs)


def test_broken_meta_and_missing_objects_are_one_line_errors(tiny_youtube, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(tiny_youtube, bad)
    meta = bad / "train" / "meta.json"
    meta.write_text("{not json")
    with pytest.raises(DataError, match="not a YouTube-VOS meta.json") as err:
        read_meta(bad, "train")
    assert str(meta) in str(err.value) and "\n" not in str(err.value)
    good = json.loads((tiny_youtube / "train" / "meta.json").read_text())
    name = sorted(good["videos"])[0]
    good["videos"][name]["objects"]["7"] = {"category": "ghost", "frames": ["00000"]}
    meta.write_text(json.dumps(good))
    with pytest.raises(DataError, match="object 7 of meta.json is not in the annotation"):
        load_split(bad, "train")


def test_weighted_mixing_draws_sources_by_weight():
    g = torch.Generator().manual_seed(0)
    offsets = np.array([0, 3, 5])  # source 0: sequences 0-2, source 1: sequences 3-4
    picks = pick_sequences(offsets, [1.0, 3.0], 4000, g)
    share = np.mean([p >= 3 for p in picks])
    assert 0.72 < share < 0.78 and set(picks) == set(range(5))  # 3:1, every sequence drawn
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert pick_sequences(np.array([0, 4]), [1.0], 6, g1) == torch.randint(4, (6,), generator=g2).tolist()


def test_train_on_youtube_vos_mixed_with_davis(tiny_youtube, tiny_davis, tmp_path, capsys):
    run = tmp_path / "run"
    mix = f"mix=[{{dataset: davis, data_root: {tiny_davis}, split: train, weight: 0.5}}]"
    assert main(["vos", "train", "--data-root", str(tiny_youtube), "--dataset", "youtube-vos", "--run-dir", str(run),
                 *TINY, "--set", mix]) == 0
    rec = RunDir(run).record()
    cfg = json.loads((run / "config.json").read_text())
    assert rec["status"] == "finished" and cfg["dataset"] == "youtube-vos" and cfg["mix"][0]["weight"] == 0.5
    capsys.readouterr()
    bad = f"mix=[{{dataset: kitti, data_root: {tiny_davis}}}]"
    assert main(["vos", "train", "--data-root", str(tiny_youtube), "--dataset", "youtube-vos",
                 "--run-dir", str(tmp_path / "bad"), *TINY, "--set", bad]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: mix[0].dataset") and not (tmp_path / "bad").exists()
