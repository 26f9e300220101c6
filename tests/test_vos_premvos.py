"""The PReMVOS-style offline baseline: the merge by hand, and a run through the CLI."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from workbench.cli import main
from workbench.runs import RunDir
from workbench.vos.model import ModelSpec, OVSNet
from workbench.vos.premvos import PremvosConfig, merge_frame, soft_iou


def box(y0: int, y1: int, x0: int, x1: int, h: int = 20, w: int = 20) -> torch.Tensor:
    m = torch.zeros(h, w)
    m[y0:y1, x0:x1] = 1.0
    return m


def test_soft_iou_by_hand():
    a = torch.stack([box(0, 10, 0, 10), box(0, 10, 5, 15), torch.zeros(20, 20)])
    assert soft_iou(a, box(0, 10, 0, 10)).tolist() == pytest.approx([1.0, 50 / 150, 0.0])


def test_merge_picks_one_to_one_by_reid_and_propagation_and_falls_back():
    e1, e2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    props = {"probs": torch.stack([box(0, 10, 0, 10), box(10, 20, 10, 20), box(0, 10, 10, 20)]),
             "scores": torch.tensor([0.6, 0.6, 0.9]),
             "embs": torch.stack([e1, e2, (e1 + e2) / 2 ** 0.5])}
    # target 1 was propagated onto proposal 0's place, target 2 onto proposal 1's; proposal 2 is a
    # confident detection that looks like neither: 1: 1 + 1 + 0.3 = 2.3 on proposal 0 (0.707 + 0 + 0.45 = 1.16
    # on proposal 2), 2: 2.3 on proposal 1
    estimates = {1: [box(0, 10, 0, 10)], 2: [box(10, 20, 10, 20)], 3: [box(5, 15, 5, 15)]}
    memories = {1: e1, 2: e2, 3: -e1}
    out = merge_frame(props, estimates, memories, PremvosConfig())
    assert torch.equal(out[1], props["probs"][0]) and torch.equal(out[2], props["probs"][1])
    # target 3: re-ID -0.707 against proposal 2 and IoU 25/175 -> 0.59 < min_score 0.9: keeps its estimate
    assert torch.equal(out[3], estimates[3][0])
    # no proposals at all: every target keeps the mean of its propagated masks
    empty = {"probs": torch.zeros(0, 20, 20), "scores": torch.zeros(0), "embs": torch.zeros(0, 2)}
    two = {1: [box(0, 10, 0, 10), box(0, 10, 0, 20)]}
    assert torch.equal(merge_frame(empty, two, {1: e1}, PremvosConfig())[1], (two[1][0] + two[1][1]) / 2)


@pytest.fixture(scope="module")
def untrained_model(tmp_path_factory):
    torch.manual_seed(0)
    spec = ModelSpec()
    rd = RunDir(tmp_path_factory.mktemp("vos_model"))
    rd.save_checkpoint({"model": OVSNet(spec).state_dict(), "epoch": 0, "spec": dataclasses.asdict(spec)})
    return rd.path


def test_premvos_through_the_cli(tiny_davis, untrained_model, tmp_path):
    out = tmp_path / "seg"
    assert main(["vos", "segment", "--run-dir", str(untrained_model), "--data-root", str(tiny_davis), "--split",
                 "val", "--out", str(out), "--method", "premvos", "--device", "cpu", "--threads", "1"]) == 0
    res = RunDir(out).record()["methods_results"]["premvos"]
    assert 0.0 <= res["jf"] <= 1.0 and res["fps"] > 0
    assert len(list((out / "premvos").rglob("*.png"))) >= 8
