"""Genotype: the derived discrete architecture, stored as a versioned JSON file.

A genotype alone rebuilds the network (`network.build_network`). File format
(schema "workbench.genotype", version 1):

    {"schema": "workbench.genotype", "version": 1, "preset": "lgcnet", "num_classes": 19,
     "input_size": [H, W], "stem_channels": 16, "head_channels": 32, "ops": [searched op set],
     "cells": [{"index": 0, "kind": "normal"|"reduction", "stride": 8, "channels": 32, "nodes": 3,
                "edges": [{"from": 0, "to": 2, "op": "sep_conv_3x3"}, ...], "concat": [2, 3, 4]}],
     "fusion": null or {"kind": "fusion", "stride": 8, "channels": 32, "inputs": [cell indices],
                        "nodes": 2, "edges": [...], "concat": [...]},
     "hyper": null or {"scales": [4, 8, 16, 32], "path": [{"layer", "choice", "stride"}, ...]},
     "aggregation": null or {same fields as fusion, "kind": "aggregation"},
     "expected_latency_ms": 12.3 or null}

Cells form a chain from the stem (stride 4): cell k reads the outputs of cells k-2 and k-1 (the
stem stands in for missing ones); node ids 0 and 1 are those inputs, 2..nodes+1 its intermediate
nodes. A reduction cell doubles the stride (its edges from the inputs have stride 2), a normal cell
keeps it. A fusion/aggregation cell reads the cells listed in "inputs" (-1 = the stem), resizes them
to its stride; node ids 0..len(inputs)-1 are those inputs, then its nodes. The head reads the
aggregation cell if present, else the fusion cell, else the last cell. Any malformed file raises
GenotypeError naming the file and the problem.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import GenotypeError
from workbench.nas.operations import NONE, OPS, canonical_op

GENOTYPE_SCHEMA = "workbench.genotype"
GENOTYPE_VERSION = 1
CHAIN_KINDS = ("normal", "reduction")
MULTI_KINDS = ("fusion", "aggregation")
HYPER_CHOICES = ("keep", "down", "prune")


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
class Genotype:
    preset: str
    num_classes: int
    input_size: tuple[int, int]
    stem_channels: int
    head_channels: int
    ops: list[str]
    cells: list[CellGenotype]
    fusion: CellGenotype | None = None
    hyper: dict | None = None
    aggregation: CellGenotype | None = None
    expected_latency_ms: float | None = None
    extra: dict = field(default_factory=dict)  # unknown top-level keys, kept on round trip

    @property
    def output_stride(self) -> int:
        last = self.aggregation or self.fusion or (self.cells[-1] if self.cells else None)
        return last.stride if last else 4

    def to_dict(self) -> dict:
        return {"schema": GENOTYPE_SCHEMA, "version": GENOTYPE_VERSION, "preset": self.preset,
                "num_classes": self.num_classes, "input_size": list(self.input_size),
                "stem_channels": self.stem_channels, "head_channels": self.head_channels,
                "ops": list(self.ops), "cells": [c.to_dict() for c in self.cells],
                "fusion": self.fusion.to_dict() if self.fusion else None,
                "hyper": self.hyper,
                "aggregation": self.aggregation.to_dict() if self.aggregation else None,
                "expected_latency_ms": self.expected_latency_ms, **self.extra}

    def __str__(self) -> str:
        lines = [f"Genotype({self.preset}, {len(self.cells)} cells, output stride {self.output_stride}, "
                 f"expected {self.expected_latency_ms if self.expected_latency_ms is not None else '?'} ms)"]
        for c in self.cells + [c for c in (self.fusion, self.aggregation) if c]:
            name = f"cell {c.index}" if c.kind in CHAIN_KINDS else c.kind
            edges = ", ".join(f"{e.src}->{e.dst}:{e.op}" for e in c.edges)
            lines.append(f"  {name} ({c.kind}, 1/{c.stride}, {c.channels}ch): {edges}")
        return "\n".join(lines)


# -- reading ----------------------------------------------------------------------------------
def _need(d: dict, key: str, types: type | tuple, where: str) -> Any:
    if not isinstance(d, dict) or key not in d:
        raise GenotypeError(f"{where}: missing field {key!r}")
    value = d[key]
    if not isinstance(value, types) or isinstance(value, bool) and types is not bool:
        raise GenotypeError(f"{where}: field {key!r} has the wrong type ({type(value).__name__})")
    return value


def _parse_cell(d: dict, where: str, ops: list[str], chain: bool, n_cells: int) -> CellGenotype:
    if not isinstance(d, dict):
        raise GenotypeError(f"{where}: expected an object")
    kind = _need(d, "kind", str, where)
    allowed = CHAIN_KINDS if chain else MULTI_KINDS
    if kind not in allowed:
        raise GenotypeError(f"{where}: unknown cell kind {kind!r} (expected {' or '.join(allowed)})")
    stride = _need(d, "stride", int, where)
    if stride < 4 or stride & (stride - 1):
        raise GenotypeError(f"{where}: stride must be a power of two >= 4, got {stride}")
    channels = _need(d, "channels", int, where)
    nodes = _need(d, "nodes", int, where)
    if channels < 1 or nodes < 1:
        raise GenotypeError(f"{where}: channels and nodes must be positive")
    inputs = None
    if chain:
        index = _need(d, "index", int, where)
        n_in = 2
    else:
        index = None
        inputs = [int(i) for i in _need(d, "inputs", list, where)]
        if not inputs or any(i < -1 or i >= n_cells for i in inputs):
            raise GenotypeError(f"{where}: inputs {inputs} must name cells 0..{n_cells - 1} or -1 (stem)")
        n_in = len(inputs)
    n_total = n_in + nodes
    edges = []
    for j, e in enumerate(_need(d, "edges", list, where)):
        ew = f"{where}.edges[{j}]"
        src, dst, op = _need(e, "from", int, ew), _need(e, "to", int, ew), _need(e, "op", str, ew)
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
    concat = [int(c) for c in _need(d, "concat", list, where)]
    if not concat or any(not (n_in <= c < n_total) for c in concat):
        raise GenotypeError(f"{where}: concat {concat} must list nodes {n_in}..{n_total - 1}")
    return CellGenotype(kind, stride, channels, nodes, edges, concat, index, inputs)


def genotype_from_dict(d: dict, source: str = "genotype") -> Genotype:
    """Validate a parsed genotype.json; every problem is a one-line GenotypeError naming source."""
    if not isinstance(d, dict):
        raise GenotypeError(f"{source}: expected a JSON object")
    if d.get("schema") != GENOTYPE_SCHEMA:
        raise GenotypeError(f"{source}: not a genotype file (schema {d.get('schema')!r}, "
                            f"expected {GENOTYPE_SCHEMA!r})")
    if d.get("version") != GENOTYPE_VERSION:
        raise GenotypeError(f"{source}: unknown genotype version {d.get('version')!r} "
                            f"(this workbench reads version {GENOTYPE_VERSION})")
    ops = [canonical_op(o) for o in _need(d, "ops", list, source)]
    unknown = [o for o in ops if o not in OPS]
    if unknown:
        raise GenotypeError(f"{source}: unknown op {unknown[0]!r} in 'ops'")
    size = _need(d, "input_size", list, source)
    if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
        raise GenotypeError(f"{source}: input_size must be [H, W], got {size}")
    raw_cells = _need(d, "cells", list, source)
    cells = [_parse_cell(c, f"{source}: cells[{i}]", ops, True, len(raw_cells))
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
    multi = {}
    for key in MULTI_KINDS:
        value = d.get(key)
        multi[key] = None if value is None else _parse_cell(value, f"{source}: {key}", ops, False, len(cells))
        if multi[key] is not None and multi[key].kind != key:
            raise GenotypeError(f"{source}: {key} cell has kind {multi[key].kind!r}")
    hyper = d.get("hyper")
    if hyper is not None:
        path = _need(hyper, "path", list, f"{source}: hyper")
        for j, step in enumerate(path):
            choice = _need(step, "choice", str, f"{source}: hyper.path[{j}]")
            if choice not in HYPER_CHOICES:
                raise GenotypeError(f"{source}: hyper.path[{j}]: unknown choice {choice!r}")
        kept = [s for s in path if s["choice"] != "prune"]
        if ([s.get("stride") for s in kept] != [c.stride for c in cells]
                or [s["choice"] == "down" for s in kept] != [c.kind == "reduction" for c in cells]):
            raise GenotypeError(f"{source}: hyper.path does not match 'cells' (one cell per non-pruned layer, "
                                "a reduction cell where the path downsamples)")
    latency = d.get("expected_latency_ms")
    if latency is not None and not isinstance(latency, (int, float)):
        raise GenotypeError(f"{source}: expected_latency_ms must be a number or null")
    num_classes = _need(d, "num_classes", int, source)
    if num_classes < 1:
        raise GenotypeError(f"{source}: num_classes must be positive")
    known = {"schema", "version", "preset", "num_classes", "input_size", "stem_channels",
             "head_channels", "ops", "cells", "fusion", "hyper", "aggregation", "expected_latency_ms"}
    return Genotype(preset=str(d.get("preset") or "custom"), num_classes=num_classes,
                    input_size=(size[0], size[1]),
                    stem_channels=_need(d, "stem_channels", int, source),
                    head_channels=_need(d, "head_channels", int, source),
                    ops=ops, cells=cells, fusion=multi["fusion"], hyper=hyper,
                    aggregation=multi["aggregation"],
                    expected_latency_ms=None if latency is None else float(latency),
                    extra={k: v for k, v in d.items() if k not in known})


def load_genotype(source: str | Path | dict | Genotype) -> Genotype:
    """Read and validate a genotype from a path, a parsed dict or a Genotype (returned as is)."""
    if isinstance(source, Genotype):
        return source
    if isinstance(source, dict):
        return genotype_from_dict(source)
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise GenotypeError(f"{path}: cannot read genotype file ({exc.strerror or exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GenotypeError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    return genotype_from_dict(data, str(path))


def save_genotype(genotype: Genotype, path: str | Path) -> Path:
    from workbench.jsonio import atomic_write_json

    atomic_write_json(path, genotype.to_dict())
    return Path(path)
