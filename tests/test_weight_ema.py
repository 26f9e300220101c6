"""Weight averaging in retrain (`ema_decay`): the average against a hand computation, that it
leaves the training itself alone, that the averaged network is what the run scores and what
evaluate/export load, and exact resume with it."""

from __future__ import annotations

import math

import pytest
import torch
from test_seg_helpers import interrupted_then_resumed, retrain_config, write_genotype
from torch import nn

from workbench.config import from_dict
from workbench.errors import ConfigError
from workbench.seg import recipes
from workbench.seg.evaluate import load_run_model
from workbench.seg.retrain import RetrainConfig, run_retrain
from workbench.seg.teacher import teacher_config, teacher_key
from workbench.seg.weight_ema import build_ema, warm_decay


def test_average_follows_the_warmed_up_decay_and_copies_integer_buffers():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    ema = build_ema(model, decay=0.5)
    snapshots = []
    for _ in range(4):
        with torch.no_grad():
            model[0].weight.add_(torch.randn_like(model[0].weight))
        model.train()(torch.randn(5, 3))  # moves the BatchNorm statistics and its batch counter
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        ema.update_parameters(model)
    expected = dict(snapshots[0])  # the first update copies
    for n, snap in enumerate(snapshots[1:], start=1):
        d = min(0.5, (1 + n) / (10 + n))
        expected = {k: d * expected[k] + (1 - d) * v if v.is_floating_point() else v for k, v in snap.items()}
    got = ema.module.state_dict()
    for key, value in expected.items():
        assert torch.allclose(got[key], value, atol=1e-6), key
    assert int(got["1.num_batches_tracked"]) == 4
    assert warm_decay(0.999, 10**6) == 0.999 and math.isclose(warm_decay(0.999, 1), 2 / 11)
    assert build_ema(model, 0.0) is None


@pytest.mark.parametrize("value", [1.0, -0.1, float("nan")])
def test_bad_ema_decay_is_a_one_line_config_error(value):
    with pytest.raises(ConfigError, match="^ema_decay: ") as err:
        from_dict(RetrainConfig, {"baseline": "fpn_mobilenet_v2", "ema_decay": value})
    assert "\n" not in str(err.value)


def test_teacher_key_without_an_average_is_the_key_before_it_existed(tmp_path, tiny_cityscapes):
    genotype = write_genotype(tmp_path / "g.json")
    cfg = from_dict(RetrainConfig, retrain_config(genotype, tiny_cityscapes, teacher="pspnet_lcnet_035",
                                                  distill_weight=1.0), source="retrain")
    tcfg = teacher_config(cfg, recipes.resolve(cfg)[0])
    old = {k: v for k, v in tcfg.items() if k != "ema_decay"}
    assert teacher_key(tcfg)[0] == teacher_key(old)[0]
    assert teacher_key({**tcfg, "ema_decay": 0.999})[0] != teacher_key(old)[0]


def test_retrain_scores_and_ships_the_average_leaves_training_alone_and_resumes_exactly(
        tmp_path, tiny_cityscapes, monkeypatch):
    genotype = write_genotype(tmp_path / "g.json")
    cfg = retrain_config(genotype, tiny_cityscapes, recipe="fast-v1", memory_format="contiguous", precision="fp32",
                         ema_decay=0.9, epochs=3, eval_every=1)
    averaged = run_retrain(cfg, tmp_path / "ema")
    state = torch.load(tmp_path / "ema" / "checkpoints" / "last.pt", weights_only=True)
    assert state["ema_updates"] == averaged["steps"] > 0
    assert not all(torch.equal(state["model_ema"][k], v) for k, v in state["model"].items())

    # the average does not touch the training: the same run without it ends with the same weights
    plain = run_retrain({**cfg, "ema_decay": 0.0}, tmp_path / "plain")
    other = torch.load(tmp_path / "plain" / "checkpoints" / "last.pt", weights_only=True)
    assert "model_ema" not in other and "miou_raw" not in plain["metrics"]
    for key, value in other["model"].items():
        assert torch.equal(state["model"][key], value), key
    assert averaged["metrics"]["miou_raw"] == plain["metrics"]["miou"]
    vals = [r for r in (tmp_path / "ema" / "metrics.jsonl").read_text().splitlines() if '"val"' in r]
    assert len(vals) == 3 and all("miou_raw" in r for r in vals)

    # evaluate, predict and export load the averaged weights
    model, _, _ = load_run_model(tmp_path / "ema", torch.device("cpu"))
    for key, value in model.state_dict().items():
        assert torch.equal(value, state["model_ema"][key]), key

    resumed = interrupted_then_resumed(monkeypatch, cfg, tmp_path / "killed")
    again = torch.load(tmp_path / "killed" / "checkpoints" / "last.pt", weights_only=True)
    assert again["ema_updates"] == state["ema_updates"]
    for part in ("model", "model_ema"):
        for key, value in state[part].items():
            assert torch.equal(again[part][key], value), (part, key)
    assert resumed["metrics"]["miou"] == averaged["metrics"]["miou"]
