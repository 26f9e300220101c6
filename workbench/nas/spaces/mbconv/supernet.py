"""The MBConv supernet: every layer a weighted mixture of candidate blocks, its width searched too.

Per layer two categorical choices, each relaxed like a DARTS edge: the block (kernel x expansion x
squeeze-excitation, plus `skip` after a stage's first layer, which makes the depth searchable) and
the output width (a fraction of the stage's channels). Blocks compute at the stage's full width and
the width mixture masks channels, FBNetV2-style: channel c survives with the summed weight of the
widths that keep it. The expected latency sums, per layer, the table's block latencies weighted by
p(block) x p(input width) x p(output width); the input width is the previous layer's choice (a
skipped layer passes on an earlier width, which this estimate ignores). The derived network's own
prediction (`body.body_probes`) is exact.

`exact_weights` inverts `derive` for single-path training and one-shot scoring: one-hot floats under
which only the selected block of each layer runs, at the stage's full width with the unselected
channels masked (the shared weights, FBNetV2-style: not the derived network's own narrower blocks).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from workbench.errors import GenotypeError
from workbench.nas.cells import SegHead, Stem
from workbench.nas.latency.probes import Probe, head_probe, stem_probe
from workbench.nas.latency.table import calibration_scale, lookup
from workbench.nas.spaces.mbconv.blocks import MBConv, TwoScaleDecoder
from workbench.nas.spaces.mbconv.body import Block, MBConvBody, block_probe, decoder_probe
from workbench.nas.spaces.mbconv.config import MBConvConfig
from workbench.nas.supernet import Supernet

SKIP = "skip"


@dataclass(frozen=True)
class Layer:
    """One searched position: its stage, input and output widths to choose from, stride, choices."""

    stage: int
    index: int                    # within the stage
    in_widths: tuple[int, ...]    # channel counts the input may have
    out_widths: tuple[int, ...]
    stride: int
    in_stride: int
    choices: tuple[str, ...]      # block names, then 'skip' where allowed


def layers_of(space: MBConvConfig, stem_channels: int) -> list[Layer]:
    out, ins = [], (stem_channels,)
    names = [Block(k, e, s, 0).name() for k, e, s in space.block_choices()]
    for s, depth in enumerate(space.depths):
        widths = tuple(space.channels(s, m) for m in space.width_multipliers)
        for j in range(depth):
            down = s > 0 and j == 0
            skip = space.skip and j > 0
            out.append(Layer(s, j, ins, widths, 2 if down else 1, space.stage_stride(s - 1 if down else s),
                             tuple(names) + ((SKIP,) if skip else ())))
            ins = widths
    return out


@dataclass
class MBWeights:
    """Per layer, the probabilities of its choices and of its output widths: tensors (relaxed), or
    plain floats for one exact network (`exact_weights`), where what weighs 0.0 is not run."""

    blocks: list[torch.Tensor] | list[list[float]]
    widths: list[torch.Tensor] | list[list[float]]


class MixedLayer(nn.Module):
    def __init__(self, layer: Layer, space: MBConvConfig):
        super().__init__()
        c_in, c_out = max(layer.in_widths), max(layer.out_widths)
        self.blocks = nn.ModuleList(MBConv(c_in, c_out, k, e, s, layer.stride) for k, e, s in space.block_choices())
        self.skip = SKIP in layer.choices
        masks = torch.zeros(len(layer.out_widths), c_out)
        for i, w in enumerate(layer.out_widths):
            masks[i, :w] = 1.0
        self.register_buffer("masks", masks)

    def forward(self, x: torch.Tensor, p: torch.Tensor | list[float], q: torch.Tensor | list[float]) -> torch.Tensor:
        if isinstance(p, list):  # exact one-hot weights: only the picked block runs, or none if skipped
            pick = p.index(1.0)
            if pick == len(self.blocks):
                return x
            return self.blocks[pick](x) * self.masks[q.index(1.0)].view(1, -1, 1, 1)
        y = sum(p[i] * block(x) for i, block in enumerate(self.blocks))
        y = y * (q @ self.masks).view(1, -1, 1, 1)
        return y + p[-1] * x if self.skip else y


class MBConvSupernet(Supernet):
    def __init__(self, space: MBConvConfig, stem_channels: int, head_channels: int, num_classes: int,
                 relaxation: str = "softmax"):
        super().__init__(relaxation)
        self.space, self.num_classes = space, num_classes
        self.stem_channels, self.head_channels = stem_channels, head_channels
        self.layers_spec = layers_of(space, stem_channels)
        self.stem = Stem(stem_channels)
        self.layers = nn.ModuleList(MixedLayer(layer, space) for layer in self.layers_spec)
        last = len(space.widths) - 1
        self.lateral_layer = max(k for k, layer in enumerate(self.layers_spec) if layer.stage == space.lateral_stage)
        self.decoder = TwoScaleDecoder(max(self.layers_spec[self.lateral_layer].out_widths),
                                       max(self.layers_spec[-1].out_widths), space.decoder_channels)
        self.head = SegHead(space.decoder_channels, head_channels, num_classes)
        self.arch = nn.ParameterDict()
        for k, layer in enumerate(self.layers_spec):
            self.arch[f"block{k}"] = nn.Parameter(1e-3 * torch.randn(len(layer.choices)))
            self.arch[f"width{k}"] = nn.Parameter(1e-3 * torch.randn(len(layer.out_widths)))
        self.last_stage = last

    def arch_weights(self, sample: bool = False) -> MBWeights:
        n = len(self.layers_spec)
        return MBWeights([self.relax(self.arch[f"block{k}"], sample) for k in range(n)],
                         [self.relax(self.arch[f"width{k}"], sample) for k in range(n)])

    def forward(self, x: torch.Tensor, weights: MBWeights | None = None) -> torch.Tensor:
        if weights is None:
            weights = self.arch_weights(sample=self.training)
        size = tuple(x.shape[-2:])
        h, lateral = self.stem(x), None
        for k, layer in enumerate(self.layers):
            h = layer(h, weights.blocks[k], weights.widths[k])
            if k == self.lateral_layer:
                lateral = h
        return self.head(self.decoder(lateral, h), size)

    # -- the search loop's hooks ------------------------------------------------------------------
    def lut_probes(self, image: tuple[int, int]) -> list[Probe]:
        probes = [stem_probe(self.stem_channels, image),
                  head_probe(self.space.decoder_channels, self.head_channels, self.num_classes,
                             self.space.stage_stride(self.space.lateral_stage), image)]
        choices = self.space.block_choices()
        for layer in self.layers_spec:
            probes += [block_probe(a, b, k, e, s, layer.stride, layer.in_stride, image)
                       for (k, e, s) in choices for a in layer.in_widths for b in layer.out_widths]
        probes += [self._decoder_probe(a, b, image) for a in self.layers_spec[self.lateral_layer].out_widths
                   for b in self.layers_spec[-1].out_widths]
        return probes

    def _decoder_probe(self, c_lateral: int, c_last: int, image: tuple[int, int]) -> Probe:
        return decoder_probe(c_lateral, c_last, self.space.decoder_channels,
                             self.space.stage_stride(self.space.lateral_stage),
                             self.space.stage_stride(self.last_stage), image)

    def latency_model(self, lut: dict) -> MBLatencyModel:
        return MBLatencyModel(lut, self)

    def derive(self) -> MBConvBody:
        w = self.arch_weights(sample=False)
        stages: list[list[Block]] = [[] for _ in self.space.widths]
        for k, layer in enumerate(self.layers_spec):
            choice = layer.choices[int(w.blocks[k].argmax())]
            if choice == SKIP:
                continue
            kernel, expand, se = self.space.block_choices()[layer.choices.index(choice)]
            stages[layer.stage].append(Block(kernel, expand, se, layer.out_widths[int(w.widths[k].argmax())]))
        return MBConvBody(stages, self.space.lateral_stage, self.space.decoder_channels)

    def exact_weights(self, body: MBConvBody) -> MBWeights:
        """`derive`'s inverse as plain one-hot floats: stage s's blocks on its first layers, the
        layers after them skipped, so forward runs that network alone on the shared weights."""
        if len(body.stages) != len(self.space.widths):
            raise GenotypeError(f"stages: {len(body.stages)} stages for a supernet of {len(self.space.widths)}")
        if (body.lateral_stage, body.decoder_channels) != (self.space.lateral_stage, self.space.decoder_channels):
            raise GenotypeError(f"decoder: stage {body.lateral_stage} at {body.decoder_channels}ch for a supernet "
                                f"with stage {self.space.lateral_stage} at {self.space.decoder_channels}ch")
        blocks: list[list[float]] = []
        widths: list[list[float]] = []
        for s, stage in enumerate(body.stages):
            layers = [layer for layer in self.layers_spec if layer.stage == s]
            least = 1 if self.space.skip else len(layers)
            if not least <= len(stage) <= len(layers):
                raise GenotypeError(f"stages[{s}]: {len(stage)} layers for a stage of {least}-{len(layers)}")
            for j, layer in enumerate(layers):
                choice, channels = (stage[j].name(), stage[j].channels) if j < len(stage) else (SKIP, None)
                if choice not in layer.choices:
                    raise GenotypeError(f"stages[{s}].layers[{j}]: block {choice} is not one of {list(layer.choices)}")
                if channels is not None and channels not in layer.out_widths:
                    raise GenotypeError(f"stages[{s}].layers[{j}]: {channels} channels is not one of "
                                        f"{list(layer.out_widths)}")
                width = layer.out_widths.index(channels) if channels is not None else len(layer.out_widths) - 1
                blocks.append([float(i == layer.choices.index(choice)) for i in range(len(layer.choices))])
                widths.append([float(i == width) for i in range(len(layer.out_widths))])
        return MBWeights(blocks, widths)

    @torch.no_grad()
    def alpha_state(self) -> list[dict]:
        """Two decision groups per layer (its block, its width), each one edge wide."""
        w = self.arch_weights(sample=False)
        rows = []
        for k, layer in enumerate(self.layers_spec):
            stride = self.space.stage_stride(layer.stage)
            for kind, key, ops, weights in (
                    ("layer", f"block{k}", list(layer.choices), w.blocks[k]),
                    ("width", f"width{k}", [f"{c}ch" for c in layer.out_widths], w.widths[k])):
                rows.append({"index": len(rows), "kind": kind, "stride": stride, "layer": k, "ops": ops,
                             "edges": [[0, 1]], "alpha": [self.arch[key].tolist()], "alpha_gcn": None,
                             "weights": [weights.tolist()]})
        return rows


class MBLatencyModel(nn.Module):
    """E[latency] = stem + head + E[decoder] + sum over layers of
    sum_{block, w_in, w_out} p(block) p(w_in) p(w_out) LUT(block, w_in, w_out)."""

    def __init__(self, lut: dict, model: MBConvSupernet):
        super().__init__()
        image, space = tuple(lut["input_size"]), model.space
        self.scale = calibration_scale(lut)
        self.fixed_ms = lookup(lut, stem_probe(model.stem_channels, image)) + lookup(lut, head_probe(
            space.decoder_channels, model.head_channels, model.num_classes, space.stage_stride(space.lateral_stage),
            image))
        choices = space.block_choices()
        self.tables = nn.ParameterList()
        for layer in model.layers_spec:
            t = torch.tensor([[[lookup(lut, block_probe(a, b, k, e, s, layer.stride, layer.in_stride, image))
                                for b in layer.out_widths] for a in layer.in_widths] for (k, e, s) in choices])
            self.tables.append(nn.Parameter(t, requires_grad=False))
        self.decoder = nn.Parameter(torch.tensor([[lookup(lut, model._decoder_probe(a, b, image))
                                                   for b in model.layers_spec[-1].out_widths]
                                                  for a in model.layers_spec[model.lateral_layer].out_widths]),
                                    requires_grad=False)
        self.lateral_layer, self.n_blocks = model.lateral_layer, len(choices)
        self.n_choices = [len(layer.choices) for layer in model.layers_spec]
        self.n_widths = [len(layer.out_widths) for layer in model.layers_spec]

    def forward(self, weights: MBWeights) -> torch.Tensor:
        total = torch.as_tensor(self.fixed_ms, dtype=self.decoder.dtype, device=self.decoder.device)
        q_in = torch.ones(1, device=self.decoder.device)  # the stem: one width
        for k, table in enumerate(self.tables):
            p, q = weights.blocks[k][: self.n_blocks], weights.widths[k]
            total = total + torch.einsum("o,a,b,oab->", p, q_in, q, table)
            q_in = q
        total = total + torch.einsum("a,b,ab->", weights.widths[self.lateral_layer], weights.widths[-1], self.decoder)
        return self.scale * total

    def uniform(self) -> torch.Tensor:
        dev = self.decoder.device
        return self(MBWeights([torch.full((n,), 1.0 / n, device=dev) for n in self.n_choices],
                              [torch.full((n,), 1.0 / n, device=dev) for n in self.n_widths]))
