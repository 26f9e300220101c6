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

A genotype may keep parts no output reads: a node outside `concat` that no concat node depends on,
an input no such edge reads, a cell no later cell or multi-input cell reads (an AutoRTNet
aggregation that kept other scales). The network drops them once created (so the kept parts draw
the same initial weights either way): they are never computed, priced, counted or trained. The
genotype keeps them as the search derived it.
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
        live = set(live_cells(self))
        out = []
        for c in self.cells + [c for c in (self.fusion, self.aggregation) if c]:
            name = f"cell {c.index}" if c.kind in CHAIN_KINDS else c.kind
            edges = ", ".join(f"{e.src}->{e.dst}:{e.op}" for e in c.edges)
            unread = ", read by no output: dropped" if c.kind in CHAIN_KINDS and c.index not in live else ""
            out.append(f"{name} ({c.kind}, 1/{c.stride}, {c.channels}ch{unread}): {edges}")
        return out


# -- what reaches the output --------------------------------------------------------------------
def live_edges(cell: CellGenotype) -> list[int]:
    """Positions (in cell.edges) of the edges whose result reaches the cell's concat."""
    live = set(cell.concat)
    for node in range(cell.n_inputs + cell.nodes - 1, cell.n_inputs - 1, -1):
        if node in live:
            live.update(e.src for e in cell.edges if e.dst == node)
    return [k for k, e in enumerate(cell.edges) if e.dst in live]


def live_inputs(cell: CellGenotype) -> list[int]:
    """Input positions (0..n_inputs-1) that an edge reaching the concat reads."""
    return sorted({cell.edges[k].src for k in live_edges(cell) if cell.edges[k].src < cell.n_inputs})


def chain_inputs(k: int) -> tuple[int, int]:
    """The producers chain cell k reads (-1 = the stem)."""
    return max(k - 2, -1), k - 1


def live_cells(body: ChainBody) -> list[int]:
    """Indices of the chain cells whose output reaches the head, through later cells or the
    multi-input cell (the head reads the multi-input cell if there is one, else the last cell)."""
    if body.multi is not None:
        read = {body.multi.inputs[p] for p in live_inputs(body.multi)}
    else:
        read = {len(body.cells) - 1}
    for k in reversed(range(len(body.cells))):
        if k in read:
            read.update(chain_inputs(k)[p] for p in live_inputs(body.cells[k]))
    return sorted(k for k in read if k >= 0)


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
    """A cell with the edges a genotype kept, one op per edge. Only the edges that reach the concat
    and the inputs they read are kept. Every part is created first and the unread ones dropped, so
    the kept parts draw the same initial weights as in a network that keeps everything, and keep
    their position in the genotype as their state-dict key."""

    def __init__(self, spec: CellSpec, cell: CellGenotype):
        super().__init__(spec, cell.concat, affine=True)
        edge_ops = [build_op(e.op, spec.channels, spec.edge_stride if e.src < spec.n_inputs else 1)
                    for e in cell.edges]
        self.reads, kept = live_inputs(cell), live_edges(cell)
        self.preprocess = nn.ModuleDict({str(p): self.preprocess[p] for p in self.reads})
        self.edge_ops = nn.ModuleDict({str(k): edge_ops[k] for k in kept})
        # the nodes an output reads, in order, each with the (module key, source node) of its edges
        live_nodes = sorted({cell.edges[k].dst for k in kept})
        self.plan = [(node, [(str(k), cell.edges[k].src) for k in kept if cell.edges[k].dst == node])
                     for node in live_nodes]
        self.dead = ([f"preprocess.{p}." for p in range(spec.n_inputs) if p not in self.reads]
                     + [f"edge_ops.{k}." for k in range(len(cell.edges)) if k not in kept])

    def forward(self, inputs: list[torch.Tensor | None], in_size: tuple[int, int],
                weights: torch.Tensor | None = None) -> torch.Tensor:
        states = {p: self.preprocess[str(p)](inputs[p], in_size) for p in self.reads}
        for node, into in self.plan:
            states[node] = sum(self.edge_ops[key](states[src]) for key, src in into)
        return self.project(torch.cat([states[i] for i in self.concat], dim=1))


def body_specs(body: ChainBody, stem_channels: int) -> tuple[list[CellSpec], CellSpec | None]:
    """Cell specs (chain, multi-input cell) implied by a body."""
    cells = chain_specs([(c.kind, c.channels, c.nodes) for c in body.cells], stem_channels)
    m = body.multi
    multi = None if m is None else multi_input_spec(m.kind, m.inputs, cells, stem_channels, m.stride,
                                                    m.channels, m.nodes)
    return cells, multi


class ChainNet(nn.Module):
    """stem features (1/4) -> chain of cells -> optional multi-input cell -> features for the head.
    Cells no output reads are dropped (`unread` lists them)."""

    def __init__(self, body: ChainBody, stem_channels: int):
        super().__init__()
        specs, multi = body_specs(body, stem_channels)
        live = live_cells(body)
        self.unread = [k for k in range(len(specs)) if k not in live]
        cells = [DiscreteCell(s, c) for s, c in zip(specs, body.cells)]  # all created: same initial weights
        self.cells = nn.ModuleDict({str(k): cells[k] for k in live})
        self.multi = DiscreteCell(multi, body.multi) if multi else None
        self.last = len(specs) - 1
        last = multi or (specs[-1] if specs else None)
        self.output_stride = last.stride if last else 4
        self.out_channels = last.channels if last else stem_channels
        # inputs must be divisible by the deepest stride any built cell reaches, not only the last one's
        self.size_divisor = max([self.output_stride] + [specs[k].stride for k in live])
        self._register_load_state_dict_pre_hook(self._drop_unbuilt)

    def forward(self, stem: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        outs: dict[int, torch.Tensor] = {-1: stem}
        for cell in self.cells.values():
            spec = cell.spec
            outs[spec.index] = cell([outs.get(i) for i in spec.inputs], feature_size(size, spec.in_stride))
        if self.multi is None:
            return outs[self.last]
        return self.multi([outs.get(i) for i in self.multi.spec.inputs], feature_size(size, self.multi.spec.in_stride))

    def unbuilt_prefixes(self) -> list[str]:
        """State-dict prefixes (below this module) of the parts a genotype keeps but no output reads."""
        cells = [(f"cells.{k}.", c) for k, c in self.cells.items()]
        return ([f"cells.{k}." for k in self.unread]
                + [name + dead for name, c in cells + [("multi.", self.multi)] if c is not None for dead in c.dead])

    def _drop_unbuilt(self, state_dict: dict, prefix: str, *_args) -> None:
        """Checkpoints of networks that built every part load unchanged: the tensors of parts no
        output reads are dropped (they never changed an output)."""
        dead = tuple(prefix + p for p in self.unbuilt_prefixes())
        for key in [k for k in state_dict if k.startswith(dead)] if dead else []:
            del state_dict[key]


def chain_probes(body: ChainBody, stem_channels: int, head_channels: int, num_classes: int,
                 image: tuple[int, int]) -> list[Probe]:
    """The pieces of a derived chain network, one probe per occurrence (sum them for its latency)."""
    specs, multi = body_specs(body, stem_channels)
    last = multi or specs[-1]
    probes = [stem_probe(stem_channels, image),
              head_probe(last.channels, head_channels, num_classes, last.stride, image)]
    pairs = [(specs[k], body.cells[k]) for k in live_cells(body)] + ([(multi, body.multi)] if multi else [])
    for spec, cell in pairs:  # only what the network builds: parts no output reads cost nothing
        edges = [cell.edges[k] for k in live_edges(cell)]
        indeg = {n: sum(e.dst == n for e in edges) for n in spec.node_ids()}
        probes += cell_fixed_probes(spec, image, sum(max(d - 1, 0) for d in indeg.values()), len(cell.concat),
                                    live_inputs(cell))
        probes += [op_probe(spec, e.src, e.op, image) for e in edges]
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
    live = live_cells(body)
    return {"depth": len(body.cells), "downsampling": downs,
            "unread_cells": [c.index for c in body.cells if c.index not in live]}
