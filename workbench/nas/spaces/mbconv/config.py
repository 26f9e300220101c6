"""Settings of the MBConv space: stages of inverted-residual blocks, searched per layer."""

from __future__ import annotations

from dataclasses import dataclass

from workbench.config import field
from workbench.errors import ConfigError
from workbench.nas.cells import STEM_STRIDE
from workbench.nas.space import SpaceConfig


@dataclass
class MBConvConfig(SpaceConfig):
    name: str = field("mbconv", help="ProxylessNAS / FBNet-style MBConv blocks")
    widths: list[int] = field(default_factory=lambda: [16, 24, 40, 80],
                              help="output channels of each stage; stage 0 at 1/4, each later one halves the size")
    depths: list[int] = field(default_factory=lambda: [1, 2, 3, 2], help="searched layers per stage")
    kernels: list[int] = field(default_factory=lambda: [3, 5], help="depthwise kernel sizes to choose from")
    expansions: list[int] = field(default_factory=lambda: [3, 6], help="expansion ratios to choose from")
    se: list[bool] = field(default_factory=lambda: [False, True], help="squeeze-excitation off / on")
    width_multipliers: list[float] = field(default_factory=lambda: [0.5, 1.0],
                                           help="per-layer output width, as fractions of the stage's channels")
    skip: bool = field(True, help="layers after a stage's first may be skipped (searched depth)")
    lateral_stage: int = field(1, min=0, help="stage whose output joins the decoder at its stride (1 = 1/8)")
    decoder_channels: int = field(32, min=1, help="channels of the fixed two-scale decoder before the head")

    def validate(self) -> None:
        if not self.widths or len(self.widths) != len(self.depths):
            raise ConfigError(f"depths: one depth per stage width, got widths {self.widths}, depths {self.depths}")
        if any(w < 1 for w in self.widths) or any(d < 1 for d in self.depths) or sum(self.depths) > 64:
            raise ConfigError("widths/depths: positive, at most 64 layers in all")
        if not self.kernels or any(k < 1 or k % 2 == 0 for k in self.kernels):
            raise ConfigError(f"kernels: odd sizes >= 1, got {self.kernels}")
        if not self.expansions or any(e < 1 for e in self.expansions):
            raise ConfigError(f"expansions: ratios >= 1, got {self.expansions}")
        if not self.se or len(set(self.se)) != len(self.se):
            raise ConfigError(f"se: distinct values of false / true, got {self.se}")
        if not self.width_multipliers or any(not 0 < m <= 1 for m in self.width_multipliers):
            raise ConfigError(f"width_multipliers: fractions in (0, 1], got {self.width_multipliers}")
        if not 0 <= self.lateral_stage < len(self.widths):
            raise ConfigError(f"lateral_stage: a stage index below {len(self.widths)}, got {self.lateral_stage}")

    def stage_stride(self, s: int) -> int:
        return STEM_STRIDE * 2 ** s

    def size_divisor(self) -> int:
        return self.stage_stride(len(self.widths) - 1)

    def block_choices(self) -> list[tuple[int, int, bool]]:
        """(kernel, expansion, se) of every candidate block, in a fixed order."""
        return [(k, e, s) for k in self.kernels for e in self.expansions for s in self.se]

    def channels(self, stage: int, multiplier: float) -> int:
        return max(1, round(self.widths[stage] * multiplier))
