"""The pieces a latency table times: a module factory and the shapes of its inputs (batch 1).

A table holds every piece a network of the search space is made of: every candidate op at every
supernet position (its channels, stride and input resolution), the stem, the head, and what an
op-sum misses: each cell's input preprocessing (pool/1x1 conv/resize), the node additions and the
concat + 1x1 output conv. Keys are self-describing, so one table serves the supernet and any
genotype of it, and cached measurements are reused across presets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from workbench.nas.cells import CellSpec, Preprocess, SegHead, Stem, feature_size
from workbench.nas.operations import ReLUConvBN, build_op


@dataclass(frozen=True)
class Probe:
    """One thing to time: a module factory and the shapes of its inputs (batch 1)."""

    key: str
    make: Callable[[], nn.Module] = field(compare=False)
    shapes: tuple[tuple[int, ...], ...] = field(compare=False)
    extra: tuple = field(default=(), compare=False)  # trailing non-tensor args (target sizes)


class _Add(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


class _CatProject(nn.Module):
    def __init__(self, n: int, c: int):
        super().__init__()
        self.project = ReLUConvBN(n * c, c, 1)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat(xs, dim=1))


def _hw(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


# -- probes: the pieces of a network ------------------------------------------------------------
def stem_probe(channels: int, image: tuple[int, int]) -> Probe:
    return Probe(f"stem/c{channels}/{_hw(image)}", lambda: Stem(channels), ((1, 3, *image),))


def head_probe(c_in: int, c_head: int, classes: int, stride: int, image: tuple[int, int]) -> Probe:
    size = feature_size(image, stride)
    return Probe(f"head/c{c_in}-{c_head}-k{classes}/{_hw(size)}-{_hw(image)}",
                 lambda: SegHead(c_in, c_head, classes), ((1, c_in, *size),), (tuple(image),))


def op_probe(spec: CellSpec, src: int, op: str, image: tuple[int, int]) -> Probe:
    stride = spec.edge_stride if src < spec.n_inputs else 1
    size = feature_size(image, spec.in_stride if src < spec.n_inputs else spec.stride)
    c = spec.channels
    return Probe(f"op/{op}/c{c}/s{stride}/{_hw(size)}", lambda: build_op(op, c, stride), ((1, c, *size),))


def preprocess_probes(spec: CellSpec, image: tuple[int, int]) -> list[Probe]:
    out, target = [], feature_size(image, spec.in_stride)
    for c_in, s_in in zip(spec.input_channels, spec.input_strides):
        size, c, st = feature_size(image, s_in), spec.channels, spec.in_stride
        out.append(Probe(f"pre/c{c_in}-{c}/s{s_in}-{st}/{_hw(size)}-{_hw(target)}",
                         lambda c_in=c_in, s_in=s_in, c=c, st=st: Preprocess(c_in, c, s_in, st),
                         ((1, c_in, *size),), (target,)))
    return out


def add_probe(spec: CellSpec, image: tuple[int, int]) -> Probe:
    size = feature_size(image, spec.stride)
    return Probe(f"add/c{spec.channels}/{_hw(size)}", _Add, ((1, spec.channels, *size),) * 2)


def concat_probe(spec: CellSpec, n: int, image: tuple[int, int]) -> Probe:
    size, c = feature_size(image, spec.stride), spec.channels
    return Probe(f"cat/n{n}/c{c}/{_hw(size)}", lambda: _CatProject(n, c), ((1, c, *size),) * n)


def kept_edges(indegree: int) -> int:
    return min(2, indegree)


def cell_fixed_probes(spec: CellSpec, image: tuple[int, int], adds: int, concat: int,
                      inputs: list[int] | None = None) -> list[Probe]:
    """Per-cell cost the op-sum misses, as a list of probes (repeated `adds` times for additions);
    `inputs` names the input positions whose preprocessing runs (default: all)."""
    pre = preprocess_probes(spec, image)
    pre = pre if inputs is None else [pre[p] for p in inputs]
    return pre + [add_probe(spec, image)] * adds + [concat_probe(spec, concat, image)]
