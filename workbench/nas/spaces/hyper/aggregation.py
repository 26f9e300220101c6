"""AutoRTNet's aggregation cell: searches how the path's multi-scale outputs are fused.

Inputs: the last feature the path carries at every trellis scale (1/4 ... 1/output_stride; at 1/4
the stem when the path downsamples at once), i.e. what the network has when it leaves that scale.
The cell is a dense searched cell like LGCNet's fusion cell (`spaces/cells/fusion.py`): every node has a
mixed-op edge from every input and every earlier node, inputs are resized to the cell's stride.
Three things are searched, all relaxed:

- which inputs: derivation keeps two edges per node (DARTS rule); inputs no kept edge reads are
  dropped from the derived cell (`prune_unused_inputs`);
- which ops: the argmax op per kept edge;
- at which scale: one aggregation cell per candidate stride (`aggregation_strides`), their logits
  mixed by softmax weights `aggregation_scale`; the derived network keeps the strongest stride.
"""

from __future__ import annotations

import dataclasses

from workbench.errors import GenotypeError
from workbench.nas.cells import CellSpec
from workbench.nas.chain import CellGenotype, Edge


def aggregation_specs(space) -> list[CellSpec]:
    """One aggregation cell per candidate stride; input i is the path's output at scale i."""
    n = space.downs + 1
    return [CellSpec("aggregation", s, space.aggregation_channels, space.aggregation_nodes, tuple(range(n)),
                     tuple(space.channels_at(i) for i in range(n)), tuple(space.scales[:n]))
            for s in space.aggregation_strides]


def prune_unused_inputs(cell: CellGenotype, sources: list[int]) -> CellGenotype:
    """Keep only the inputs some edge reads; renumber nodes. `sources[i]` = producer of input i
    (a chain cell index, -1 = stem), which becomes the derived cell's `inputs`."""
    n_in = len(sources)
    if cell.n_inputs != n_in:
        raise GenotypeError(f"aggregation cell: {cell.n_inputs} inputs but {n_in} sources")
    used = sorted({e.src for e in cell.edges if e.src < n_in})
    shift = n_in - len(used)
    renum = {old: new for new, old in enumerate(used)}
    renum.update({node: node - shift for node in range(n_in, n_in + cell.nodes)})
    edges = [Edge(renum[e.src], renum[e.dst], e.op) for e in cell.edges]
    return dataclasses.replace(cell, edges=edges, concat=[renum[c] for c in cell.concat],
                               inputs=[sources[i] for i in used], index=None)
