"""The AutoRTNet supernet: the hyper-cell trellis of DARTS search cells, then aggregation cells.

Every cell of the trellis is an ordinary `SearchCell` with `MixedOp` edges and its own alpha
(cell-independent, `ArchParams`), whose inputs are mixtures of differently shaped features
(`SlotPreprocess`); channels are `channels` at 1/4 and 1/8 and double at every coarser scale (the
GAS/LGCNet chain layout). The hyper-cell weights (keep / down / prune per layer) and the
aggregation-scale weights are architecture parameters too.
"""

from __future__ import annotations

from collections import defaultdict

import torch
from torch import nn

from workbench.nas.cells import CellSpec, Preprocess, feature_size
from workbench.nas.chain import ChainBody
from workbench.nas.darts import CellSupernet, SearchCell
from workbench.nas.latency.probes import Probe
from workbench.nas.spaces.hyper.aggregation import aggregation_specs
from workbench.nas.spaces.hyper.decode import decode_body, decode_path, encode_body
from workbench.nas.spaces.hyper.latency import HyperLatencyModel, hyper_probes
from workbench.nas.spaces.hyper.trellis import (
    CHOICES,
    DOWN,
    KEEP,
    PRUNE,
    HyperSpace,
    Key,
    Slot,
    key_name,
    local_probs,
    slot_keys,
    trellis_specs,
    walk,
)


class SlotPreprocess(nn.Module):
    """Preprocess of one cell input that may be a mixture: sum_k coef_k * Preprocess_k(feature_k)."""

    def __init__(self, keys: list[Key], channels: int, target_stride: int):
        super().__init__()
        self.pre_keys = list(keys)
        self.pre = nn.ModuleDict({key_name(k): Preprocess(k[0], channels, k[1], target_stride, affine=False)
                                  for k in keys})

    def forward(self, slot: Slot, size: tuple[int, int]) -> torch.Tensor | None:
        """None when every part is absent (exact weights: float coefficients, 0.0 not run)."""
        parts = [coef * self.pre[key_name(k)](f, size) for k, (coef, f) in sorted(slot.items())
                 if torch.is_tensor(coef) or (coef and f is not None)]
        return sum(parts) if parts else None


class HyperWeights(list):
    """Relaxed weights of a hyper supernet: per-cell op weights (the list), `path` (layers x 3
    hyper-cell weights) and `scale` (weights of the aggregation strides, or None). `exact`: one-hot
    weights of one network, which `forward` runs without the parts they weigh 0."""

    def __init__(self, cells, path: torch.Tensor | None = None, scale: torch.Tensor | None = None,
                 exact: bool = False):
        super().__init__(cells)
        self.path, self.scale, self.exact = path, scale, exact


class HyperSupernet(CellSupernet):
    """Stem -> hyper-cell trellis -> aggregation cell(s) -> head. A DARTS cell supernet whose
    cells take mixed inputs (`make_cell`); `specs` lists the trellis cells, then the aggregation
    cells (one per candidate stride)."""

    def __init__(self, space: HyperSpace, num_classes: int, cell_sharing: bool = False,
                 relaxation: str = "softmax"):
        specs, self.cell_index = trellis_specs(space)
        self.n_trellis = len(specs)
        if space.aggregation:
            specs += aggregation_specs(space)
        self.slot_keys = slot_keys(space, self.cell_index)
        super().__init__(specs, list(space.ops), space.stem_channels, space.head_channels, num_classes,
                         cell_sharing=cell_sharing, gcn=False, relaxation=relaxation)
        self.space = space
        # hyper-cell and aggregation-scale weights are architecture parameters (ArchParams holds them)
        self.arch.alphas["hyper"] = nn.Parameter(1e-3 * torch.randn(space.layers, len(CHOICES)))
        if space.aggregation:
            self.arch.alphas["aggregation_scale"] = nn.Parameter(1e-3 * torch.randn(len(space.aggregation_strides)))

    def make_cell(self, k: int, spec: CellSpec) -> SearchCell:
        """A trellis cell whose inputs are mixtures: one SlotPreprocess per input, per part shape."""
        cell_keys, exit_keys = self.slot_keys
        keys = cell_keys[k] if k < self.n_trellis else exit_keys
        return SearchCell(spec, self.ops, nn.ModuleList(SlotPreprocess(ks, spec.channels, spec.in_stride)
                                                        for ks in keys))

    def arch_weights(self, sample: bool = False) -> HyperWeights:
        cells = super().arch_weights(sample)
        scale = self.arch.alphas["aggregation_scale"] if self.space.aggregation else None
        return HyperWeights(cells, self.relax(self.arch.alphas["hyper"], sample),
                            None if scale is None else self.relax(scale, sample))

    def forward(self, x: torch.Tensor, weights: HyperWeights | None = None) -> torch.Tensor:
        if weights is None:
            weights = self.arch_weights(sample=self.training)
        size = tuple(x.shape[-2:])
        probs = local_probs(self.space, weights.path)
        cell_weights, scale = list(weights), weights.scale
        if getattr(weights, "exact", False):  # plain floats: what weighs 0.0 is skipped, not multiplied
            probs = {key: p.tolist() for key, p in probs.items()}
            cell_weights = [w.tolist() for w in weights]
            scale = None if scale is None else scale.tolist()

        def run_cell(layer, kind, j, st, mass):
            if isinstance(mass, float) and not mass:
                return None
            k = self.cell_index[layer, kind, j]
            cell = self.cells[k]
            return cell([st.prev, st.cur], feature_size(size, cell.spec.in_stride), cell_weights[k])

        final, exits = walk(self.space, probs, self.stem(x), run_cell)
        if not self.space.aggregation:
            (coef, feat), = final.cur.values()
            return self.head(feat, size)
        logits = 0
        for j, k in enumerate(range(self.n_trellis, len(self.cells))):
            if isinstance(scale[j], float) and not scale[j]:
                continue
            cell = self.cells[k]
            feat = cell(exits, feature_size(size, cell.spec.in_stride), cell_weights[k])
            logits = logits + scale[j] * self.head(feat, size)
        return logits

    # -- search-loop hooks (see Supernet) ---------------------------------------------------------
    def lut_probes(self, image: tuple[int, int]) -> list[Probe]:
        return hyper_probes(self.space, self.num_classes, image)

    def latency_model(self, lut: dict) -> HyperLatencyModel:
        return HyperLatencyModel(lut, self)

    def derive(self) -> ChainBody:
        """Decode path, cells and aggregation cell (decode.py) from the noise-free weights."""
        return decode_body(self, self.arch_weights(sample=False), self.space.prune_threshold)

    def exact_weights(self, body: ChainBody) -> HyperWeights:
        """`encode_body`'s one-hot weights, marked exact: forward runs that network alone."""
        weights = encode_body(self, body)
        weights.exact = True
        return weights

    @torch.no_grad()
    def alpha_state(self) -> list[dict]:
        rows = super().alpha_state()
        layer_of = {k: layer for (layer, _, _), k in self.cell_index.items()}
        for row in rows:
            row["layer"] = layer_of.get(row["index"])
        return rows

    @torch.no_grad()
    def space_state(self) -> dict:
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
        out = {"choices": list(CHOICES), "weights": weights.tolist(), "scales": self.space.scales,
               "alpha": self.arch.alphas["hyper"].tolist(), "scale_probs": scale_probs,
               "path": decode_path(self.space, weights, self.space.prune_threshold),
               "aggregation_strides": None, "aggregation_weights": None}
        if self.space.aggregation:
            out["aggregation_strides"] = list(self.space.aggregation_strides)
            out["aggregation_weights"] = self.relax(self.arch.alphas["aggregation_scale"]).tolist()
        return out
