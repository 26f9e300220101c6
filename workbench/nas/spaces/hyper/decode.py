"""Decoding AutoRTNet: hyper-cell weights -> a discrete path -> a genotype (depth, downsampling, cells).

The rule (deterministic):

1. Downsampling positions: dynamic programming (Viterbi, as Auto-DeepLab decodes its trellis) over
   the valid paths. At layer l and scale i the transition probabilities are the layer's hyper
   weights masked to the valid choices and renormalized (exactly what the relaxed network uses,
   `trellis.local_probs`); "stay" at a scale has probability p(keep) + p(prune), "down"
   p(down). The decoded path maximizes the product of its transition probabilities among paths
   that end at 1/output_stride. Exact ties go to staying (later downsampling, more resolution).
2. Depth (cell-level pruning): a layer that stays is pruned iff its pruning share
   p(prune) / (p(keep) + p(prune)) exceeds `prune_threshold` (0.5 = the stronger of the two;
   larger = prune less). A downsampling layer is never pruned. Depth = kept + downsampling layers.
3. Cells: every non-pruned layer becomes a chain cell (normal or reduction) at its scale, its
   edges derived from that trellis cell's op weights by the DARTS rule (`workbench.nas.darts.derive_cell`).
4. Aggregation: the strongest candidate stride; its cell derived by the DARTS rule, its inputs
   the chain's last cell at each scale (-1 = stem), unused inputs dropped.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from workbench.errors import ConfigError, GenotypeError
from workbench.nas.chain import ChainBody
from workbench.nas.darts import derive_cell, encode_cell
from workbench.nas.spaces.hyper.aggregation import prune_unused_inputs
from workbench.nas.spaces.hyper.trellis import CHOICES, DOWN, KEEP, PRUNE, HyperSpace


def _probs(space: HyperSpace, weights) -> list[list[float]]:
    w = torch.as_tensor(weights, dtype=torch.float64).detach().cpu()
    if tuple(w.shape) != (space.layers, len(CHOICES)) or bool((w < 0).any()):
        raise ConfigError(f"hyper weights: expected {space.layers} x {len(CHOICES)} non-negative values, "
                          f"got shape {tuple(w.shape)}")
    return w.tolist()


def decode_path(space: HyperSpace, weights, prune_threshold: float = 0.5) -> list[dict]:
    """[{"layer", "choice", "stride"}] per layer; `stride` is the output stride after the layer."""
    w = _probs(space, weights)
    best = {0: (0.0, None)}  # scale -> (log prob, back pointer (previous scale, "stay"|"down"))
    history = []
    for layer in range(space.layers):
        nxt: dict[int, tuple[float, tuple]] = {}
        for i in space.states(layer):
            score = best[i][0]
            stay, down, _ = space.allowed(layer, i)
            row = w[layer]
            total = (row[KEEP] + row[PRUNE]) * stay + row[DOWN] * down
            moves = []
            if stay:
                moves.append((i, "stay", row[KEEP] + row[PRUNE]))
            if down:
                moves.append((i + 1, "down", row[DOWN]))
            for j, move, p in moves:
                s = score + (math.log(p / total) if p > 0 else -math.inf)
                old = nxt.get(j)
                # strictly better wins; a tie keeps "stay" (scanned first for the same target)
                if old is None or s > old[0] or (s == old[0] and move == "stay" and old[1][1] != "stay"):
                    nxt[j] = (s, (i, move))
        history.append(nxt)
        best = nxt
    moves, i = [], space.downs
    for layer in reversed(range(space.layers)):
        prev, move = history[layer][i][1]
        moves.append(move)
        i = prev
    moves.reverse()
    path, scale = [], 0
    for layer, move in enumerate(moves):
        row = w[layer]
        if move == "down":
            scale += 1
            choice = "down"
        else:
            share = row[PRUNE] / max(row[KEEP] + row[PRUNE], 1e-300)
            choice = "prune" if share > prune_threshold else "keep"
        path.append({"layer": layer, "choice": choice, "stride": space.scales[scale]})
    return path


def decode_body(model, weights, prune_threshold: float = 0.5) -> ChainBody:
    """The discrete body a hyper supernet's relaxed weights decode to (see the module docstring):
    the chain of kept cells, the aggregation cell, and the decoded path under "trellis"."""
    space, ops = model.space, list(model.ops)
    path = decode_path(space, weights.path, prune_threshold)
    cells, last_at, scale = [], {0: -1}, 0
    for step in path:
        if step["choice"] == "prune":
            continue
        kind = "reduction" if step["choice"] == "down" else "normal"
        scale += kind == "reduction"
        k = model.cell_index[step["layer"], kind, scale]
        cell = derive_cell(model.specs[k], weights[k], ops)
        cells.append(dataclasses.replace(cell, index=len(cells)))
        last_at[scale] = len(cells) - 1
    aggregation = None
    if space.aggregation:
        j = int(torch.as_tensor(weights.scale).detach().cpu().argmax())
        k = model.n_trellis + j
        cell = derive_cell(model.specs[k], weights[k], ops)
        aggregation = prune_unused_inputs(cell, [last_at[i] for i in range(space.downs + 1)])
    trellis = {"scales": space.scales, "path": path, "output_stride": space.output_stride,
               "depth": len(cells), "prune_threshold": prune_threshold}
    return ChainBody(ops, cells, aggregation=aggregation, extra={"trellis": trellis})


def encode_body(model, body: ChainBody):
    """The one-hot relaxed weights that select exactly `body` in `model`'s trellis: the inverse of
    `decode_body` (decoding them gives `body` back). Running the supernet with them runs the
    discrete network on the supernet's shared weights, the one-shot evaluation of weight-sharing NAS
    (`benchmarks/supernet_ranking.py` asks whether it ranks networks as retraining them does)."""
    from workbench.nas.spaces.hyper.supernet import HyperWeights  # supernet.py imports this module

    space, ops = model.space, list(model.ops)
    path = (body.extra.get("trellis") or {}).get("path")
    if not path or len(path) != space.layers:
        raise GenotypeError(f"trellis path: expected {space.layers} layers for this supernet, "
                            f"got {len(path) if path else 'none'}")
    cells = [torch.zeros(len(spec.edges()), len(ops)) for spec in model.specs]

    def select(k: int, cell, where: str) -> None:
        cells[k] = encode_cell(model.specs[k], cell, ops, where)

    kept = sum(step["choice"] != "prune" for step in path)
    if len(body.cells) != kept:
        raise GenotypeError(f"cells: {len(body.cells)} cells for a path with {kept} layers that are not pruned")
    hyper = torch.zeros(space.layers, len(CHOICES))
    chain, last_at, scale = iter(body.cells), {0: -1}, 0
    for step in path:
        choice = CHOICES.index(step["choice"])
        hyper[step["layer"], choice] = 1.0
        if choice == PRUNE:
            continue
        scale += choice == DOWN
        cell = next(chain)
        kind = "reduction" if choice == DOWN else "normal"
        if cell.kind != kind or (step["layer"], kind, scale) not in model.cell_index:
            raise GenotypeError(f"cells: the path's layer {step['layer']} ({kind}) has no matching cell")
        select(model.cell_index[step["layer"], kind, scale], cell, f"cell {cell.index}")
        last_at[scale] = cell.index
    scale_w = None
    if body.aggregation is not None and not space.aggregation:
        raise GenotypeError("aggregation: this supernet has no aggregation cell")
    if space.aggregation:
        agg = body.aggregation
        if agg is None or agg.stride not in space.aggregation_strides:
            raise GenotypeError(f"aggregation: expected a cell at one of the strides {space.aggregation_strides}")
        j = space.aggregation_strides.index(agg.stride)
        scale_w = torch.nn.functional.one_hot(torch.tensor(j), len(space.aggregation_strides)).float()
        sources = [last_at[i] for i in range(space.downs + 1)]
        inputs = list(agg.inputs or [])
        if not inputs or any(i not in sources for i in inputs):
            raise GenotypeError(f"aggregation: inputs {agg.inputs} are not the path's last cells {sources}")
        used, n_in = [sources.index(i) for i in inputs], space.downs + 1
        back = {new: old for new, old in enumerate(used)}
        back.update({node: node - len(used) + n_in for node in range(len(used), len(used) + agg.nodes)})
        edges = [dataclasses.replace(e, src=back[e.src], dst=back[e.dst]) for e in agg.edges]
        select(model.n_trellis + j, dataclasses.replace(agg, edges=edges), "aggregation")
    return HyperWeights(cells, hyper, scale_w)
