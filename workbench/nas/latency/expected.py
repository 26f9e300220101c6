"""Expected latency, differentiable in the architecture weights, and the latency loss.

For a supernet of DARTS cells (an estimate of the derived network's latency):

    E[L] = stem + head + sum_cells [ fixed_k + sum_edges keep(e) * sum_ops p_k(e, op) * LUT(op at e) ]

fixed_k = preprocessing + one addition per node + output conv; keep(e) = min(2, d)/d for an edge
into a node with d incoming edges, because derivation keeps two edges per node.

p_k(e, op) is the op's weight among the ops derivation can pick (every op but `none`,
renormalized): the zero op costs nothing, but derivation never keeps it either, so crediting it
would let the latency gradient pile onto `none` and land nowhere. With the renormalization the
latency term moves weight only between derivable ops (its gradient on `none` is zero).
"""

from __future__ import annotations

import torch
from torch import nn

from workbench.nas.cells import CellSpec
from workbench.nas.latency.probes import cell_fixed_probes, head_probe, kept_edges, op_probe, stem_probe
from workbench.nas.latency.table import calibration_scale, lookup
from workbench.nas.operations import NONE


def derivable(weights: torch.Tensor, ops: list[str]) -> torch.Tensor:
    """Op weights renormalized over the ops derivation can pick (all but `none`)."""
    if NONE not in ops or len(ops) < 2:
        return weights
    keep = torch.ones(len(ops), dtype=weights.dtype, device=weights.device)
    keep[ops.index(NONE)] = 0.0
    w = weights * keep
    return w / w.sum(dim=-1, keepdim=True).clamp_min(1e-12)


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
        self.ops = list(ops)
        self.register_buffer("table", scale * torch.cat(tables))  # (all edges, ops)
        self.fixed_ms = scale * fixed

    def forward(self, weights: list[torch.Tensor]) -> torch.Tensor:
        return self.fixed_ms + (derivable(torch.cat(weights), self.ops) * self.table).sum()

    def uniform(self) -> torch.Tensor:
        """E[latency] with every derivable op equally likely (the scale of the target-free term)."""
        n = self.table.shape[1]
        return self(torch.full((self.table.shape[0], n), 1.0 / n, device=self.table.device).split(self.table.shape[0]))


def latency_term(expected_ms: torch.Tensor, reference_ms: float, target_ms: float | None,
                 mode: str = "above") -> torch.Tensor:
    """Scale-free latency loss: L / L0 without a target; max(0, L/T - 1) ('above') or |L/T - 1| ('abs')."""
    if target_ms is None:
        return expected_ms / reference_ms
    ratio = expected_ms / target_ms - 1.0
    return torch.relu(ratio) if mode == "above" else ratio.abs()
