"""Latency of the AutoRTNet trellis: its table's pieces and its expected latency over path choices."""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from workbench.nas.cells import CellSpec
from workbench.nas.latency.expected import derivable
from workbench.nas.latency.probes import (
    Probe,
    add_probe,
    concat_probe,
    head_probe,
    op_probe,
    preprocess_probes,
    stem_probe,
)
from workbench.nas.latency.table import calibration_scale, lookup
from workbench.nas.operations import NONE
from workbench.nas.spaces.hyper.aggregation import aggregation_specs
from workbench.nas.spaces.hyper.trellis import (
    CHOICES,
    HyperSpace,
    Key,
    Slot,
    local_probs,
    slot_keys,
    trellis_specs,
    walk,
)


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
    cell at 1/4 costs more than the same cell at 1/32 (p(op) over the derivable ops, as in
    `latency.expected`). The aggregation cell counts the preprocessing
    of every input (derivation may drop unused ones, so E[L] errs high there). Called with a plain
    list of cell weights (as
    the Architect does for its reference), the path and aggregation choices count as uniform.
    """

    def __init__(self, lut: dict, model):
        super().__init__()
        space, image = model.space, tuple(lut["input_size"])
        self.space, self.cell_index, self.n_trellis = space, dict(model.cell_index), model.n_trellis
        self.ops = list(space.ops)
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
        ops = (derivable(weights[k], self.ops) * self.table[self.offsets[k]:self.offsets[k + 1]]).sum()
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
