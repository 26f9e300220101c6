"""The discrete body of the cell-based spaces: a chain of DARTS cells, then a multi-input cell.

Body format (inside genotype.json's "body"):

    {"ops": [searched op set],
     "cells": [{"index": 0, "kind": "normal"|"reduction", "stride": 8, "channels": 32, "nodes": 3,
                "edges": [{"from": 0, "to": 2, "op": "sep_conv_3x3"}, ...], "concat": [2, 3, 4]}],
     "fusion" | "aggregation": null or {"kind", "stride", "channels", "inputs": [cell indices],
                                        "nodes", "edges", "concat"}}

Cells form a chain from the stem (stride 4): cell k reads the outputs of cells k-2 and k-1 (the
stem stands in for missing ones); node ids 0 and 1 are those inputs, 2..nodes+1 its intermediate
nodes. A reduction cell doubles the stride (its edges from the inputs have stride 2), a normal cell
keeps it. A multi-input cell (LGCNet's fusion, AutoRTNet's aggregation) reads the cells listed in
"inputs" (-1 = the stem), resized to its stride; node ids 0..len(inputs)-1 are those inputs, then
its nodes. The head reads the multi-input cell if present, else the last cell. Every malformed
field raises GenotypeError naming the source and the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from workbench.errors import GenotypeError
from workbench.nas.cells import CellBase, CellSpec, chain_specs, feature_size, multi_input_spec
from workbench.nas.latency.probes import Probe, cell_fixed_probes, head_probe, op_probe, stem_probe
from workbench.nas.operations import NONE, OPS, build_op, canonical_op

CHAIN_KINDS = ("normal", "reduction")
MULTI_KINDS = ("fusion", "aggregation")


@dataclass(frozen=True)
class Edge:
    src: int
    dst: int
    op: str


@dataclass
class CellGenotype:
    kind: str
    stride: int
    channels: int
    nodes: int
    edges: list[Edge]
    concat: list[int]
    index: int | None = None          # chain cells only
    inputs: list[int] | None = None   # fusion/aggregation cells only (-1 = stem)

    @property
    def n_inputs(self) -> int:
        return 2 if self.kind in CHAIN_KINDS else len(self.inputs or [])

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"index": self.index} if self.kind in CHAIN_KINDS else {}
        d.update(kind=self.kind, stride=self.stride, channels=self.channels)
        if self.kind in MULTI_KINDS:
            d["inputs"] = list(self.inputs or [])
        d.update(nodes=self.nodes, edges=[{"from": e.src, "to": e.dst, "op": e.op} for e in self.edges],
                 concat=list(self.concat))
        return d


@dataclass
class ChainBody:
    """Chain cells and the optional multi-input cell the head reads (`fusion` or `aggregation`)."""

    ops: list[str]
    cells: list[CellGenotype]
    fusion: CellGenotype | None = None
    aggregation: CellGenotype | None = None
    extra: dict = field(default_factory=dict)  # space-specific keys, kept on round trip

    @property
    def multi(self) -> CellGenotype | None:
        return self.aggregation or self.fusion

    @property
    def output_stride(self) -> int:
        last = self.multi or (self.cells[-1] if self.cells else None)
        return last.stride if last else 4

    def to_dict(self) -> dict:
        out = {"ops": list(self.ops), "cells": [c.to_dict() for c in self.cells]}
        for key in MULTI_KINDS:
            cell = getattr(self, key)
            if cell is not None:
                out[key] = cell.to_dict()
        return {**out, **self.extra}

    def lines(self) -> list[str]:
        out = []
        for c in self.cells + [c for c in (self.fusion, self.aggregation) if c]:
            name = f"cell {c.index}" if c.kind in CHAIN_KINDS else c.kind
            edges = ", ".join(f"{e.src}->{e.dst}:{e.op}" for e in c.edges)
            out.append(f"{name} ({c.kind}, 1/{c.stride}, {c.channels}ch): {edges}")
        return out


# -- reading ----------------------------------------------------------------------------------
def need(d: dict, key: str, types: type | tuple, where: str) -> Any:
    """d[key] of the given type(s), or GenotypeError naming where and the field."""
    if not isinstance(d, dict) or key not in d:
        raise GenotypeError(f"{where}: missing field {key!r}")
    value = d[key]
    if not isinstance(value, types) or isinstance(value, bool) and types is not bool:
        raise GenotypeError(f"{where}: field {key!r} has the wrong type ({type(value).__name__})")
    return value


def _parse_cell(d: dict, where: str, ops: list[str], chain: bool, n_cells: int, kinds: tuple[str, ...]
                ) -> CellGenotype:
    if not isinstance(d, dict):
        raise GenotypeError(f"{where}: expected an object")
    kind = need(d, "kind", str, where)
    if kind not in kinds:
        raise GenotypeError(f"{where}: unknown cell kind {kind!r} (expected {' or '.join(kinds)})")
    stride = need(d, "stride", int, where)
    if stride < 4 or stride & (stride - 1):
        raise GenotypeError(f"{where}: stride must be a power of two >= 4, got {stride}")
    channels = need(d, "channels", int, where)
    nodes = need(d, "nodes", int, where)
    if channels < 1 or nodes < 1:
        raise GenotypeError(f"{where}: channels and nodes must be positive")
    inputs = None
    if chain:
        index = need(d, "index", int, where)
        n_in = 2
    else:
        index = None
        inputs = [int(i) for i in need(d, "inputs", list, where)]
        if not inputs or any(i < -1 or i >= n_cells for i in inputs):
            raise GenotypeError(f"{where}: inputs {inputs} must name cells 0..{n_cells - 1} or -1 (stem)")
        n_in = len(inputs)
    n_total = n_in + nodes
    edges = []
    for j, e in enumerate(need(d, "edges", list, where)):
        ew = f"{where}.edges[{j}]"
        src, dst, op = need(e, "from", int, ew), need(e, "to", int, ew), need(e, "op", str, ew)
        op = canonical_op(op)
        if op not in OPS or op == NONE:
            raise GenotypeError(f"{ew}: unknown op {op!r} (known: {', '.join(o for o in OPS if o != NONE)})")
        if op not in ops:
            raise GenotypeError(f"{ew}: op {op!r} is not in the genotype's op set")
        if not (n_in <= dst < n_total) or not (0 <= src < dst):
            raise GenotypeError(f"{ew}: edge {src}->{dst} refers to a non-existent node "
                                f"(inputs 0..{n_in - 1}, nodes {n_in}..{n_total - 1}, from < to)")
        edges.append(Edge(src, dst, op))
    for node in range(n_in, n_total):
        if not any(e.dst == node for e in edges):
            raise GenotypeError(f"{where}: node {node} has no incoming edge")
    concat = [int(c) for c in need(d, "concat", list, where)]
    if not concat or any(not (n_in <= c < n_total) for c in concat):
        raise GenotypeError(f"{where}: concat {concat} must list nodes {n_in}..{n_total - 1}")
    return CellGenotype(kind, stride, channels, nodes, edges, concat, index, inputs)


def parse_chain(d: dict, source: str, multi: tuple[str, ...]) -> ChainBody:
    """A ChainBody from a body dict; `multi` names the kinds of multi-input cell this space may end
    with (at most one is given). Unknown keys go to `extra` for the space to read."""
    if not isinstance(d, dict):
        raise GenotypeError(f"{source}: body must be an object")
    ops = [canonical_op(o) for o in need(d, "ops", list, source)]
    unknown = [o for o in ops if o not in OPS]
    if unknown:
        raise GenotypeError(f"{source}: unknown op {unknown[0]!r} in 'ops'")
    raw_cells = need(d, "cells", list, source)
    cells = [_parse_cell(c, f"{source}: cells[{i}]", ops, True, len(raw_cells), CHAIN_KINDS)
             for i, c in enumerate(raw_cells)]
    stride = 4
    for i, c in enumerate(cells):
        if c.index != i:
            raise GenotypeError(f"{source}: cells[{i}] has index {c.index}, expected {i}")
        expected = stride * 2 if c.kind == "reduction" else stride
        if c.stride != expected:
            raise GenotypeError(f"{source}: cells[{i}] ({c.kind}) has stride {c.stride}, "
                                f"expected {expected} after stride {stride}")
        stride = c.stride
    body = ChainBody(ops, cells)
    given = [key for key in MULTI_KINDS if d.get(key) is not None]
    for key in given:
        if key not in multi:
            raise GenotypeError(f"{source}: this search space has no {key} cell")
        setattr(body, key, _parse_cell(d[key], f"{source}: {key}", ops, False, len(cells), (key,)))
    if len(given) > 1:
        raise GenotypeError(f"{source}: give one multi-input cell, not {' and '.join(given)}")
    body.extra = {k: v for k, v in d.items() if k not in ("ops", "cells", *MULTI_KINDS)}
    return body


# -- the discrete network ----------------------------------------------------------------------
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


def body_specs(body: ChainBody, stem_channels: int) -> tuple[list[CellSpec], CellSpec | None]:
    """Cell specs (chain, multi-input cell) implied by a body."""
    cells = chain_specs([(c.kind, c.channels, c.nodes) for c in body.cells], stem_channels)
    m = body.multi
    multi = None if m is None else multi_input_spec(m.kind, m.inputs, cells, stem_channels, m.stride,
                                                    m.channels, m.nodes)
    return cells, multi


class ChainNet(nn.Module):
    """stem features (1/4) -> chain of cells -> optional multi-input cell -> features for the head."""

    def __init__(self, body: ChainBody, stem_channels: int):
        super().__init__()
        specs, multi = body_specs(body, stem_channels)
        self.cells = nn.ModuleList(DiscreteCell(s, c) for s, c in zip(specs, body.cells))
        self.multi = DiscreteCell(multi, body.multi) if multi else None
        last = multi or (specs[-1] if specs else None)
        self.output_stride = last.stride if last else 4
        self.out_channels = last.channels if last else stem_channels
        # inputs must be divisible by the deepest stride any cell reaches, not only the last one's
        self.size_divisor = max([self.output_stride] + [s.stride for s in specs])

    def forward(self, stem: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        outs = {-1: stem}
        for k, cell in enumerate(self.cells):
            spec = cell.spec
            outs[k] = cell([outs[i] for i in spec.inputs], feature_size(size, spec.in_stride))
        feat = outs[len(self.cells) - 1]
        if self.multi is not None:
            feat = self.multi([outs[i] for i in self.multi.spec.inputs], feature_size(size, self.multi.spec.in_stride))
        return feat


def chain_probes(body: ChainBody, stem_channels: int, head_channels: int, num_classes: int,
                 image: tuple[int, int]) -> list[Probe]:
    """The pieces of a derived chain network, one probe per occurrence (sum them for its latency)."""
    specs, multi = body_specs(body, stem_channels)
    pairs = list(zip(specs, body.cells)) + ([(multi, body.multi)] if multi else [])
    last = pairs[-1][0]
    probes = [stem_probe(stem_channels, image),
              head_probe(last.channels, head_channels, num_classes, last.stride, image)]
    for spec, cell in pairs:
        indeg = {n: sum(e.dst == n for e in cell.edges) for n in spec.node_ids()}
        probes += cell_fixed_probes(spec, image, sum(d - 1 for d in indeg.values()), len(cell.concat))
        probes += [op_probe(spec, e.src, e.op, image) for e in cell.edges]
    return probes


def repeat_cells(body: dict, repeats: int) -> tuple[dict, list[int]]:
    """A chain body dict with each cell followed by `repeats - 1` copies of itself. A copy of a
    reduction cell is a normal cell at the reduced stride (same edges and ops), as DARTS stacks
    normal cells between its reductions. A multi-input cell reads the last copy of each cell it read.
    Returns the body and, per new cell, the index of the cell it copies."""
    out, origin = [], []
    for cell in body["cells"]:
        for r in range(repeats):
            out.append({**cell, "index": len(out), "kind": cell["kind"] if r == 0 else "normal"})
            origin.append(cell["index"])
    deeper = {**body, "cells": out}
    for key in MULTI_KINDS:
        multi = body.get(key)
        if multi is not None:
            deeper[key] = {**multi, "inputs": [i if i < 0 else (i + 1) * repeats - 1 for i in multi["inputs"]]}
    return deeper, origin


def chain_summary(body: ChainBody) -> dict:
    downs = [c.index for c in body.cells if c.kind == "reduction"]
    return {"depth": len(body.cells), "downsampling": downs}
