"""MBConv blocks, as in ProxylessNAS and FBNet: kernel, expansion, squeeze-excitation and width per layer.

A MobileNet-style macro-architecture (stem to 1/4, then stages at 1/4, 1/8, 1/16, 1/32 of
inverted-residual blocks, a fixed two-scale decoder, the head) with a searched micro-architecture:
each layer chooses its block and its output width, and layers after a stage's first may be skipped.
The whole space is this package (config, blocks, supernet and latency model, body) and its views
module `widgets/spaces/mbconv.py`.
"""

from __future__ import annotations

from workbench.nas.space import SearchSpace, register_space
from workbench.nas.spaces.mbconv.body import MBConvBody, MBConvNet, body_probes, parse_body
from workbench.nas.spaces.mbconv.config import MBConvConfig
from workbench.nas.spaces.mbconv.supernet import MBConvSupernet


@register_space
class MBConvSpace(SearchSpace):
    name = "mbconv"
    config = MBConvConfig
    arm_keys = ("skip",)

    def build_supernet(self, cfg, num_classes: int) -> MBConvSupernet:
        return MBConvSupernet(cfg.space, cfg.stem_channels, cfg.head_channels, num_classes, cfg.relaxation)

    def parse_body(self, body: dict, source: str) -> MBConvBody:
        return parse_body(body, source)

    def build_body(self, genotype) -> MBConvNet:
        return MBConvNet(genotype.body, genotype.stem_channels)

    def genotype_probes(self, genotype, image: tuple[int, int]) -> list:
        return body_probes(genotype.body, genotype.stem_channels, genotype.head_channels, genotype.num_classes, image)

    def summary(self, body: MBConvBody) -> dict:
        layers = [(s, j) for s, blocks in enumerate(body.stages) for j in range(len(blocks))]
        return {"depth": len(layers), "downsampling": [i for i, (s, j) in enumerate(layers) if s > 0 and j == 0]}
