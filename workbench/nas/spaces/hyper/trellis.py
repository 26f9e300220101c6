"""AutoRTNet hyper-cells: a layers x scales trellis supernet that searches depth and downsampling.

The network is L layers deep and its features live on a trellis of scales 1/4 ... 1/os (os, the
required output stride, is 32 by default). At every layer a hyper-cell holds three searched
weights (one row of `hyper` alphas): keep the scale (a normal cell), downsample (a reduction
cell into the next scale) or prune (identity: the layer is skipped and the network is shallower).

A discrete choice sequence is a path through the trellis; it is valid when it ends at 1/os.
The relaxed network is a Markov chain over valid paths: at layer l and scale i the layer's
weights are masked to the choices that can still reach 1/os (no downsampling past 1/os; forced
downsampling when the remaining layers are just enough) and renormalized. Each scale carries the
probability mass of being there and the mass-weighted mixture of what a discrete chain would
carry: the outputs of the previous two non-pruned cells ("prev" and "cur"), since a cell of the
derived chain reads cells k-2 and k-1 (`cells.chain_specs`). Pruning passes both on unchanged.
Mixed inputs of different shape stay apart in a `Slot` ({(channels, stride): (coef, feature)});
a cell preprocesses each part with its own 1x1 conv and sums them weighted by coef. Everything is
differentiable in the hyper weights, the op weights and the aggregation weights.

This module is the trellis itself: its geometry (`HyperSpace`), the valid-path probabilities, the
mixed "slots" and the walk that pushes the path distribution through it; the supernet, its
latency model, the aggregation cell and the decoding rule are the package's other modules.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import torch

from workbench.nas.cells import STEM_STRIDE, CellSpec
from workbench.nas.spaces.hyper.config import HyperConfig

CHOICES = ("keep", "down", "prune")
KEEP, DOWN, PRUNE = range(3)
Key = tuple[int, int]  # (channels, stride) of one part of a mixed input


@dataclass(frozen=True)
class HyperSpace:
    """The trellis of a HyperConfig, with the stem and head channels around it; the config's
    settings read through (`space.layers`, `space.ops`, ...)."""

    config: HyperConfig
    stem_channels: int
    head_channels: int

    def __getattr__(self, name: str):
        if name == "config" or name.startswith("__"):  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self.config, name)

    @classmethod
    def of(cls, cfg) -> HyperSpace:
        """The trellis of a SearchConfig whose space is 'hyper'."""
        return cls(cfg.space, cfg.stem_channels, cfg.head_channels)

    @property
    def downs(self) -> int:
        """Downsampling layers every valid path has: log2(output_stride / 4)."""
        return int(math.log2(self.output_stride // STEM_STRIDE))

    @property
    def scales(self) -> list[int]:
        return [STEM_STRIDE * 2 ** i for i in range(self.downs + 1)]

    def channels_at(self, i: int) -> int:
        """Channels of cells at scale index i: `channels` at 1/4 and 1/8, doubled at each coarser scale."""
        return self.channels * 2 ** max(i - 1, 0)

    def key(self, i: int) -> Key:
        return (self.channels_at(i), self.scales[i])

    @property
    def stem_key(self) -> Key:
        return (self.stem_channels, STEM_STRIDE)

    def states(self, layer: int) -> range:
        """Scale indices a valid path can be at before `layer` (layer = L: after the last one)."""
        return range(max(0, self.downs - (self.layers - layer)), min(layer, self.downs) + 1)

    def allowed(self, layer: int, i: int) -> tuple[bool, bool, bool]:
        """(keep, down, prune) at scale i of `layer`: choices that still reach 1/output_stride."""
        stay = self.downs - i <= self.layers - layer - 1
        return stay, i < self.downs, stay


def local_probs(space: HyperSpace, weights: torch.Tensor) -> dict[tuple[int, int], torch.Tensor]:
    """Per (layer, scale) choice probabilities: the layer's weights masked to valid choices, renormalized."""
    keys = [(layer, i) for layer in range(space.layers) for i in space.states(layer)]
    masks = torch.tensor([space.allowed(*k) for k in keys], dtype=weights.dtype).to(weights.device)
    p = weights[[layer for layer, _ in keys]] * masks
    p = p / p.sum(dim=1, keepdim=True).clamp_min(1e-30)
    return dict(zip(keys, p))


# -- slots: mixtures of differently shaped features ----------------------------------------------
Slot = dict  # Key -> (coef, feature or None)


def _safe(total):
    """A mass to divide by: exact one-hot (or underflowed) weights leave some trellis nodes empty."""
    return total.clamp_min(1e-30) if torch.is_tensor(total) else max(total, 1e-30)


def mix(parts: list[tuple[object, Slot]]) -> Slot:
    """Convex combination of slots (weights r sum to 1): per key coef = sum r*c, feature = weighted mean."""
    acc: dict[Key, list] = {}
    for r, slot in parts:
        for key, (c, f) in slot.items():
            acc.setdefault(key, []).append((r * c, f))
    out = {}
    for key, terms in acc.items():
        coef = sum(w for w, _ in terms)
        live = [(w, f) for w, f in terms if torch.is_tensor(w) or w]  # exact weights: a 0.0 part is absent
        if not live or any(f is None for _, f in live):
            out[key] = (coef, None)
            continue
        out[key] = (coef, sum(w * f for w, f in live) / _safe(coef))
    return out


@dataclass
class State:
    """One trellis node: probability mass and what the chain carries there."""

    mass: object
    prev: Slot
    cur: Slot


def merge(parts: list[tuple[object, Slot, Slot]]) -> State:
    total = sum(m for m, _, _ in parts)
    r = [m / _safe(total) for m, _, _ in parts]
    return State(total, mix([(w, p) for w, (_, p, _) in zip(r, parts)]),
                 mix([(w, c) for w, (_, _, c) in zip(r, parts)]))


def walk(space: HyperSpace, probs: dict, stem: object, run_cell) -> tuple[State, list[Slot]]:
    """Push the path distribution through the trellis.

    run_cell(layer, kind, scale_out, state, mass) -> the cell's output feature (or None).
    Returns the final state (at 1/output_stride) and, per scale, the mixture of the path's last
    feature at that scale (what it carried when it left the scale): the aggregation cell's inputs.
    """
    start = {space.stem_key: (1.0, stem)}
    states = {0: State(1.0, start, dict(start))}
    exits: dict[int, list] = defaultdict(list)
    for layer in range(space.layers):
        parts: dict[int, list] = defaultdict(list)
        for i, st in states.items():
            keep, down, prune = space.allowed(layer, i)
            p = probs[layer, i]
            if keep:
                m = st.mass * p[KEEP]
                parts[i].append((m, st.cur, {space.key(i): (1.0, run_cell(layer, "normal", i, st, m))}))
            if prune:
                parts[i].append((st.mass * p[PRUNE], st.prev, st.cur))
            if down:
                m = st.mass * p[DOWN]
                parts[i + 1].append((m, st.cur, {space.key(i + 1): (1.0, run_cell(layer, "reduction", i + 1, st, m))}))
                exits[i].append((m, st.cur))
        states = {j: merge(ps) for j, ps in parts.items()}
    final = states[space.downs]
    exits[space.downs].append((final.mass, final.cur))
    out = []
    for i in range(space.downs + 1):
        total = sum(m for m, _ in exits[i])
        out.append(mix([(m / _safe(total), s) for m, s in exits[i]]))
    return final, out


# -- cells ------------------------------------------------------------------------------------
def trellis_specs(space: HyperSpace) -> tuple[list[CellSpec], dict[tuple[int, str, int], int]]:
    """Specs of every trellis cell a valid path can use, and (layer, kind, scale_out) -> spec index."""
    specs, index = [], {}
    for layer in range(space.layers):
        for i in space.states(layer):
            keep, down, _ = space.allowed(layer, i)
            for kind, j, ok in (("normal", i, keep), ("reduction", i + 1, down)):
                if not ok:
                    continue
                c_in, s_in = space.channels_at(i), space.scales[i]  # nominal: the real inputs are slots
                index[layer, kind, j] = len(specs)
                specs.append(CellSpec(kind, space.scales[j], space.channels_at(j), space.nodes, (0, 1),
                                      (c_in, c_in), (s_in, s_in), len(specs)))
    return specs, index


def slot_keys(space: HyperSpace, index: dict) -> tuple[dict[int, list[list[Key]]], list[list[Key]]]:
    """Structurally possible input parts: per trellis cell [prev keys, cur keys]; per scale the exit keys."""
    found: dict[int, list[list[Key]]] = {}

    def record(layer, kind, j, st, m):
        found[index[layer, kind, j]] = [sorted(st.prev), sorted(st.cur)]

    uniform = {(layer, i): (1 / 3, 1 / 3, 1 / 3) for layer in range(space.layers) for i in space.states(layer)}
    _, exits = walk(space, uniform, None, record)
    return found, [sorted(e) for e in exits]


def key_name(key: Key) -> str:
    return f"c{key[0]}_s{key[1]}"
