"""The discrete network rebuilt from a genotype alone (for retraining, benchmarking, export).

`build_network(genotype)` -> stem (1/4) -> chain of cells -> optional fusion / aggregation cell ->
light head -> logits at the input size. timm-like surface: `forward_features`, `forward_head`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from workbench.errors import GenotypeError
from workbench.nas.cells import CellBase, CellSpec, SegHead, Stem, chain_specs, feature_size, multi_input_spec
from workbench.nas.genotypes import CellGenotype, Genotype, load_genotype
from workbench.nas.operations import build_op


class DiscreteCell(CellBase):
    """A cell with the edges a genotype kept, one op per edge."""

    def __init__(self, spec: CellSpec, cell: CellGenotype):
        super().__init__(spec, cell.concat, affine=True)
        self.edge_list = [(e.src, e.dst) for e in cell.edges]
        self.edge_ops = nn.ModuleList(
            build_op(e.op, spec.channels, spec.edge_stride if e.src < spec.n_inputs else 1)
            for e in cell.edges)

    def run_edge(self, k: int, x: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        return self.edge_ops[k](x)


def genotype_specs(g: Genotype) -> tuple[list[CellSpec], CellSpec | None, CellSpec | None]:
    """Cell specs (chain, fusion, aggregation) implied by a genotype."""
    cells = chain_specs([(c.kind, c.channels, c.nodes) for c in g.cells], g.stem_channels)
    extra = []
    for cell in (g.fusion, g.aggregation):
        extra.append(None if cell is None else multi_input_spec(
            cell.kind, cell.inputs, cells, g.stem_channels, cell.stride, cell.channels, cell.nodes))
    return cells, extra[0], extra[1]


class SegNetwork(nn.Module):
    def __init__(self, genotype: Genotype, num_classes: int):
        super().__init__()
        self.genotype = genotype
        self.num_classes = num_classes
        specs, fusion, aggregation = genotype_specs(genotype)
        self.specs = specs
        self.stem = Stem(genotype.stem_channels)
        self.cells = nn.ModuleList(DiscreteCell(s, c) for s, c in zip(specs, genotype.cells))
        self.fusion = DiscreteCell(fusion, genotype.fusion) if fusion else None
        self.aggregation = DiscreteCell(aggregation, genotype.aggregation) if aggregation else None
        last = aggregation or fusion or (specs[-1] if specs else None)
        self.output_stride = last.stride if last else 4
        self.num_features = last.channels if last else genotype.stem_channels
        self.head = SegHead(self.num_features, genotype.head_channels, num_classes)
        self.default_cfg = {"input_size": (3, *genotype.input_size), "num_classes": num_classes,
                            "preset": genotype.preset}

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        size = tuple(x.shape[-2:])
        outs = {-1: self.stem(x)}
        for k, cell in enumerate(self.cells):
            spec = cell.spec
            outs[k] = cell([outs[i] for i in spec.inputs], feature_size(size, spec.in_stride))
        feat = outs[len(self.cells) - 1]
        for cell in (self.fusion, self.aggregation):
            if cell is not None:
                feat = cell([outs[i] for i in cell.spec.inputs], feature_size(size, cell.spec.in_stride))
        return feat

    def forward_head(self, features: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return self.head(features, size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x), tuple(x.shape[-2:]))


def build_network(genotype: Genotype | str | Path | dict, num_classes: int | None = None) -> SegNetwork:
    """Discrete network from a genotype (object, dict or genotype.json path)."""
    g = load_genotype(genotype)
    try:
        return SegNetwork(g, int(num_classes or g.num_classes))
    except (RuntimeError, ValueError, KeyError) as exc:
        raise GenotypeError(f"genotype ({g.preset}): does not build a network ({exc})") from None
