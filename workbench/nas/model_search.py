"""The supernet: MixedOp -> SearchCell -> Supernet (DARTS structure, GAS/LGCNet additions).

Architecture parameters live in `ArchParams`: one alpha (edges x ops) per cell (cell-independent,
GAS), or one per cell kind when `cell_sharing` ties them (DARTS). `Supernet.cell_weights()` turns
them into the relaxed op weights every cell uses: optional GCN guidance (gcn.py), then softmax or
Gumbel-softmax at temperature `tau`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from workbench.nas.cells import CellBase, CellSpec, SegHead, Stem, feature_size
from workbench.nas.derive import derive_genotype
from workbench.nas.gcn import GCNGuide
from workbench.nas.genotypes import Genotype
from workbench.nas.latency import LatencyModel, supernet_probes
from workbench.nas.operations import NONE, build_op


class MixedOp(nn.Module):
    """Weighted sum of every candidate op on one edge; the zero op contributes nothing."""

    def __init__(self, ops: list[str], channels: int, stride: int):
        super().__init__()
        self.active = [i for i, name in enumerate(ops) if name != NONE]
        self.ops = nn.ModuleList(build_op(ops[i], channels, stride, affine=False) for i in self.active)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return sum(weights[i] * op(x) for i, op in zip(self.active, self.ops))


class SearchCell(CellBase):
    """Every (from, to) edge of the cell DAG is a MixedOp; all nodes are concatenated."""

    def __init__(self, spec: CellSpec, ops: list[str]):
        super().__init__(spec, spec.node_ids(), affine=False)
        self.edge_list = spec.edges()
        self.edge_ops = nn.ModuleList(
            MixedOp(ops, spec.channels, spec.edge_stride if src < spec.n_inputs else 1)
            for src, _ in self.edge_list)

    def run_edge(self, k: int, x: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        return self.edge_ops[k](x, weights[k])


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


class Supernet(nn.Module):
    """Stem (1/4) -> cells (+ optional fusion cell) -> light head; logits at the input size.

    `specs` are the chain cells followed by any multi-input cells (fusion/aggregation); the head
    reads the last spec. Weight parameters: `weight_parameters()`; architecture parameters
    (alphas and the GCN module): `arch_parameters()`.
    """

    def __init__(self, specs: list[CellSpec], ops: list[str], stem_channels: int, head_channels: int,
                 num_classes: int, cell_sharing: bool = False, gcn: bool = True, gamma: float = 0.5,
                 gcn_hidden: int = 16, relaxation: str = "softmax"):
        super().__init__()
        self.specs, self.ops = list(specs), list(ops)
        self.stem_channels, self.head_channels, self.num_classes = stem_channels, head_channels, num_classes
        self.relaxation, self.gamma, self.tau = relaxation, gamma, 1.0
        self.stem = Stem(stem_channels, affine=False)
        self.cells = nn.ModuleList(SearchCell(spec, self.ops) for spec in self.specs)
        self.head = SegHead(self.specs[-1].channels, head_channels, num_classes)
        self.arch = ArchParams(self.specs, len(self.ops), cell_sharing)
        self.gcn = nn.ModuleList(
            GCNGuide(len(prev.edges()), len(spec.edges()), len(self.ops), gcn_hidden)
            for prev, spec in zip(self.specs, self.specs[1:])) if gcn else None

    # -- architecture ----------------------------------------------------------------------------
    def arch_parameters(self) -> list[nn.Parameter]:
        return list(self.arch.parameters()) + (list(self.gcn.parameters()) if self.gcn else [])

    def weight_parameters(self) -> list[nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def relax(self, alpha: torch.Tensor, sample: bool = False) -> torch.Tensor:
        if self.relaxation == "gumbel":
            return F.gumbel_softmax(alpha, tau=self.tau, dim=-1) if sample else torch.softmax(alpha / self.tau, -1)
        return torch.softmax(alpha, dim=-1)

    def guided_alphas(self) -> list[torch.Tensor]:
        """alpha'_k = alpha_k + gamma * GCN(relax(alpha'_{k-1})); plain alphas without GCN."""
        raw = self.arch.per_cell()
        if self.gcn is None:
            return raw
        out = [raw[0]]
        for k in range(1, len(raw)):
            out.append(raw[k] + self.gamma * self.gcn[k - 1](self.relax(out[-1])))
        return out

    def cell_weights(self, sample: bool = False) -> list[torch.Tensor]:
        """Relaxed op weights per cell; `sample` draws Gumbel noise (training steps only)."""
        return [self.relax(a, sample) for a in self.guided_alphas()]

    # -- forward ---------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, weights: list[torch.Tensor] | None = None) -> torch.Tensor:
        if weights is None:
            weights = self.cell_weights(sample=self.training)
        size = tuple(x.shape[-2:])
        outs = {-1: self.stem(x)}
        for k, (cell, w) in enumerate(zip(self.cells, weights)):
            outs[k] = cell([outs[i] for i in cell.spec.inputs], feature_size(size, cell.spec.in_stride), w)
        return self.head(outs[len(self.cells) - 1], size)

    # -- hooks the search loop uses (a subclass, e.g. a hyper-cell trellis, overrides them) ----------
    def lut_probes(self, image: tuple[int, int]) -> list:
        """Every piece the latency table must time for this supernet and its derived networks."""
        return supernet_probes(self.specs, self.ops, self.stem_channels, self.head_channels,
                               self.num_classes, image)

    def latency_model(self, lut: dict) -> LatencyModel:
        """Differentiable E[latency] over `cell_weights()`."""
        return LatencyModel(lut, self.specs, self.ops, self.stem_channels, self.head_channels, self.num_classes)

    def expected_latency(self, latency: LatencyModel, sample: bool = False) -> torch.Tensor:
        return latency(self.cell_weights(sample=sample))

    def derive(self, preset: str, input_size: tuple[int, int]) -> Genotype:
        """The DARTS rule on the noise-free relaxed weights (derive.py)."""
        return derive_genotype(self.specs, self.cell_weights(sample=False), self.ops, preset=preset,
                               num_classes=self.num_classes, input_size=input_size,
                               stem_channels=self.stem_channels, head_channels=self.head_channels)

    @torch.no_grad()
    def random_genotypes(self, count: int, seed: int, preset: str, input_size: tuple[int, int]) -> list[Genotype]:
        """Genotypes derived from random architecture parameters (latency calibration, benchmarks)."""
        saved = {k: v.detach().clone() for k, v in self.arch.state_dict().items()}
        gen = torch.Generator().manual_seed(seed)
        out = []
        for _ in range(count):
            for p in self.arch.parameters():
                p.copy_(2.0 * torch.randn(p.shape, generator=gen))
            out.append(self.derive(preset, input_size))
        self.arch.load_state_dict(saved)
        return out

    def hyper_state(self) -> dict | None:
        """The alphas.jsonl "hyper" entry: null for a fixed chain of cells."""
        return None

    @torch.no_grad()
    def alpha_state(self) -> list[dict]:
        """Every cell's raw alpha, GCN-adjusted alpha and relaxed weights (the alphas.jsonl rows)."""
        raw, guided = self.arch.per_cell(), self.guided_alphas()
        weights = [self.relax(a) for a in guided]
        return [{"index": k, "kind": s.kind, "stride": s.stride, "ops": self.ops,
                 "edges": [list(e) for e in s.edges()], "alpha": raw[k].tolist(),
                 "alpha_gcn": guided[k].tolist() if self.gcn is not None else None,
                 "weights": weights[k].tolist()}
                for k, s in enumerate(self.specs)]
