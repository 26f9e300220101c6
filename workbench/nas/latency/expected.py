"""Expected latency, differentiable in the architecture weights, and the latency loss.

For a supernet of DARTS cells (an estimate of the derived network's latency):

    E[L] = stem + head + sum_cells [ fixed_k + sum_edges keep(e) * sum_ops p_k(e, op) * LUT(op at e) ]

fixed_k = preprocessing + one addition per node + output conv; keep(e) = min(2, d)/d for an edge
into a node with d incoming edges, because derivation keeps two edges per node. The zero op costs 0.
"""

from __future__ import annotations

import torch
from torch import nn

from workbench.nas.cells import CellSpec
from workbench.nas.latency.probes import cell_fixed_probes, head_probe, kept_edges, op_probe, stem_probe
from workbench.nas.latency.table import calibration_scale, lookup
from workbench.nas.operations import NONE


class LatencyModel(nn.Module):
    """E[latency] of a supernet as a differentiable function of its relaxed op weights."""

    def __init__(self, lut: dict, specs: list[CellSpec], ops: list[str], stem_channels: int,
                 head_channels: int, num_classes: int):
        super().__init__()
        image = tuple(lut["input_size"])
        fixed = lookup(lut, stem_probe(stem_channels, image))
        fixed += lookup(lut, head_probe(specs[-1].channels, head_channels, num_classes, specs[-1].stride, image))
        tables = []
        for spec in specs:
            edges = spec.edges()
            indeg = {n: sum(d == n for _, d in edges) for n in spec.node_ids()}
            fixed += sum(lookup(lut, p) for p in cell_fixed_probes(
                spec, image, sum(kept_edges(d) - 1 for d in indeg.values()), spec.nodes))
            table = torch.zeros(len(edges), len(ops))
            for e, (src, dst) in enumerate(edges):
                keep = kept_edges(indeg[dst]) / indeg[dst]
                for o, op in enumerate(ops):
                    if op != NONE:
                        table[e, o] = keep * lookup(lut, op_probe(spec, src, op, image))
            tables.append(table)
        scale = calibration_scale(lut)
        self.register_buffer("table", scale * torch.cat(tables))  # (all edges, ops)
        self.fixed_ms = scale * fixed

    def forward(self, weights: list[torch.Tensor]) -> torch.Tensor:
        return self.fixed_ms + (torch.cat(weights) * self.table).sum()

    def uniform(self) -> torch.Tensor:
        """E[latency] with every op equally likely (the scale of the target-free latency term)."""
        return self.fixed_ms + self.table.mean(dim=1).sum()


def latency_term(expected_ms: torch.Tensor, reference_ms: float, target_ms: float | None,
                 mode: str = "above") -> torch.Tensor:
    """Scale-free latency loss: L / L0 without a target; max(0, L/T - 1) ('above') or |L/T - 1| ('abs')."""
    if target_ms is None:
        return expected_ms / reference_ms
    ratio = expected_ms / target_ms - 1.0
    return torch.relu(ratio) if mode == "above" else ratio.abs()
