"""Candidate operations: a dict from op name to a constructor `(C, stride, affine) -> nn.Module`.

The search space is data: a preset names the subset of OPS it searches over. Every op maps
C channels to C channels; with stride 2 every op outputs ceil(H/2) x ceil(W/2), so odd sizes work.
`none` is the DARTS zero op: it lets the search say "no edge" and is never kept by derivation.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

NONE = "none"


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, dilation: int = 1,
                 affine: bool = True):
        pad = dilation * (kernel - 1) // 2
        super().__init__(nn.ReLU(inplace=False),
                         nn.Conv2d(c_in, c_out, kernel, stride, pad, dilation=dilation, bias=False),
                         nn.BatchNorm2d(c_out, affine=affine))


class SepConv(nn.Sequential):
    """ReLU - depthwise 3x3 (dilated) - pointwise 1x1 - BN: the light op real-time nets are made of."""

    def __init__(self, c: int, stride: int, dilation: int = 1, affine: bool = True):
        super().__init__(nn.ReLU(inplace=False),
                         nn.Conv2d(c, c, 3, stride, dilation, dilation=dilation, groups=c, bias=False),
                         nn.Conv2d(c, c, 1, bias=False),
                         nn.BatchNorm2d(c, affine=affine))


class Zero(nn.Module):
    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0) if self.stride == 1 else x[:, :, ::self.stride, ::self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    """Skip connection at stride 2: two offset 1x1 stride-2 convs concatenated (DARTS)."""

    def __init__(self, c: int, affine: bool = True):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c // 2, 1, 2, bias=False)
        self.conv2 = nn.Conv2d(c, c - c // 2, 1, 2, bias=False)
        self.bn = nn.BatchNorm2d(c, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        a = self.conv1(x)
        b = self.conv2(F.pad(x[:, :, 1:, 1:], (0, 1, 0, 1)))
        return self.bn(torch.cat([a, b], dim=1))


def _skip(c: int, stride: int, affine: bool) -> nn.Module:
    return nn.Identity() if stride == 1 else FactorizedReduce(c, affine)


OpFactory = Callable[[int, int, bool], nn.Module]

OPS: dict[str, OpFactory] = {
    "none": lambda c, stride, affine: Zero(stride),
    "skip_connect": _skip,
    "max_pool_3x3": lambda c, stride, affine: nn.MaxPool2d(3, stride, 1),
    "conv_3x3": lambda c, stride, affine: ReLUConvBN(c, c, 3, stride, affine=affine),
    "sep_conv_3x3": lambda c, stride, affine: SepConv(c, stride, 1, affine),
    "dil_sep_conv_3x3_d2": lambda c, stride, affine: SepConv(c, stride, 2, affine),
    "dil_sep_conv_3x3_d4": lambda c, stride, affine: SepConv(c, stride, 4, affine),
    "dil_sep_conv_3x3_d8": lambda c, stride, affine: SepConv(c, stride, 8, affine),
}

ALIASES = {"zero": "none", "skip": "skip_connect"}

DEFAULT_OPS: tuple[str, ...] = tuple(OPS)


def canonical_op(name: str) -> str:
    """Accept the short names used in the papers ('zero', 'skip')."""
    return ALIASES.get(name, name)


def build_op(name: str, channels: int, stride: int = 1, affine: bool = True) -> nn.Module:
    """One candidate op; unknown names raise KeyError (callers turn it into a user error)."""
    return OPS[canonical_op(name)](channels, stride, affine)
