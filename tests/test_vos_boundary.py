"""Boundary-aware mask-guided attention: the boundary band by hand, the balanced boundary loss,
the switch in the mask head, and a run that trains and segments with it."""

from __future__ import annotations

import math

import pytest
import torch

from workbench.jsonio import read_jsonl
from workbench.vos.heads import MaskHead, boundary_band
from workbench.vos.losses import boundary_loss
from workbench.vos.model import ModelSpec, OVSNet
from workbench.vos.segment import run_segment
from workbench.vos.train import load_model, run_train


def test_boundary_band_by_hand():
    m = torch.zeros(1, 1, 8, 8)
    m[0, 0, 2:6, 2:6] = 1  # a 4x4 square
    band = boundary_band(m)[0, 0]
    expected = torch.zeros(8, 8)
    expected[1:7, 1:7] = 1     # dilated 6x6 ...
    expected[3:5, 3:5] = 0     # ... minus the eroded 2x2 core
    assert torch.equal(band, expected)
    assert torch.equal(boundary_band(torch.ones(1, 1, 5, 5)), torch.zeros(1, 1, 5, 5))  # no edge in a full mask


def test_boundary_loss_is_balanced_bce_by_hand():
    target = torch.zeros(1, 1, 8, 8)
    target[0, 0, 2:6, 2:6] = 1
    band = boundary_band(target)
    pos = float(band.mean())                                # 32 of 64 pixels here
    logits = torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    p = logits.sigmoid()
    per_pixel = -(band * torch.log(p) + (1 - band) * torch.log(1 - p))
    weight = torch.where(band > 0, torch.tensor(1 - pos), torch.tensor(pos)) * 2
    assert float(boundary_loss(logits, target)) == pytest.approx(float((per_pixel * weight).mean()), rel=1e-5)
    good = boundary_loss((band * 2 - 1) * 20, target)
    bad = boundary_loss((1 - band * 2) * 20, target)
    assert float(good) < 1e-6 and float(bad) > 10
    assert float(boundary_loss(torch.zeros(0, 1, 8, 8), torch.zeros(0, 1, 8, 8))) == 0
    assert not math.isnan(float(boundary_loss(logits, torch.zeros(1, 1, 8, 8))))  # no boundary at all


def test_switch_adds_the_branch_and_keeps_shapes():
    ch = {4: 16, 8: 24, 16: 32}
    feats = {s: torch.randn(2, c, 64 // s, 64 // s) for s, c in ch.items()}
    rois = torch.tensor([[0, 4.0, 4.0, 40.0, 40.0], [1, 10.0, 8.0, 60.0, 50.0]])
    prior = torch.rand(2, 1, 16, 16)
    plain, edged = MaskHead(ch, size=16), MaskHead(ch, size=16, boundary=True)
    assert plain(feats, rois, prior).shape == edged(feats, rois, prior).shape == (2, 1, 16, 16)
    assert plain.last_edge is None and edged.last_edge.shape == (2, 1, 16, 16)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(edged) > count(plain)
    assert count(OVSNet(ModelSpec())) == count(OVSNet(ModelSpec(boundary=False)))  # off by default


def test_trains_records_and_segments_with_boundary(tiny_davis, tmp_path):
    cfg = {"data_root": str(tiny_davis), "epochs": 2, "steps_per_epoch": 2, "batch_size": 2, "crop_size": [64, 112],
           "threads": 1, "device": "cpu", "seed": 3, "boundary": True}
    rec = run_train(cfg, tmp_path / "model")
    assert rec["status"] == "finished" and rec["boundary"] is True
    epochs = read_jsonl(tmp_path / "model" / "metrics.jsonl")
    assert all(e["boundary_loss"] > 0 for e in epochs if "boundary_loss" in e) and "boundary_loss" in epochs[-1]
    model = load_model(tmp_path / "model")
    assert model.spec.boundary and hasattr(model.mask, "edge")
    seg = run_segment({"model": str(tmp_path / "model"), "data_root": str(tiny_davis), "split": "val",
                       "method": "onepass", "threads": 1, "device": "cpu"}, tmp_path / "seg")
    assert 0 <= seg["metrics"]["jf"] <= 1
    with pytest.raises(Exception, match="boundary_weight"):
        run_train({**cfg, "boundary_weight": -1.0}, tmp_path / "bad")
