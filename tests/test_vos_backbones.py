"""OVS-Net backbones: torchvision networks under an FPN, loading a state dict from disk."""

from __future__ import annotations

import pytest
import torch
import torchvision

from workbench.cli import main
from workbench.errors import CheckpointError, ConfigError
from workbench.runs import RunDir
from workbench.vos.backbone import build_backbone
from workbench.vos.model import ModelSpec, OVSNet
from workbench.vos.train import load_model

TINY = ["--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "2", "--set", "crop_size=[64,112]",
        "--device", "cpu", "--threads", "1", "--seed", "0"]


def _saved_classifier(tmp_path, name: str, seed: int = 7):
    """A randomly initialised torchvision classifier's state dict, as a user's .pth file."""
    torch.manual_seed(seed)
    state = getattr(torchvision.models, name)(weights=None).state_dict()
    path = tmp_path / f"{name}.pth"
    torch.save(state, path)
    return path, state


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_large"])
def test_torchvision_backbone_loads_the_state_dict_and_gives_fpn_strides(name, tmp_path):
    path, state = _saved_classifier(tmp_path, name)
    net = build_backbone(name, fpn=32)
    loaded = net.load_pretrained(path)
    body = net.body.state_dict()
    assert loaded == len(body) > 20
    assert all(torch.equal(body[k], state[k]) for k in body)  # every backbone tensor is the file's
    assert not any(k.startswith(("fc.", "classifier.")) for k in body)  # the classifier head is not kept
    with torch.no_grad():
        out = net.eval()(torch.randn(1, 3, 120, 200))
    assert {k: tuple(v.shape[1:]) for k, v in out.items()} == {4: (32, 30, 50), 8: (32, 15, 25), 16: (32, 8, 13)}


def test_wrong_or_broken_weights_are_one_clear_error(tmp_path):
    path, _ = _saved_classifier(tmp_path, "mobilenet_v3_large")
    with pytest.raises(CheckpointError, match="not a resnet18 state dict"):
        build_backbone("resnet18").load_pretrained(path)
    r50, _ = _saved_classifier(tmp_path, "resnet50")
    with pytest.raises(CheckpointError, match="shape"):
        build_backbone("resnet18").load_pretrained(r50)  # same names, other shapes
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="not a torch state dict"):
        build_backbone("resnet18").load_pretrained(junk)
    with pytest.raises(ConfigError, match="unknown backbone 'vgg'"):
        build_backbone("vgg")


def test_ovsnet_with_resnet18_trains_records_and_reloads(tiny_davis, tmp_path, capsys):
    """`vos train --backbone resnet18 --backbone-weights F`: the run records the backbone and its
    weights file; `load_model` rebuilds the same network; a segmentation pass runs on it."""
    path, state = _saved_classifier(tmp_path, "resnet18")
    run = tmp_path / "run"
    assert main(["vos", "train", "--data-root", str(tiny_davis), "--run-dir", str(run), "--backbone", "resnet18",
                 "--backbone-weights", str(path), *TINY]) == 0
    rec = RunDir(run).record()
    assert rec["status"] == "finished" and rec["backbone"] == "resnet18" and rec["backbone_weights"] == str(path)
    model = load_model(run)
    assert model.spec.backbone == "resnet18" and type(model.backbone).__name__ == "TorchvisionFPN"
    # one optimizer step moved the weights away from the file's, but they started from it
    diff = (model.backbone.body.state_dict()["conv1.weight"] - state["conv1.weight"]).abs().max()
    assert 0 < float(diff) < 0.1
    with torch.no_grad():
        out = model(model.prepare(torch.zeros(1, 96, 160, 3, dtype=torch.uint8).numpy()))
        masks = model.segment(out, torch.tensor([[10.0, 10.0, 60.0, 50.0]]))
    assert masks.shape == (1, 1, model.spec.mask_size, model.spec.mask_size)

    capsys.readouterr()
    for args, message in ((["--backbone", "vgg"], "backbone: unknown backbone"),
                          (["--backbone-weights", str(path)], "backbone_weights: the tiny backbone"),
                          (["--backbone", "resnet18", "--backbone-weights", str(tmp_path / "no.pth")], "not found")):
        out_dir = tmp_path / f"bad-{len(args)}-{args[-1][-4:]}"
        assert main(["vos", "train", "--data-root", str(tiny_davis), "--run-dir", str(out_dir), *args, *TINY]) == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith("error: ") and message in err, err
        assert not out_dir.exists()


def test_old_checkpoints_without_a_backbone_field_build_the_tiny_one():
    spec = ModelSpec(**{k: v for k, v in ModelSpec().__dict__.items() if k != "backbone"})
    assert spec.backbone == "tiny" and type(OVSNet(spec).backbone).__name__ == "Backbone"
