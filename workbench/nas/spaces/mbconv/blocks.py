"""The MBConv (inverted residual) block with optional squeeze-excitation, as in MobileNetV2/V3,
ProxylessNAS and FBNet: 1x1 expansion, depthwise k x k (stride 1 or 2), SE, 1x1 projection,
and a residual connection when the shapes allow it."""

from __future__ import annotations

import torch
from torch import nn


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        hidden = max(8, channels // reduction)
        self.fc = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True),
                                nn.Conv2d(hidden, channels, 1), nn.Hardsigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x)


class MBConv(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, expand: int, se: bool, stride: int):
        super().__init__()
        hidden = c_in * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(c_in, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True)]
        layers += [nn.Conv2d(hidden, hidden, kernel, stride, kernel // 2, groups=hidden, bias=False),
                   nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True)]
        if se:
            layers.append(SqueezeExcite(hidden))
        layers += [nn.Conv2d(hidden, c_out, 1, bias=False), nn.BatchNorm2d(c_out)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


class TwoScaleDecoder(nn.Module):
    """The fixed decoder: the last stage's output, projected and upsampled, plus a lateral
    projection of the `lateral` stage's output, at the lateral stage's stride."""

    def __init__(self, c_lateral: int, c_last: int, channels: int):
        super().__init__()
        self.lateral = nn.Sequential(nn.Conv2d(c_lateral, channels, 1, bias=False), nn.BatchNorm2d(channels))
        self.top = nn.Sequential(nn.Conv2d(c_last, channels, 1, bias=False), nn.BatchNorm2d(channels))

    def forward(self, lateral: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        top = nn.functional.interpolate(self.top(last), size=lateral.shape[-2:], mode="bilinear", align_corners=False)
        return torch.relu(self.lateral(lateral) + top)
