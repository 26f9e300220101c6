"""Cell structure shared by the supernet and the derived network: specs, stem, cells, head.

A `CellSpec` is plain data (kind, stride, channels, nodes, where its inputs come from). The same
spec builds a search cell (every edge a MixedOp) or a discrete cell (the edges a genotype kept),
so the two can never disagree about shapes, and new cell kinds (fusion, aggregation, AutoRTNet's
hyper-cells) are new specs rather than new networks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from workbench.nas.operations import ReLUConvBN

STEM_STRIDE = 4


def feature_size(size: tuple[int, int], stride: int) -> tuple[int, int]:
    """Spatial size at `stride`: every stride-2 layer here maps n -> ceil(n / 2)."""
    h, w = size
    for _ in range(int(math.log2(stride))):
        h, w = (h + 1) // 2, (w + 1) // 2
    return h, w


@dataclass(frozen=True)
class CellSpec:
    kind: str                        # normal | reduction | fusion | aggregation
    stride: int                      # output stride
    channels: int
    nodes: int
    inputs: tuple[int, ...]          # producers: -1 = stem, k = cell k
    input_channels: tuple[int, ...]
    input_strides: tuple[int, ...]
    index: int | None = None

    @property
    def n_inputs(self) -> int:
        return len(self.inputs)

    @property
    def edge_stride(self) -> int:
        """Edges leaving the inputs of a reduction cell have stride 2."""
        return 2 if self.kind == "reduction" else 1

    @property
    def in_stride(self) -> int:
        return self.stride // self.edge_stride

    def edges(self) -> list[tuple[int, int]]:
        """Every (from, to) pair of the dense cell DAG, grouped by destination node."""
        n = self.n_inputs
        return [(j, i) for i in range(n, n + self.nodes) for j in range(i)]

    def node_ids(self) -> list[int]:
        return list(range(self.n_inputs, self.n_inputs + self.nodes))


def chain_specs(layout: list[tuple[str, int, int]], stem_channels: int) -> list[CellSpec]:
    """Specs of a cell chain: layout = [(kind, channels, nodes)], cell k reads cells k-2 and k-1."""
    specs: list[CellSpec] = []
    chans, strides = {-1: stem_channels}, {-1: STEM_STRIDE}
    for k, (kind, channels, nodes) in enumerate(layout):
        inputs = (max(k - 2, -1), k - 1)
        stride = strides[k - 1] * (2 if kind == "reduction" else 1)
        specs.append(CellSpec(kind, stride, channels, nodes, inputs, tuple(chans[i] for i in inputs),
                              tuple(strides[i] for i in inputs), k))
        chans[k], strides[k] = channels, stride
    return specs


def multi_input_spec(kind: str, inputs: list[int], cells: list[CellSpec], stem_channels: int,
                     stride: int, channels: int, nodes: int) -> CellSpec:
    """Spec of a fusion/aggregation cell reading `inputs` (-1 = stem) resized to `stride`."""
    chans = [stem_channels if i < 0 else cells[i].channels for i in inputs]
    strides = [STEM_STRIDE if i < 0 else cells[i].stride for i in inputs]
    return CellSpec(kind, stride, channels, nodes, tuple(inputs), tuple(chans), tuple(strides))


class Preprocess(nn.Module):
    """Bring one cell input to the cell's channels and resolution: avg-pool down, 1x1 conv, resize up."""

    def __init__(self, c_in: int, c_out: int, in_stride: int, target_stride: int, affine: bool = True):
        super().__init__()
        ratio = target_stride // in_stride if target_stride > in_stride else 1
        self.pool = nn.AvgPool2d(ratio, ratio, ceil_mode=True) if ratio > 1 else nn.Identity()
        self.conv = ReLUConvBN(c_in, c_out, 1, affine=affine)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        x = self.conv(self.pool(x))
        if tuple(x.shape[-2:]) != tuple(size):
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return x


class CellBase(nn.Module):
    """Preprocess inputs, sum each node's incoming edges, concat `concat` nodes, 1x1 conv.

    Subclasses provide `self.edge_list` ([(from, to)]), `self.edge_ops` (one module per edge)
    and `run_edge(k, x, weights)`; `preprocess` replaces the default per-input Preprocess modules
    (the AutoRTNet trellis passes its mixed-input ones). The derived network's cell
    (`workbench.nas.chain.DiscreteCell`) runs its own forward over the parts an output reads.
    """

    def __init__(self, spec: CellSpec, concat: list[int], affine: bool, preprocess: nn.ModuleList | None = None):
        super().__init__()
        self.spec = spec
        self.concat = list(concat)
        self.preprocess = preprocess if preprocess is not None else nn.ModuleList(
            Preprocess(c, spec.channels, s, spec.in_stride, affine)
            for c, s in zip(spec.input_channels, spec.input_strides))
        self.project = ReLUConvBN(len(self.concat) * spec.channels, spec.channels, 1, affine=affine)

    def run_edge(self, k: int, x: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def incoming(self, node: int) -> list[int]:
        """Indices (into edge_list) of the edges ending at `node`."""
        if not hasattr(self, "_incoming"):
            self._incoming: dict[int, list[int]] = {}
            for k, (_, dst) in enumerate(self.edge_list):
                self._incoming.setdefault(dst, []).append(k)
        return self._incoming[node]

    def forward(self, inputs: list[torch.Tensor], in_size: tuple[int, int],
                weights: torch.Tensor | None = None) -> torch.Tensor:
        states = [pre(x, in_size) for pre, x in zip(self.preprocess, inputs)]
        for node in self.spec.node_ids():
            states.append(sum(self.run_edge(k, states[self.edge_list[k][0]], weights)
                              for k in self.incoming(node)))
        return self.project(torch.cat([states[i] for i in self.concat], dim=1))


class Stem(nn.Sequential):
    """Two stride-2 3x3 convs: image -> stem_channels at 1/4."""

    def __init__(self, channels: int, affine: bool = True):
        mid = max(channels // 2, 8)
        super().__init__(nn.Conv2d(3, mid, 3, 2, 1, bias=False), nn.BatchNorm2d(mid, affine=affine),
                         nn.ReLU(inplace=True),
                         nn.Conv2d(mid, channels, 3, 2, 1, bias=False), nn.BatchNorm2d(channels, affine=affine))


class SegHead(nn.Module):
    """Light head: ReLU, 3x3 conv-BN-ReLU to head_channels, 1x1 classifier, bilinear to input size."""

    def __init__(self, c_in: int, c_head: int, num_classes: int):
        super().__init__()
        self.conv = nn.Sequential(nn.ReLU(), nn.Conv2d(c_in, c_head, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(c_head), nn.ReLU(inplace=True))
        self.classifier = nn.Conv2d(c_head, num_classes, 1)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        x = self.classifier(self.conv(x))
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
