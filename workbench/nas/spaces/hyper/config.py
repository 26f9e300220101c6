"""Settings of the AutoRTNet space: the hyper-cell trellis and its aggregation cell."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from workbench.config import field
from workbench.errors import ConfigError
from workbench.nas.cells import STEM_STRIDE
from workbench.nas.operations import DEFAULT_OPS
from workbench.nas.space import SpaceConfig
from workbench.nas.spaces.cells.config import check_ops


@dataclass
class HyperConfig(SpaceConfig):
    name: str = field("hyper", help="AutoRTNet's hyper-cell trellis")
    ops: list[str] = field(default_factory=lambda: list(DEFAULT_OPS), help="candidate op names")
    layers: int = field(6, min=1, max=64, help="hyper-cell layers of the trellis (the deepest network)")
    output_stride: int = field(32, min=8, help="output stride every searched path reaches")
    channels: int = field(16, min=1, help="channels at 1/4 and 1/8, doubled at every coarser scale")
    nodes: int = field(2, min=1, max=16, help="intermediate nodes per cell")
    cell_sharing: bool = field(False, help="tie alphas DARTS-style (one normal, one reduction)")
    prune_threshold: float = field(0.5, min=0.0, max=1.0,
                                   help="prune a layer that stays when p(prune)/(p(keep)+p(prune)) exceeds this")
    aggregation: bool = field(True, help="searched aggregation cell over the path's multi-scale outputs")
    aggregation_strides: list[int] = field(default_factory=lambda: [8, 16],
                                           help="candidate strides of the aggregation cell")
    aggregation_channels: int = field(32, min=1)
    aggregation_nodes: int = field(2, min=1)

    ALIASES: ClassVar[dict[str, str]] = {"num_cells": "layers", "hyper_output_stride": "output_stride",
                                         "hyper_prune_threshold": "prune_threshold"}

    def validate(self) -> None:
        self.ops = check_ops(self.ops)
        os_ = self.output_stride
        if os_ & (os_ - 1):
            raise ConfigError(f"output_stride: must be a power of two >= 8, got {os_}")
        downs = int(math.log2(os_ // STEM_STRIDE))
        if self.layers < downs:
            raise ConfigError(f"layers: {self.layers} hyper-cell layers cannot reach output stride {os_} "
                              f"(needs at least {downs} downsampling layers)")
        scales = [STEM_STRIDE * 2 ** i for i in range(downs + 1)]
        if self.aggregation and (not self.aggregation_strides
                                 or any(s not in scales for s in self.aggregation_strides)):
            raise ConfigError(f"aggregation_strides: {self.aggregation_strides} must be non-empty and within "
                              f"the trellis scales {scales}")

    def size_divisor(self) -> int:
        return max([self.output_stride] + (list(self.aggregation_strides) if self.aggregation else []))
