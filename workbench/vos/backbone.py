"""OVS-Net backbones: each returns FPN features {4: P4, 8: P8, 16: P16} and their `channels`.

`tiny` (the default) is a light depthwise-separable network designed for CPU speed at 854x480 (a
few hundred MFLOPs per frame), trained from scratch. For real footage, `resnet18`, `resnet50` and
`mobilenet_v3_large` are torchvision's classification networks cut at strides 4/8/16 (their
nodes taken with torchvision's feature extractor) under torchvision's FeaturePyramidNetwork; they
load an ImageNet state dict the user has on disk (`--backbone-weights PATH`, the file
`torchvision.models.<name>(weights=...).state_dict()` saves). Nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from workbench.errors import CheckpointError, ConfigError


def conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SepConv(nn.Sequential):
    """Depthwise 3x3 (optionally strided) + pointwise 1x1, each with BN and ReLU."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__(conv_bn(cin, cin, 3, stride, groups=cin), conv_bn(cin, cout, 1))


class Backbone(nn.Module):
    """Returns {4: P4, 8: P8, 16: P16}: FPN features at strides 4, 8 and 16."""

    def __init__(self, widths: tuple[int, int, int] = (24, 48, 96), fpn: int = 48, low: int = 32):
        super().__init__()
        c4, c8, c16 = widths
        self.stem = conv_bn(3, 16, 3, 2)
        self.s4 = nn.Sequential(SepConv(16, c4, 2), SepConv(c4, c4))
        self.s8 = nn.Sequential(SepConv(c4, c8, 2), SepConv(c8, c8))
        self.s16 = nn.Sequential(SepConv(c8, c16, 2), SepConv(c16, c16), SepConv(c16, c16))
        self.lat16 = nn.Conv2d(c16, fpn, 1)
        self.lat8 = nn.Conv2d(c8, fpn, 1)
        self.lat4 = nn.Conv2d(c4, low, 1)
        self.top4 = nn.Conv2d(fpn, low, 1)
        self.out8 = SepConv(fpn, fpn)
        self.out4 = SepConv(low, low)
        self.channels = {4: low, 8: fpn, 16: fpn}

    def forward(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        f4 = self.s4(self.stem(x))
        f8 = self.s8(f4)
        f16 = self.s16(f8)
        p16 = self.lat16(f16)
        p8 = self.out8(self.lat8(f8) + F.interpolate(p16, size=f8.shape[-2:], mode="nearest"))
        p4 = self.out4(self.lat4(f4) + F.interpolate(self.top4(p8), size=f4.shape[-2:],
                                                     mode="nearest"))
        return {4: p4, 8: p8, 16: p16}


# name -> (torchvision constructor, {stride: graph node of the stride-4/8/16 features})
TORCHVISION: dict[str, tuple[str, dict[int, str]]] = {
    "resnet18": ("resnet18", {4: "layer1", 8: "layer2", 16: "layer3"}),
    "resnet50": ("resnet50", {4: "layer1", 8: "layer2", 16: "layer3"}),
    "mobilenet_v3_large": ("mobilenet_v3_large", {4: "features.3", 8: "features.6", 16: "features.12"}),
}
BACKBONES: tuple[str, ...] = ("tiny", *TORCHVISION)


class TorchvisionFPN(nn.Module):
    """A torchvision classifier's stride-4/8/16 features under an FPN of `fpn` channels."""

    def __init__(self, name: str, fpn: int = 48):
        super().__init__()
        import torchvision
        from torchvision.models.feature_extraction import create_feature_extractor
        from torchvision.ops import FeaturePyramidNetwork

        ctor, nodes = TORCHVISION[name]
        self.name = name
        classifier = getattr(torchvision.models, ctor)(weights=None)  # only the used nodes are kept
        self.body = create_feature_extractor(classifier, return_nodes={v: str(k) for k, v in nodes.items()})
        with torch.no_grad():
            shapes = self.body(torch.zeros(1, 3, 64, 64))
        self.fpn = FeaturePyramidNetwork([shapes[str(k)].shape[1] for k in (4, 8, 16)], fpn)
        self.channels = {4: fpn, 8: fpn, 16: fpn}

    def forward(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        feats = self.body(x)
        out = self.fpn({str(k): feats[str(k)] for k in (4, 8, 16)})
        return {k: out[str(k)] for k in (4, 8, 16)}

    def load_pretrained(self, path: str | Path) -> int:
        """Load a torchvision classification state dict (its classifier head is ignored); returns
        the number of tensors loaded. Any missing or mis-shaped backbone weight is an error."""
        path = Path(path)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise ConfigError(f"backbone_weights: {path} not found") from None
        except Exception as exc:  # pickle, zip and format errors come in many classes
            raise CheckpointError(f"{path}: not a torch state dict ({exc.__class__.__name__})") from None
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise CheckpointError(f"{path}: not a state dict (a {type(state).__name__})")
        own = self.body.state_dict()  # the classifier's names, for the nodes up to stride 16
        missing = sorted(set(own) - set(state))
        if missing:
            raise CheckpointError(f"{path}: not a {self.name} state dict ({len(missing)} backbone weights "
                                  f"missing, e.g. {missing[0]!r})")
        bad = [k for k in own if tuple(state[k].shape) != tuple(own[k].shape)]
        if bad:
            raise CheckpointError(f"{path}: weight {bad[0]!r} has shape {tuple(state[bad[0]].shape)}, "
                                  f"{self.name} needs {tuple(own[bad[0]].shape)}")
        self.body.load_state_dict({k: state[k] for k in own})
        return len(own)


def build_backbone(name: str, fpn: int = 48) -> nn.Module:
    """A backbone of the registry by name (`BACKBONES`)."""
    if name == "tiny":
        return Backbone(fpn=fpn)
    if name not in TORCHVISION:
        raise ConfigError(f"backbone: unknown backbone {name!r} (known: {', '.join(BACKBONES)})")
    return TorchvisionFPN(name, fpn)
