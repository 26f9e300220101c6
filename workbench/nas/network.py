"""The discrete network rebuilt from a genotype alone (for retraining, benchmarking, export).

`build_network(genotype)` -> stem (1/4) -> the space's body -> light head -> logits at the input
size. timm-like surface: `forward_features`, `forward_head`, `default_cfg`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from workbench.errors import GenotypeError
from workbench.nas.cells import SegHead, Stem
from workbench.nas.genotypes import Genotype, load_genotype

# state-dict prefixes of workbench 0.1 networks (the chain body's modules sat on the network itself)
_LEGACY_PREFIXES = {"cells.": "body.cells.", "fusion.": "body.multi.", "aggregation.": "body.multi."}


class SegNetwork(nn.Module):
    def __init__(self, genotype: Genotype, num_classes: int):
        from workbench.nas.space import get_space

        super().__init__()
        self.genotype = genotype
        self.num_classes = num_classes
        self.stem = Stem(genotype.stem_channels)
        self.body = get_space(genotype.space).build_body(genotype)
        self.output_stride = int(self.body.output_stride)
        self.size_divisor = int(self.body.size_divisor)
        self.num_features = int(self.body.out_channels)
        self.head = SegHead(self.num_features, genotype.head_channels, num_classes)
        self.default_cfg = {"input_size": (3, *genotype.input_size), "num_classes": num_classes,
                            "preset": genotype.preset, "space": genotype.space}
        self._register_load_state_dict_pre_hook(_legacy_keys)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.stem(x), tuple(x.shape[-2:]))

    def forward_head(self, features: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return self.head(features, size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x), tuple(x.shape[-2:]))


def _legacy_keys(state_dict: dict, prefix: str, *_args) -> None:
    """Checkpoints of workbench 0.1 networks load unchanged (their chain modules get the body prefix)."""
    for key in list(state_dict):
        rest = key[len(prefix):]
        for old, new in _LEGACY_PREFIXES.items():
            if key.startswith(prefix) and rest.startswith(old):
                state_dict[prefix + new + rest[len(old):]] = state_dict.pop(key)
                break


def build_network(genotype: Genotype | str | Path | dict, num_classes: int | None = None) -> SegNetwork:
    """Discrete network from a genotype (object, dict or genotype.json path)."""
    g = load_genotype(genotype)
    try:
        return SegNetwork(g, int(num_classes or g.num_classes))
    except (RuntimeError, ValueError, KeyError) as exc:
        raise GenotypeError(f"genotype ({g.preset}): does not build a network ({exc})") from None
