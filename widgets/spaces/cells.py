"""GAS / LGCNet: one graph per cell, and the fusion cell."""

from __future__ import annotations

from widgets.cell_graph import cell_graph_figure
from widgets.spaces import Parts, architecture


def chain_parts(body) -> Parts:
    """A chain body's cells, then its multi-input (fusion or aggregation) cell."""
    parts: Parts = {}
    for cell in body.cells:
        d = cell.to_dict()
        title = f"cell {d['index']} ({d['kind']}, stride {d['stride']})"
        parts[title] = lambda d=d, title=title: cell_graph_figure(d, title)
    if body.multi is not None:
        d = body.multi.to_dict()
        title = f"{d['kind']} cell (stride {d['stride']})"
        parts[f"{d['kind']} cell"] = lambda d=d, title=title: cell_graph_figure(d, title)
    return parts


@architecture("cells")
def cells_parts(genotype) -> Parts:
    return chain_parts(genotype.body)
