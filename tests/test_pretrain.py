"""`workbench pretrain`: a derived network's body as an ImageFolder classifier, then retrain from it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from workbench.cli import main
from workbench.runs import RunDir
from workbench.seg import pretrain as pre
from workbench.seg.pretrain import accuracy, run_pretrain

GENOTYPES = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "proxy_genotypes"
GENOTYPE = GENOTYPES / "autortnet-lw0.5.json"
COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (40, 60, 230)}


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    """ImageNet layout: train/<class>/ 8 images, val/<class>/ 3 images; a class is a colour."""
    root = tmp_path_factory.mktemp("imagefolder")
    rng = np.random.default_rng(0)
    for split, n in (("train", 8), ("val", 3)):
        for name, rgb in COLOURS.items():
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                img = np.clip(np.array(rgb) + rng.normal(0, 25, (48, 48, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(img).save(root / split / name / f"{i}.jpg")
    return root


def _config(root: Path, **changes) -> dict:
    cfg = {"genotype": str(GENOTYPE), "data_root": str(root), "image_size": 64, "epochs": 8, "batch_size": 6,
           "lr": 0.1, "weight_decay": 0.0, "label_smoothing": 0.0, "device": "cpu", "threads": 1, "seed": 0}
    cfg.update(changes)
    return cfg


def test_topk_accuracy_against_hand_counts():
    logits = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.2], [0.2, 0.3, 0.5]])
    labels = torch.tensor([1, 2, 0])
    assert accuracy(logits, labels, (1, 2, 5)) == {1: 1, 2: 2, 5: 3}  # k above the classes = all of them


def test_pretrain_learns_resumes_bit_identical_and_retrain_starts_from_it(image_folder, tmp_path, monkeypatch,
                                                                          tiny_cityscapes, capsys):
    done = run_pretrain(_config(image_folder), tmp_path / "full")
    m = done["metrics"]
    assert done["status"] == "finished" and done["classes"] == 3 and m["top5"] == 1.0
    assert m["top1"] >= 8 / 9  # three solid colours: far above chance (1/3) after 8 epochs
    lines = RunDir(tmp_path / "full").metrics()
    assert [r["epoch"] for r in lines] == list(range(8)) and lines[-1]["train_loss"] < lines[0]["train_loss"]

    # killed in the evaluation of epoch 1 (after epoch 0's checkpoint), resumed: the same weights
    calls = {"n": 0}
    real = pre.evaluate_topk

    def dies_second_time(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(pre, "evaluate_topk", dies_second_time)
    with pytest.raises(KeyboardInterrupt):
        run_pretrain(_config(image_folder), tmp_path / "killed")
    monkeypatch.setattr(pre, "evaluate_topk", real)
    assert RunDir(tmp_path / "killed").record()["status"] == "interrupted"
    resumed = run_pretrain(_config(image_folder, resume=True), tmp_path / "killed")
    assert resumed["metrics"] == m
    a = torch.load(tmp_path / "full" / "checkpoints" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "killed" / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)

    # retrain --init-from: the segmentation network starts from the pretrained stem and body
    from test_seg_helpers import retrain_config

    from workbench.seg.retrain import run_retrain

    rec = run_retrain(retrain_config(GENOTYPE, tiny_cityscapes, epochs=1, lr=0.0, weight_decay=0.0,
                                     init_from=str(tmp_path / "full")), tmp_path / "retrain")
    assert rec["status"] == "finished" and rec["init_from"] == str(tmp_path / "full")
    seg = torch.load(tmp_path / "retrain" / "checkpoints" / "last.pt", weights_only=True)["model"]
    convs = [k for k in seg if k.startswith(("stem.", "body.")) and k.endswith(".weight") and seg[k].ndim == 4]
    assert len(convs) > 10 and all(torch.equal(seg[k], a["net." + k]) for k in convs)  # lr 0: unchanged

    # another architecture, a baseline, or a folder without val/: one error line, exit 2
    capsys.readouterr()
    other = GENOTYPES / "lgcnet-lw0.json"
    cases = [(["retrain", "--genotype", str(other), "--init-from", str(tmp_path / "full")], "another architecture"),
             (["retrain", "--baseline", "pspnet_lcnet_035", "--init-from", str(tmp_path / "full")], "init_from"),
             (["pretrain", "--genotype", str(GENOTYPE), "--data-root", str(image_folder / "train")], "no train/")]
    for i, (args, message) in enumerate(cases):
        out = tmp_path / f"bad{i}"
        extra = ["--data-root", str(tiny_cityscapes), "--epochs", "1"] if args[0] == "retrain" else []
        assert main([*args, *extra, "--run-dir", str(out), "--device", "cpu"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("error: ") and message in err[-1], err
    assert json.loads((tmp_path / "full" / "genotype.json").read_text())["preset"] == "autortnet"
