"""The derived MBConv network: its genotype body, the discrete network and its latency pieces.

Body format (inside genotype.json's "body"):

    {"stages": [{"stride": 4, "layers": [{"kernel": 3, "expand": 6, "se": false, "channels": 16}]},
                {"stride": 8, "layers": [...]}, ...],
     "lateral_stage": 1, "decoder_channels": 32}

Stage s works at stride 4 * 2^s; its first layer downsamples (stride 2) from the previous stage,
except stage 0, which reads the stem at 1/4. Every layer is an MBConv block with its own kernel,
expansion ratio, squeeze-excitation and output channels. The decoder adds the projected output
of `lateral_stage` and the upsampled projection of the last stage; the head reads the sum.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from workbench.errors import GenotypeError
from workbench.nas.cells import STEM_STRIDE, feature_size
from workbench.nas.chain import need
from workbench.nas.latency.probes import Probe, head_probe, stem_probe
from workbench.nas.spaces.mbconv.blocks import MBConv, TwoScaleDecoder


@dataclass(frozen=True)
class Block:
    kernel: int
    expand: int
    se: bool
    channels: int

    def name(self) -> str:
        return f"k{self.kernel}_e{self.expand}{'_se' if self.se else ''}"


@dataclass
class MBConvBody:
    stages: list[list[Block]]
    lateral_stage: int
    decoder_channels: int
    extra: dict = field(default_factory=dict)

    def stride(self, s: int) -> int:
        return STEM_STRIDE * 2 ** s

    @property
    def output_stride(self) -> int:
        return self.stride(self.lateral_stage)

    def to_dict(self) -> dict:
        return {"stages": [{"stride": self.stride(s), "layers": [
                    {"kernel": b.kernel, "expand": b.expand, "se": b.se, "channels": b.channels} for b in blocks]}
                    for s, blocks in enumerate(self.stages)],
                "lateral_stage": self.lateral_stage, "decoder_channels": self.decoder_channels, **self.extra}

    def lines(self) -> list[str]:
        return [f"stage {s} (1/{self.stride(s)}): " + ", ".join(f"{b.name()} -> {b.channels}ch" for b in blocks)
                for s, blocks in enumerate(self.stages)] + [
                f"decoder: stage {self.lateral_stage} + last stage at 1/{self.output_stride}, "
                f"{self.decoder_channels}ch"]


def parse_body(d: dict, source: str) -> MBConvBody:
    if not isinstance(d, dict):
        raise GenotypeError(f"{source}: body must be an object")
    stages = []
    for s, stage in enumerate(need(d, "stages", list, source)):
        where = f"{source}: stages[{s}]"
        if need(stage, "stride", int, where) != STEM_STRIDE * 2 ** s:
            raise GenotypeError(f"{where}: stride must be {STEM_STRIDE * 2 ** s} (stage {s})")
        layers = need(stage, "layers", list, where)
        if not layers:
            raise GenotypeError(f"{where}: a stage needs at least its first (downsampling) layer")
        blocks = []
        for j, layer in enumerate(layers):
            lw = f"{where}.layers[{j}]"
            kernel, expand = need(layer, "kernel", int, lw), need(layer, "expand", int, lw)
            se, channels = need(layer, "se", bool, lw), need(layer, "channels", int, lw)
            if kernel < 1 or kernel % 2 == 0 or expand < 1 or channels < 1:
                raise GenotypeError(f"{lw}: kernel must be odd, expand and channels positive")
            blocks.append(Block(kernel, expand, se, channels))
        stages.append(blocks)
    if not stages:
        raise GenotypeError(f"{source}: no stages")
    lateral = need(d, "lateral_stage", int, source)
    if not 0 <= lateral < len(stages):
        raise GenotypeError(f"{source}: lateral_stage {lateral} is not one of the {len(stages)} stages")
    channels = need(d, "decoder_channels", int, source)
    if channels < 1:
        raise GenotypeError(f"{source}: decoder_channels must be positive")
    extra = {k: v for k, v in d.items() if k not in ("stages", "lateral_stage", "decoder_channels")}
    return MBConvBody(stages, lateral, channels, extra)


class MBConvNet(nn.Module):
    """stem features (1/4) -> stages of MBConv blocks -> two-scale decoder -> features for the head."""

    def __init__(self, body: MBConvBody, stem_channels: int):
        super().__init__()
        self.lateral_stage = body.lateral_stage
        stages, c = [], stem_channels
        for s, blocks in enumerate(body.stages):
            layers = []
            for j, b in enumerate(blocks):
                layers.append(MBConv(c, b.channels, b.kernel, b.expand, b.se, 2 if s > 0 and j == 0 else 1))
                c = b.channels
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)
        self.decoder = TwoScaleDecoder(body.stages[body.lateral_stage][-1].channels, c, body.decoder_channels)
        self.out_channels, self.output_stride = body.decoder_channels, body.output_stride
        self.size_divisor = body.stride(len(body.stages) - 1)

    def forward(self, stem: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        x, lateral = stem, None
        for s, stage in enumerate(self.stages):
            x = stage(x)
            if s == self.lateral_stage:
                lateral = x
        return self.decoder(lateral, x)


def _hw(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def block_probe(c_in: int, c_out: int, kernel: int, expand: int, se: bool, stride: int, in_stride: int,
                image: tuple[int, int]) -> Probe:
    size = feature_size(image, in_stride)
    return Probe(f"mbconv/k{kernel}/e{expand}/se{int(se)}/c{c_in}-{c_out}/s{stride}/{_hw(size)}",
                 lambda: MBConv(c_in, c_out, kernel, expand, se, stride), ((1, c_in, *size),))


def decoder_probe(c_lateral: int, c_last: int, channels: int, lateral_stride: int, last_stride: int,
                  image: tuple[int, int]) -> Probe:
    a, b = feature_size(image, lateral_stride), feature_size(image, last_stride)
    return Probe(f"mbdec/c{c_lateral}-{c_last}-{channels}/{_hw(a)}-{_hw(b)}",
                 lambda: TwoScaleDecoder(c_lateral, c_last, channels), ((1, c_lateral, *a), (1, c_last, *b)))


def body_probes(body: MBConvBody, stem_channels: int, head_channels: int, num_classes: int,
                image: tuple[int, int]) -> list[Probe]:
    """Every piece of the derived network, once per occurrence."""
    probes = [stem_probe(stem_channels, image),
              head_probe(body.decoder_channels, head_channels, num_classes, body.output_stride, image)]
    c = stem_channels
    for s, blocks in enumerate(body.stages):
        for j, b in enumerate(blocks):
            down = s > 0 and j == 0
            probes.append(block_probe(c, b.channels, b.kernel, b.expand, b.se, 2 if down else 1,
                                      body.stride(s - 1) if down else body.stride(s), image))
            c = b.channels
    last = len(body.stages) - 1
    probes.append(decoder_probe(body.stages[body.lateral_stage][-1].channels, c, body.decoder_channels,
                                body.output_stride, body.stride(last), image))
    return probes
