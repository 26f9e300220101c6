"""DARTS machinery shared by the cell-based spaces (GAS/LGCNet cells, AutoRTNet hyper-cells).

`MixedOp` -> `SearchCell` -> `CellSupernet` (every edge of every cell a weighted sum of candidate
ops; one alpha per cell, cell-independent as GAS, or tied per cell kind DARTS-style when
`cell_sharing`), the optional GCN-guided module between consecutive cells' alphas, and the DARTS
derivation rule (`derive_cell`). A space supplies the cell specs; a subclass may supply its own
cells (`make_cell`), as the AutoRTNet trellis does for its mixed inputs.
"""

from __future__ import annotations

import torch
from torch import nn

from workbench.errors import GenotypeError
from workbench.nas.cells import CellBase, CellSpec, SegHead, Stem, feature_size
from workbench.nas.chain import CellGenotype, Edge
from workbench.nas.gcn import GCNGuide
from workbench.nas.operations import NONE, build_op
from workbench.nas.supernet import Supernet


class MixedOp(nn.Module):
    """Weighted sum of every candidate op on one edge; the zero op contributes nothing.

    `weights` is a tensor row (relaxed: every op runs) or, for one exact network on the shared
    weights (`exact_weights`), a list of floats: an op weighted 0 is not run, and an edge with no op
    gives None, so sampled single-path training costs about one network, not the supernet."""

    def __init__(self, ops: list[str], channels: int, stride: int):
        super().__init__()
        self.active = [i for i, name in enumerate(ops) if name != NONE]
        self.ops = nn.ModuleList(build_op(ops[i], channels, stride, affine=False) for i in self.active)

    def forward(self, x: torch.Tensor, weights: torch.Tensor | list[float]) -> torch.Tensor | None:
        if isinstance(weights, list):
            terms = [weights[i] * op(x) for i, op in zip(self.active, self.ops) if weights[i]]
            return sum(terms) if terms else None
        return sum(weights[i] * op(x) for i, op in zip(self.active, self.ops))


class SearchCell(CellBase):
    """Every (from, to) edge of the cell DAG is a MixedOp; all nodes are concatenated."""

    def __init__(self, spec: CellSpec, ops: list[str], preprocess: nn.ModuleList | None = None):
        super().__init__(spec, spec.node_ids(), affine=False, preprocess=preprocess)
        self.edge_list = spec.edges()
        self.edge_ops = nn.ModuleList(
            MixedOp(ops, spec.channels, spec.edge_stride if src < spec.n_inputs else 1)
            for src, _ in self.edge_list)

    def run_edge(self, k: int, x: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        return self.edge_ops[k](x, weights[k])

    def forward(self, inputs: list, in_size: tuple[int, int], weights) -> torch.Tensor | None:
        """CellBase's forward; with exact weights (nested lists) the unselected edges are skipped, a
        node no selected edge reaches is zeros, and a cell with no selected edge gives None."""
        if not isinstance(weights, list) or torch.is_tensor(weights[0]):
            return super().forward(inputs, in_size, weights)
        states = [None if x is None else pre(x, in_size) for pre, x in zip(self.preprocess, inputs)]
        for node in self.spec.node_ids():
            parts = [self.run_edge(k, states[self.edge_list[k][0]], weights) for k in self.incoming(node)
                     if any(weights[k]) and states[self.edge_list[k][0]] is not None]
            parts = [p for p in parts if p is not None]
            states.append(sum(parts) if parts else None)
        kept = [states[i] for i in self.concat]
        like = next((s for s in kept if s is not None), None)
        if like is None:
            return None
        return self.project(torch.cat([torch.zeros_like(like) if s is None else s for s in kept], dim=1))


class ArchParams(nn.Module):
    """Raw alphas; `cell_sharing` maps all normal cells to one tensor and all reduction cells to another."""

    def __init__(self, specs: list[CellSpec], n_ops: int, cell_sharing: bool, init_scale: float = 1e-3):
        super().__init__()
        self.keys = [spec.kind if cell_sharing and spec.kind in ("normal", "reduction") else f"cell{k}"
                     for k, spec in enumerate(specs)]
        self.alphas = nn.ParameterDict()
        for key, spec in zip(self.keys, specs):
            if key not in self.alphas:
                self.alphas[key] = nn.Parameter(init_scale * torch.randn(len(spec.edges()), n_ops))

    def per_cell(self) -> list[torch.Tensor]:
        return [self.alphas[key] for key in self.keys]


class CellSupernet(Supernet):
    """Stem (1/4) -> cells (chain cells, then any multi-input cell) -> light head; logits at the
    input size. The head reads the last spec. GCN guidance is optional (GAS, LGCNet)."""

    def __init__(self, specs: list[CellSpec], ops: list[str], stem_channels: int, head_channels: int,
                 num_classes: int, cell_sharing: bool = False, gcn: bool = False, gamma: float = 0.5,
                 gcn_hidden: int = 16, relaxation: str = "softmax"):
        super().__init__(relaxation)
        self.specs, self.ops = list(specs), list(ops)
        self.stem_channels, self.head_channels, self.num_classes = stem_channels, head_channels, num_classes
        self.gamma = gamma
        self.stem = Stem(stem_channels, affine=False)
        self.cells = nn.ModuleList(self.make_cell(k, spec) for k, spec in enumerate(self.specs))
        self.head = SegHead(self.specs[-1].channels, head_channels, num_classes)
        self.arch = ArchParams(self.specs, len(self.ops), cell_sharing)
        self.gcn = nn.ModuleList(
            GCNGuide(len(prev.edges()), len(spec.edges()), len(self.ops), gcn_hidden)
            for prev, spec in zip(self.specs, self.specs[1:])) if gcn else None

    def make_cell(self, k: int, spec: CellSpec) -> SearchCell:
        return SearchCell(spec, self.ops)

    def arch_parameters(self) -> list[nn.Parameter]:
        return list(self.arch.parameters()) + (list(self.gcn.parameters()) if self.gcn else [])

    def guided_alphas(self) -> list[torch.Tensor]:
        """alpha'_k = alpha_k + gamma * GCN(relax(alpha'_{k-1})); plain alphas without GCN."""
        raw = self.arch.per_cell()
        if self.gcn is None:
            return raw
        out = [raw[0]]
        for k in range(1, len(raw)):
            out.append(raw[k] + self.gamma * self.gcn[k - 1](self.relax(out[-1])))
        return out

    def arch_weights(self, sample: bool = False) -> list[torch.Tensor]:
        """Relaxed op weights per cell; `sample` draws Gumbel noise (training steps only)."""
        return [self.relax(a, sample) for a in self.guided_alphas()]

    def forward(self, x: torch.Tensor, weights: list[torch.Tensor] | None = None) -> torch.Tensor:
        if weights is None:
            weights = self.arch_weights(sample=self.training)
        size = tuple(x.shape[-2:])
        outs = {-1: self.stem(x)}
        for k, (cell, w) in enumerate(zip(self.cells, weights)):
            outs[k] = cell([outs[i] for i in cell.spec.inputs], feature_size(size, cell.spec.in_stride), w)
        return self.head(outs[len(self.cells) - 1], size)

    @torch.no_grad()
    def alpha_state(self) -> list[dict]:
        """Every cell's raw alpha, GCN-adjusted alpha and relaxed weights (the alphas.jsonl rows)."""
        raw, guided = self.arch.per_cell(), self.guided_alphas()
        weights = [self.relax(a) for a in guided]
        return [{"index": k, "kind": s.kind, "stride": s.stride, "ops": self.ops, "inputs": list(s.inputs),
                 "edges": [list(e) for e in s.edges()], "alpha": raw[k].tolist(),
                 "alpha_gcn": guided[k].tolist() if self.gcn is not None else None,
                 "weights": weights[k].tolist()}
                for k, s in enumerate(self.specs)]


def strongest_ops(weights, ops: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight, op index) of every edge's strongest op other than `none` (an edges x ops table)."""
    w = torch.as_tensor(weights).detach().float().cpu().clone()
    if NONE in ops and len(ops) > 1:
        w[:, ops.index(NONE)] = float("-inf")
    return w.max(dim=1)


def derive_cell(spec: CellSpec, weights: torch.Tensor, ops: list[str], keep: int = 2) -> CellGenotype:
    """The DARTS rule on one cell's (edges x ops) relaxed weights: per intermediate node keep the
    `keep` incoming edges whose strongest non-zero op weighs most, with that op on each. Ties go
    to the lower edge / op index, so the result is deterministic."""
    best_w, best_op = strongest_ops(weights, ops)
    edges = []
    for node in spec.node_ids():
        incoming = [k for k, (_, dst) in enumerate(spec.edges()) if dst == node]
        ranked = sorted(incoming, key=lambda k: (-best_w[k].item(), k))[:keep]
        for k in sorted(ranked):
            edges.append(Edge(spec.edges()[k][0], node, ops[int(best_op[k])]))
    return CellGenotype(spec.kind, spec.stride, spec.channels, spec.nodes, edges, spec.node_ids(),
                        index=spec.index, inputs=list(spec.inputs) if spec.index is None else None)


def encode_cell(spec: CellSpec, cell: CellGenotype, ops: list[str], where: str) -> torch.Tensor:
    """`derive_cell`'s inverse: the (edges x ops) one-hot weights that select exactly `cell`'s edges,
    each with its op (a GenotypeError naming `where` for an edge or op this cell does not have)."""
    edges = spec.edges()
    weights = torch.zeros(len(edges), len(ops))
    for e in cell.edges:
        if (e.src, e.dst) not in edges or e.op not in ops:
            raise GenotypeError(f"{where}: edge {e.src}->{e.dst} {e.op!r} is not in this supernet's cell")
        weights[edges.index((e.src, e.dst)), ops.index(e.op)] = 1.0
    return weights
