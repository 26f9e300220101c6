"""LGCNet's dense-connected fusion cell: long-range, multi-level aggregation searched like a cell.

The fusion cell reads the outputs of many cells at several depths and scales, resizes each to one
common scale (avg-pool down / bilinear up, then a 1x1 conv, see `cells.Preprocess`), and connects
them densely: every fusion node has a searched mixed-op edge from every input and every earlier
node. Its concatenated nodes feed the head. It is a `CellSpec` of kind "fusion", so the supernet,
the derivation rule, the latency table and the genotype treat it like any other cell; AutoRTNet's
aggregation cell is the same construction with kind "aggregation".
"""

from __future__ import annotations

from workbench.errors import ConfigError
from workbench.nas.cells import CellSpec, multi_input_spec


def fusion_inputs(requested: list[int], n_cells: int) -> list[int]:
    """Default: every cell (all depths and scales). Negative indices count from the end; -1 = last."""
    if not requested:
        return list(range(n_cells))
    out = []
    for i in requested:
        j = i + n_cells if i < 0 else i
        if not 0 <= j < n_cells:
            raise ConfigError(f"fusion_inputs: cell {i} does not exist (the supernet has {n_cells} cells)")
        out.append(j)
    return sorted(set(out))


def fusion_spec(cells: list[CellSpec], stem_channels: int, inputs: list[int], stride: int,
                channels: int, nodes: int, kind: str = "fusion") -> CellSpec:
    return multi_input_spec(kind, fusion_inputs(inputs, len(cells)), cells, stem_channels,
                            stride, channels, nodes)
