"""Each search space's figures, found by the space's name (the views half of a space plugin).

A module in this package draws one space and registers its builders with `@architecture(name)`
(the derived body: parts such as cells, a fusion cell, a trellis path) and `@state(name)` (what
the space records per epoch in alphas.jsonl besides its decision groups). Modules are discovered
here, so a new space's figures are one new module. A space without figures shows none.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

import plotly.graph_objects as go

from workbench.errors import GenotypeError
from workbench.nas.genotypes import Genotype, load_genotype

Parts = dict[str, Callable[[], go.Figure]]
_ARCHITECTURE: dict[str, Callable[[Genotype], Parts]] = {}
_STATE: dict[str, Callable[[dict, str], list[tuple[str, go.Figure]]]] = {}


def architecture(space: str):
    """Register `fn(genotype) -> {part title: figure builder}` for a space's derived body."""
    def deco(fn):
        _ARCHITECTURE[space] = fn
        return fn
    return deco


def state(space: str):
    """Register `fn(space_state, title) -> [(title, figure)]` for a space's per-epoch record."""
    def deco(fn):
        _STATE[space] = fn
        return fn
    return deco


def _discover() -> None:
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")


def architecture_parts(genotype: dict | Genotype | None) -> Parts:
    """{title: figure builder} for every part of a genotype (either file version); {} when there is
    none or it does not parse."""
    if not genotype:
        return {}
    try:
        g = load_genotype(genotype)
    except GenotypeError:
        return {}
    _discover()
    fn = _ARCHITECTURE.get(g.space)
    return fn(g) if fn else {}


def architecture_figures(genotype: dict | Genotype | None) -> list[tuple[str, go.Figure]]:
    return [(title, make()) for title, make in architecture_parts(genotype).items()]


def state_figures(record: dict, title: str = "") -> list[tuple[str, go.Figure]]:
    """Figures of one alphas.jsonl record's space state (empty when the space records none)."""
    space, data = space_of(record)
    _discover()
    fn = _STATE.get(space)
    return fn(data, title) if fn and data else []


def space_of(record: dict) -> tuple[str, Any]:
    """(space name, space state) of an alphas.jsonl record; records of workbench 0.1 kept the
    AutoRTNet trellis under "hyper"."""
    if "space_state" in record or "space" in record:
        return record.get("space") or "cells", record.get("space_state")
    return ("hyper", record["hyper"]) if record.get("hyper") else ("cells", None)
