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

Trellis cells are ordinary `SearchCell`s with `MixedOp` edges and their own alpha (cell-
independent, `ArchParams`); channels are `channels` at 1/4 and 1/8 and double at every coarser
scale (the GAS/LGCNet chain layout). The aggregation cell (aggregation.py) fuses the path's
output at every scale; `decode.py` turns the weights into a genotype.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, replace

import torch
from torch import nn

from workbench.errors import ConfigError
from workbench.nas.cells import STEM_STRIDE, CellSpec, Preprocess, feature_size
from workbench.nas.latency import (
    Probe,
    add_probe,
    calibration_scale,
    concat_probe,
    head_probe,
    lookup,
    op_probe,
    preprocess_probes,
    stem_probe,
)
from workbench.nas.model_search import Supernet
from workbench.nas.operations import DEFAULT_OPS, NONE

CHOICES = ("keep", "down", "prune")
KEEP, DOWN, PRUNE = range(3)
Key = tuple[int, int]  # (channels, stride) of one part of a mixed input


@dataclass(frozen=True)
class HyperSpace:
    """The AutoRTNet search space as data (built from a SearchConfig by `from_config`)."""

    layers: int = 6
    output_stride: int = 32
    channels: int = 16
    nodes: int = 3
    stem_channels: int = 16
    head_channels: int = 32
    ops: tuple[str, ...] = DEFAULT_OPS
    aggregation: bool = True
    aggregation_strides: tuple[int, ...] = (8, 16)
    aggregation_channels: int = 32
    aggregation_nodes: int = 2
    prune_threshold: float = 0.5

    def __post_init__(self) -> None:
        os_ = self.output_stride
        if os_ < 8 or os_ & (os_ - 1):
            raise ConfigError(f"hyper_output_stride: must be a power of two >= 8, got {os_}")
        if self.layers < self.downs:
            raise ConfigError(f"num_cells: {self.layers} hyper-cell layers cannot reach output stride "
                              f"{os_} (needs at least {self.downs} downsampling layers)")
        if not 0.0 <= self.prune_threshold <= 1.0:
            raise ConfigError(f"hyper_prune_threshold: must be in [0, 1], got {self.prune_threshold}")
        if self.aggregation:
            bad = [s for s in self.aggregation_strides if s not in self.scales]
            if bad or not self.aggregation_strides:
                raise ConfigError(f"aggregation_strides: {list(self.aggregation_strides)} must be non-empty "
                                  f"and within the trellis scales {self.scales}")

    @classmethod
    def from_config(cls, cfg) -> HyperSpace:
        """From a SearchConfig: num_cells = layers; hyper_*/aggregation_* fields where present."""
        get = lambda name, default: getattr(cfg, name, default)  # noqa: E731
        return cls(layers=cfg.num_cells, output_stride=get("hyper_output_stride", 32), channels=cfg.channels,
                   nodes=cfg.nodes, stem_channels=cfg.stem_channels, head_channels=cfg.head_channels,
                   ops=tuple(cfg.ops), aggregation=get("aggregation", True),
                   aggregation_strides=tuple(get("aggregation_strides", (8, 16))),
                   aggregation_channels=get("aggregation_channels", 32),
                   aggregation_nodes=get("aggregation_nodes", 2),
                   prune_threshold=get("hyper_prune_threshold", 0.5))

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
        if any(f is None for _, f in terms):
            out[key] = (coef, None)
            continue
        out[key] = (coef, sum(w * f for w, f in terms) / _safe(coef))
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


class SlotPreprocess(nn.Module):
    """Preprocess of one cell input that may be a mixture: sum_k coef_k * Preprocess_k(feature_k)."""

    def __init__(self, keys: list[Key], channels: int, target_stride: int):
        super().__init__()
        self.pre_keys = list(keys)
        self.pre = nn.ModuleDict({key_name(k): Preprocess(k[0], channels, k[1], target_stride, affine=False)
                                  for k in keys})

    def forward(self, slot: Slot, size: tuple[int, int]) -> torch.Tensor:
        return sum(coef * self.pre[key_name(k)](f, size) for k, (coef, f) in sorted(slot.items()))


class HyperWeights(list):
    """Relaxed weights of a hyper supernet: per-cell op weights (the list), `path` (layers x 3
    hyper-cell weights) and `scale` (weights of the aggregation strides, or None)."""

    def __init__(self, cells, path: torch.Tensor | None = None, scale: torch.Tensor | None = None):
        super().__init__(cells)
        self.path, self.scale = path, scale


class HyperSupernet(Supernet):
    """Stem -> hyper-cell trellis -> aggregation cell(s) -> head. A Supernet variant: same
    parameter split, relaxation, alpha records; `specs` lists the trellis cells, then the
    aggregation cells (one per candidate stride)."""

    def __init__(self, space: HyperSpace, num_classes: int, cell_sharing: bool = False,
                 relaxation: str = "softmax"):
        from workbench.nas.aggregation import aggregation_specs

        specs, self.cell_index = trellis_specs(space)
        self.n_trellis = len(specs)
        if space.aggregation:
            specs += aggregation_specs(space)
        super().__init__(specs, list(space.ops), space.stem_channels, space.head_channels, num_classes,
                         cell_sharing=cell_sharing, gcn=False, relaxation=relaxation)
        self.space = space
        cell_keys, exit_keys = slot_keys(space, self.cell_index)
        for k, cell in enumerate(self.cells):
            keys = cell_keys[k] if k < self.n_trellis else exit_keys
            cell.preprocess = nn.ModuleList(SlotPreprocess(ks, cell.spec.channels, cell.spec.in_stride)
                                            for ks in keys)
        # hyper-cell and aggregation-scale weights are architecture parameters (ArchParams holds them)
        self.arch.alphas["hyper"] = nn.Parameter(1e-3 * torch.randn(space.layers, len(CHOICES)))
        if space.aggregation:
            self.arch.alphas["aggregation_scale"] = nn.Parameter(1e-3 * torch.randn(len(space.aggregation_strides)))

    def cell_weights(self, sample: bool = False) -> HyperWeights:
        cells = super().cell_weights(sample)
        scale = self.arch.alphas["aggregation_scale"] if self.space.aggregation else None
        return HyperWeights(cells, self.relax(self.arch.alphas["hyper"], sample),
                            None if scale is None else self.relax(scale, sample))

    def forward(self, x: torch.Tensor, weights: HyperWeights | None = None) -> torch.Tensor:
        if weights is None:
            weights = self.cell_weights(sample=self.training)
        size = tuple(x.shape[-2:])

        def run_cell(layer, kind, j, st, mass):
            k = self.cell_index[layer, kind, j]
            cell = self.cells[k]
            return cell([st.prev, st.cur], feature_size(size, cell.spec.in_stride), weights[k])

        final, exits = walk(self.space, local_probs(self.space, weights.path), self.stem(x), run_cell)
        if not self.space.aggregation:
            (coef, feat), = final.cur.values()
            return self.head(feat, size)
        logits = 0
        for j, k in enumerate(range(self.n_trellis, len(self.cells))):
            cell = self.cells[k]
            feat = cell(exits, feature_size(size, cell.spec.in_stride), weights[k])
            logits = logits + weights.scale[j] * self.head(feat, size)
        return logits

    # -- search-loop hooks (see Supernet) ---------------------------------------------------------
    def lut_probes(self, image: tuple[int, int]) -> list[Probe]:
        return hyper_probes(self.space, self.num_classes, image)

    def latency_model(self, lut: dict) -> HyperLatencyModel:
        return HyperLatencyModel(lut, self)

    def derive(self, preset: str, input_size: tuple[int, int]):
        """Decode path, cells and aggregation cell (decode.py) from the noise-free weights."""
        from workbench.nas.decode import decode_genotype

        return decode_genotype(self, self.cell_weights(sample=False), preset=preset, num_classes=self.num_classes,
                               input_size=input_size, prune_threshold=self.space.prune_threshold)

    @torch.no_grad()
    def alpha_state(self) -> list[dict]:
        rows = super().alpha_state()
        layer_of = {k: layer for (layer, _, _), k in self.cell_index.items()}
        for row in rows:
            row["layer"] = layer_of.get(row["index"])
        return rows

    @torch.no_grad()
    def hyper_state(self) -> dict:
        """The alphas.jsonl "hyper" record: per-layer weights, and how the path mass spreads over scales."""
        weights = self.relax(self.arch.alphas["hyper"])
        probs = local_probs(self.space, weights)
        mass = {0: 1.0}
        scale_probs = []
        for layer in range(self.space.layers):
            nxt: dict[int, float] = defaultdict(float)
            for i, m in mass.items():
                p = probs[layer, i].tolist()
                stay, down, _ = self.space.allowed(layer, i)
                if stay:
                    nxt[i] += m * (p[KEEP] + p[PRUNE])
                if down:
                    nxt[i + 1] += m * p[DOWN]
            mass = dict(nxt)
            scale_probs.append([round(mass.get(i, 0.0), 6) for i in range(self.space.downs + 1)])
        from workbench.nas.decode import decode_path

        out = {"choices": list(CHOICES), "weights": weights.tolist(), "scales": self.space.scales,
               "alpha": self.arch.alphas["hyper"].tolist(), "scale_probs": scale_probs,
               "path": decode_path(self.space, weights, self.space.prune_threshold),
               "aggregation_strides": None, "aggregation_weights": None}
        if self.space.aggregation:
            out["aggregation_strides"] = list(self.space.aggregation_strides)
            out["aggregation_weights"] = self.relax(self.arch.alphas["aggregation_scale"]).tolist()
        return out


# -- latency ----------------------------------------------------------------------------------
def input_probe(spec: CellSpec, key: Key, image: tuple[int, int]) -> Probe:
    """LUT probe of preprocessing one input part `key` for cell `spec` (same key as a chain's)."""
    return preprocess_probes(replace(spec, inputs=(0,), input_channels=(key[0],), input_strides=(key[1],)), image)[0]


def body_probes(spec: CellSpec, image: tuple[int, int]) -> list[Probe]:
    """Additions (derivation keeps two edges per node) and the concat + 1x1 output conv."""
    indeg = [sum(d == n for _, d in spec.edges()) for n in spec.node_ids()]
    return [add_probe(spec, image)] * sum(min(2, d) - 1 for d in indeg) + [concat_probe(spec, spec.nodes, image)]


def head_probes(space: HyperSpace, num_classes: int, image: tuple[int, int]) -> list[Probe]:
    if space.aggregation:
        return [head_probe(space.aggregation_channels, space.head_channels, num_classes, s, image)
                for s in space.aggregation_strides]
    return [head_probe(space.channels_at(space.downs), space.head_channels, num_classes, space.output_stride, image)]


def hyper_probes(space: HyperSpace, num_classes: int, image: tuple[int, int]) -> list[Probe]:
    """Every LUT entry the trellis latency and any decoded genotype of it need."""
    from workbench.nas.aggregation import aggregation_specs

    specs, index = trellis_specs(space)
    cell_keys, exit_keys = slot_keys(space, index)
    probes = [stem_probe(space.stem_channels, image)] + head_probes(space, num_classes, image)
    for k, spec in enumerate(specs + (aggregation_specs(space) if space.aggregation else [])):
        keys = cell_keys[k] if k < len(specs) else exit_keys
        probes += [input_probe(spec, key, image) for ks in keys for key in ks]
        probes += body_probes(spec, image)
        probes += [op_probe(spec, src, op, image) for src, _ in spec.edges() for op in space.ops if op != NONE]
    return probes


class HyperLatencyModel(nn.Module):
    """E[latency] of the hyper supernet, differentiable in op, hyper-cell and aggregation weights.

        E[L] = stem + sum_{layer, scale} P(cell used) * E[cell]  (a pruned layer costs nothing)
               + sum_s w_agg(s) * (E[aggregation cell at s] + head at s)

    E[cell] = its preprocessing (per mixed input part, weighted by the part's share) + additions +
    concat/1x1 + sum_edges keep(e) * sum_ops p(op) * LUT(op at the cell's scale and channels), so a
    cell at 1/4 costs more than the same cell at 1/32. The aggregation cell counts the preprocessing
    of every input (derivation may drop unused ones, so E[L] errs high there). Called with a plain
    list of cell weights (as
    the Architect does for its reference), the path and aggregation choices count as uniform.
    """

    def __init__(self, lut: dict, model: HyperSupernet):
        super().__init__()
        space, image = model.space, tuple(lut["input_size"])
        self.space, self.cell_index, self.n_trellis = space, dict(model.cell_index), model.n_trellis
        self.scale = calibration_scale(lut)  # measured / piece-sum of reference networks (latency.calibrate)
        self.fixed_ms = lookup(lut, stem_probe(space.stem_channels, image))
        self.head_ms = [lookup(lut, p) for p in head_probes(space, model.num_classes, image)]
        self.body_ms, self.input_ms, tables, self.offsets = [], [], [], [0]
        for cell in model.cells:
            spec = cell.spec
            self.body_ms.append(sum(lookup(lut, p) for p in body_probes(spec, image)))
            self.input_ms.append([{key: lookup(lut, input_probe(spec, key, image)) for key in pre.pre_keys}
                                  for pre in cell.preprocess])
            edges = spec.edges()
            indeg = {n: sum(d == n for _, d in edges) for n in spec.node_ids()}
            table = torch.zeros(len(edges), len(space.ops))
            for e, (src, dst) in enumerate(edges):
                for o, op in enumerate(space.ops):
                    if op != NONE:
                        table[e, o] = min(2, indeg[dst]) / indeg[dst] * lookup(lut, op_probe(spec, src, op, image))
            tables.append(table)
            self.offsets.append(self.offsets[-1] + len(edges))
        self.register_buffer("table", torch.cat(tables))
        self.edges_per_cell = [b - a for a, b in zip(self.offsets, self.offsets[1:])]

    def uniform(self) -> torch.Tensor:
        """E[latency] with every op, hyper-cell choice and aggregation stride equally likely."""
        n_ops = self.table.shape[1]
        return self([torch.full((e, n_ops), 1.0 / n_ops, device=self.table.device) for e in self.edges_per_cell])

    def cell_ms(self, k: int, inputs: list[Slot], weights: list[torch.Tensor]) -> torch.Tensor:
        ops = (weights[k] * self.table[self.offsets[k]:self.offsets[k + 1]]).sum()
        pre = sum(coef * self.input_ms[k][i][key] for i, slot in enumerate(inputs) for key, (coef, _) in slot.items())
        return ops + pre + self.body_ms[k]

    def forward(self, weights: list[torch.Tensor]) -> torch.Tensor:
        dev = self.table.device
        path = getattr(weights, "path", None)
        if path is None:
            path = torch.full((self.space.layers, len(CHOICES)), 1.0 / len(CHOICES), device=dev)
        total = []

        def run_cell(layer, kind, j, st, mass):
            total.append(mass * self.cell_ms(self.cell_index[layer, kind, j], [st.prev, st.cur], weights))

        _, exits = walk(self.space, local_probs(self.space, path), None, run_cell)
        out = self.fixed_ms + sum(total)
        if not self.space.aggregation:
            return self.scale * (out + self.head_ms[0])
        scale = getattr(weights, "scale", None)
        n = len(self.head_ms)
        for j, k in enumerate(range(self.n_trellis, self.n_trellis + n)):
            w = 1.0 / n if scale is None else scale[j]
            out = out + w * (self.cell_ms(k, exits, weights) + self.head_ms[j])
        return self.scale * out


def hyper_space(cfg) -> HyperSpace:
    """The HyperSpace of a SearchConfig with space="hyper"; ConfigError on a combination it cannot search."""
    if cfg.gcn:
        raise ConfigError("gcn: the GCN-guided module follows a chain of cells; set gcn=false with space=hyper")
    if cfg.fusion:
        raise ConfigError("fusion: space=hyper fuses scales with its aggregation cell; set fusion=false")
    return HyperSpace.from_config(cfg)


def build_hyper_supernet(cfg, num_classes: int) -> HyperSupernet:
    """SPACES builder for space="hyper" (the `autortnet` preset)."""
    return HyperSupernet(hyper_space(cfg), num_classes, cfg.cell_sharing, cfg.relaxation)
