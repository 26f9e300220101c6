"""AutoRTNet: the chain the trellis decoded to, its aggregation cell, and the path over layers x scales."""

from __future__ import annotations

from widgets.cell_graph import trellis_figure
from widgets.spaces import Parts, architecture, state
from widgets.spaces.cells import chain_parts


@architecture("hyper")
def hyper_parts(genotype) -> Parts:
    parts = chain_parts(genotype.body)
    trellis = genotype.body.extra["trellis"]
    parts["trellis path"] = lambda: trellis_figure(trellis["path"], trellis["scales"])
    return parts


@state("hyper")
def hyper_state(data: dict, title: str = ""):
    """The path and the per-layer keep/down/prune weights of one epoch."""
    return [("layers x scales", trellis_figure(data.get("path"), data["scales"], data["weights"], data["choices"],
                                                title or "AutoRTNet path over layers x scales"))]
