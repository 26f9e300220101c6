"""A light multi-level backbone: strided depthwise-separable stages and a small FPN.

Designed for CPU speed at 854x480: features at 1/4, 1/8 and 1/16 with small channel counts, so
one forward pass per frame costs a few hundred MFLOPs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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
