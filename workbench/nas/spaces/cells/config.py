"""Settings of the GAS / LGCNet space: a chain of DARTS cells, GCN guidance, LGCNet's fusion cell."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from workbench.config import field
from workbench.errors import ConfigError
from workbench.nas.cells import STEM_STRIDE
from workbench.nas.operations import DEFAULT_OPS, NONE, OPS, canonical_op
from workbench.nas.space import SpaceConfig


def check_ops(ops: list[str]) -> list[str]:
    """Canonical op names; ConfigError on an unknown op, a repeat, or nothing besides 'none'."""
    bad = [o for o in ops if canonical_op(o) not in OPS]
    if bad:
        raise ConfigError(f"ops: unknown op {bad[0]!r} (known: {', '.join(OPS)})")
    ops = [canonical_op(o) for o in ops]
    if not [o for o in ops if o != NONE] or len(set(ops)) != len(ops):
        raise ConfigError("ops: need distinct ops and at least one besides 'none'")
    return ops


@dataclass
class CellsConfig(SpaceConfig):
    name: str = field("cells", help="the GAS / LGCNet chain of cells")
    ops: list[str] = field(default_factory=lambda: list(DEFAULT_OPS), help="candidate op names")
    num_cells: int = field(6, min=1, max=64, help="cells in the chain; papers use 8-16")
    reductions: list[int] = field(default_factory=lambda: [0, 2, 4],
                                  help="indices of reduction cells (stride 1/8, 1/16, 1/32)")
    channels: int = field(16, min=1, help="channels of cell 0; doubled at every later reduction cell")
    nodes: int = field(3, min=1, max=16, help="intermediate nodes per cell")
    cell_sharing: bool = field(False, help="tie alphas DARTS-style (one normal, one reduction)")
    gcn: bool = field(True, help="GCN-guided module between consecutive cells' alphas")
    gamma: float = field(0.5, min=0.0, help="alpha'_k = alpha_k + gamma * GCN(alpha'_{k-1})")
    gcn_hidden: int = field(16, min=1)
    fusion: bool = field(False, help="LGCNet dense-connected fusion cell before the head")
    fusion_inputs: list[int] = field(default_factory=list, help="cells fused (empty = all)")
    fusion_stride: int = field(8, min=4)
    fusion_channels: int = field(32, min=1)
    fusion_nodes: int = field(2, min=1)

    ALIASES: ClassVar[dict[str, str]] = {}

    def validate(self) -> None:
        self.ops = check_ops(self.ops)
        if any(not 0 <= r < self.num_cells for r in self.reductions) or len(set(self.reductions)) != len(self.reductions):
            raise ConfigError(f"reductions: {self.reductions} must be distinct cell indices < num_cells={self.num_cells}")
        if self.fusion_stride & (self.fusion_stride - 1):
            raise ConfigError(f"fusion_stride: must be a power of two, got {self.fusion_stride}")

    def layout(self) -> list[tuple[str, int, int]]:
        """(kind, channels, nodes) per cell: channels double at every reduction cell after cell 0."""
        out, c = [], self.channels
        for k in range(self.num_cells):
            kind = "reduction" if k in self.reductions else "normal"
            if kind == "reduction" and k > 0:
                c *= 2
            out.append((kind, c, self.nodes))
        return out

    def size_divisor(self) -> int:
        return max([STEM_STRIDE * 2 ** len(self.reductions)] + ([self.fusion_stride] if self.fusion else []))
