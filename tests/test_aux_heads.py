"""Auxiliary heads (deep supervision in retrain): where they read, the loss they add, that the
network's own weights and checkpoints do not change shape, and exact resume with heads."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from test_seg_helpers import interrupted_then_resumed, retrain_config, tiny_genotype, write_genotype

from workbench.config import from_dict
from workbench.errors import ConfigError
from workbench.nas.network import build_network
from workbench.seg import recipes
from workbench.seg.aux_heads import AuxHeads, TrainingNet, find_taps
from workbench.seg.baselines import build_baseline
from workbench.seg.losses import Objective
from workbench.seg.model import model_spec
from workbench.seg.retrain import RetrainConfig, run_retrain
from workbench.seg.teacher import teacher_config, teacher_key


def test_taps_of_a_baseline_follow_its_encoder_features():
    model = build_baseline("fpn_mobilenetv3_small", 11)
    taps = find_taps(model, (8, 16, 32), (128, 256))
    # smp lists the encoder's features from stride 1 (the image) to 32, one per power of two
    assert [t["item"] for t in taps] == [3, 4, 5]
    assert [t["stride"] for t in taps] == [8, 16, 32]
    assert [t["channels"] for t in taps] == [model.encoder.out_channels[i] for i in (3, 4, 5)]
    # PSPNet's encoder stops at 1/16: a 1/32 head reads the deepest stage below it
    psp = build_baseline("pspnet_lcnet_035", 11)
    (tap,) = find_taps(psp, (32,), (128, 256))
    assert (tap["stride"], tap["requested"], tap["channels"]) == (16, 32, psp.encoder.out_channels[4])


def test_taps_of_a_genotype_are_its_cells_and_too_fine_a_stride_is_refused():
    model = build_network(tiny_genotype())
    taps = find_taps(model, (4, 16), (64, 128))
    cells = model.body.cells
    assert [(t["stage"], t["stride"]) for t in taps] == [(0, 4), (1, 8)]  # the tiny network ends at 1/8
    assert [t["channels"] for t in taps] == [cells["0"].spec.channels, cells["1"].spec.channels]
    with pytest.raises(ConfigError, match="aux_strides: no body stage at 1/2"):
        find_taps(model, (2,), (64, 128))


def test_training_net_returns_head_logits_only_while_training_and_leaves_the_network_alone():
    torch.manual_seed(0)
    model = build_network(tiny_genotype())
    keys = set(model.state_dict())
    net = TrainingNet(model, AuxHeads(model, (8,), 19, (64, 128)))
    x = torch.randn(2, 3, 64, 128)
    logits, aux = net.train()(x)
    assert logits.shape == (2, 19, 64, 128) and [a.shape for a in aux] == [(2, 19, 8, 16)]
    assert net.aux.captured == {}  # dropped after use: no features kept between steps
    assert set(model.state_dict()) == keys  # checkpoints, bench and export see the same network
    assert torch.is_tensor(net.eval()(x))
    model.train()(x)  # the network alone, training or not, keeps nothing for the heads
    assert net.aux.captured == {}
    twin = copy.deepcopy(net)
    _, twin_aux = twin.train()(x)  # a deep copy's hooks feed the copy's heads, not the original's
    assert torch.allclose(twin_aux[0], net.train()(x)[1][0]) and net.aux.captured == twin.aux.captured == {}


def test_objective_adds_the_weighted_task_loss_of_each_head():
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 5, 16, 32, generator=gen)
    aux = [torch.randn(2, 5, 4, 8, generator=gen), torch.randn(2, 5, 2, 4, generator=gen)]
    labels = torch.randint(0, 5, (2, 16, 32), generator=gen)
    labels[0, :3] = 255
    objective = Objective(ignore_index=255, aux_weight=0.4)
    by_hand = F.cross_entropy(logits, labels, ignore_index=255)
    for a in aux:
        up = F.interpolate(a, size=(16, 32), mode="bilinear", align_corners=False)
        by_hand = by_hand + 0.4 * F.cross_entropy(up, labels, ignore_index=255)
    assert torch.allclose(objective(logits, labels, None, aux), by_hand)
    assert torch.equal(Objective(ignore_index=255)(logits, labels, None, aux),
                       F.cross_entropy(logits, labels, ignore_index=255))  # weight 0: heads ignored


@pytest.mark.parametrize("changes, field", [({"aux_strides": [12]}, "aux_strides"), ({"aux_strides": []}, "aux_strides"),
                                           ({"aux_weight": float("inf")}, "aux_weight")])
def test_bad_aux_values_are_one_line_config_errors(changes, field):
    with pytest.raises(ConfigError, match=f"^{field}: ") as err:
        from_dict(RetrainConfig, {"baseline": "fpn_mobilenet_v2", **changes})
    assert "\n" not in str(err.value)


def test_teacher_key_without_heads_is_the_key_before_heads_existed(tmp_path, tiny_cityscapes):
    genotype = write_genotype(tmp_path / "g.json")
    cfg = from_dict(RetrainConfig, retrain_config(genotype, tiny_cityscapes, teacher="pspnet_lcnet_035",
                                                  distill_weight=1.0), source="retrain")
    values, _ = recipes.resolve(cfg)
    tcfg = teacher_config(cfg, values)
    old = {k: v for k, v in tcfg.items() if k not in ("aux_weight", "aux_strides")}
    assert teacher_key(tcfg)[0] == teacher_key(old)[0]
    assert teacher_key({**tcfg, "aux_weight": 0.4})[0] != teacher_key(old)[0]


def test_retrain_with_heads_records_them_and_resumes_exactly(tmp_path, tiny_cityscapes, monkeypatch):
    genotype = write_genotype(tmp_path / "g.json")
    cfg = retrain_config(genotype, tiny_cityscapes, recipe="fast-v1", memory_format="contiguous", precision="fp32",
                         aux_weight=0.4, aux_strides=[8], epochs=3, eval_every=1)
    straight = run_retrain(cfg, tmp_path / "straight")
    assert straight["aux_heads"] == [{"requested": 8, "stride": 8, "channels": 16}]
    assert straight["recipe"]["values"]["aux_weight"] == 0.4 and "aux_weight" in straight["recipe"]["overridden"]
    resumed = interrupted_then_resumed(monkeypatch, cfg, tmp_path / "killed")
    a = torch.load(tmp_path / "killed" / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "straight" / "checkpoints" / "last.pt", weights_only=True)
    for part in ("model", "aux_heads"):
        for key, value in b[part].items():
            assert torch.equal(a[part][key], value), (part, key)
    assert resumed["metrics"]["miou"] == straight["metrics"]["miou"]
    # the network's checkpoint loads into the network alone, as evaluate / bench / export build it
    spec = model_spec(genotype=genotype, baseline=None, num_classes=19)
    build_network(tiny_genotype(), num_classes=spec.num_classes).load_state_dict(b["model"])
    # and the heads changed the training: the same run without them ends elsewhere
    plain = run_retrain({**cfg, "aux_weight": 0.0}, tmp_path / "plain")
    c = torch.load(tmp_path / "plain" / "checkpoints" / "last.pt", weights_only=True)
    assert "aux_heads" not in c and plain["aux_heads"] is None
    assert not all(torch.equal(c["model"][k], v) for k, v in b["model"].items())
