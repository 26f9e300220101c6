"""Derivation: relaxed architecture weights -> discrete genotype (the DARTS rule).

For every intermediate node keep the two incoming edges whose strongest non-zero op weighs most,
and put that op (argmax over ops except `none`) on each. Every intermediate node is concatenated
into the cell output, as in the supernet. Ties break towards the lower edge / op index, so the
result is deterministic.
"""

from __future__ import annotations

import torch

from workbench.nas.cells import CellSpec
from workbench.nas.genotypes import CellGenotype, Edge, Genotype
from workbench.nas.operations import NONE


def derive_cell(spec: CellSpec, weights: torch.Tensor, ops: list[str], keep: int = 2) -> CellGenotype:
    """Discrete cell from one cell's (edges x ops) relaxed weights."""
    w = weights.detach().float().cpu().clone()
    if NONE in ops:
        w[:, ops.index(NONE)] = float("-inf")
    best_w, best_op = w.max(dim=1)
    edges = []
    for node in spec.node_ids():
        incoming = [k for k, (_, dst) in enumerate(spec.edges()) if dst == node]
        ranked = sorted(incoming, key=lambda k: (-best_w[k].item(), k))[:keep]
        for k in sorted(ranked):
            edges.append(Edge(spec.edges()[k][0], node, ops[int(best_op[k])]))
    return CellGenotype(spec.kind, spec.stride, spec.channels, spec.nodes, edges, spec.node_ids(),
                        index=spec.index, inputs=list(spec.inputs) if spec.index is None else None)


def derive_genotype(specs: list[CellSpec], weights: list[torch.Tensor], ops: list[str], *, preset: str,
                    num_classes: int, input_size: tuple[int, int], stem_channels: int,
                    head_channels: int, expected_latency_ms: float | None = None) -> Genotype:
    """Genotype of a supernet: chain cells, then the optional fusion / aggregation cell."""
    cells = [derive_cell(s, w, ops) for s, w in zip(specs, weights)]
    chain = [c for c in cells if c.kind in ("normal", "reduction")]
    multi = {c.kind: c for c in cells if c.kind in ("fusion", "aggregation")}
    return Genotype(preset=preset, num_classes=num_classes, input_size=tuple(input_size),
                    stem_channels=stem_channels, head_channels=head_channels, ops=list(ops),
                    cells=chain, fusion=multi.get("fusion"), aggregation=multi.get("aggregation"),
                    expected_latency_ms=expected_latency_ms)
