"""What the search loop needs of a supernet, whatever its space.

Weight parameters train on one half of the data, architecture parameters on the other (first-order
DARTS, `architect.py`). A space's supernet turns its raw architecture parameters into relaxed
weights (`arch_weights`: softmax, or Gumbel-softmax at temperature `tau`), runs with them, times
its pieces (`lut_probes`), predicts its expected latency (`latency_model`), derives a genotype body
(`derive`) and reports its state for `alphas.jsonl` (`alpha_state`: decision groups of rows x
choices, which the views draw alike for every space; `space_state`: anything else).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class Supernet(nn.Module):
    """Base class: `self.arch` holds the architecture parameters (an nn.Module)."""

    arch: nn.Module

    def __init__(self, relaxation: str = "softmax"):
        super().__init__()
        self.relaxation, self.tau = relaxation, 1.0

    # -- parameters ------------------------------------------------------------------------------
    def arch_parameters(self) -> list[nn.Parameter]:
        return list(self.arch.parameters())

    def weight_parameters(self) -> list[nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def relax(self, alpha: torch.Tensor, sample: bool = False) -> torch.Tensor:
        """Softmax over the last dim; Gumbel-softmax at `tau` (sampled in training steps)."""
        if self.relaxation == "gumbel":
            return F.gumbel_softmax(alpha, tau=self.tau, dim=-1) if sample else torch.softmax(alpha / self.tau, -1)
        return torch.softmax(alpha, dim=-1)

    # -- what a space implements -------------------------------------------------------------------
    def arch_weights(self, sample: bool = False) -> Any:
        """Relaxed architecture weights, as `forward` and the latency model take them."""
        raise NotImplementedError

    def lut_probes(self, image: tuple[int, int]) -> list:
        """Every piece the latency table must time for this supernet and its derived networks."""
        raise NotImplementedError

    def latency_model(self, lut: dict) -> nn.Module:
        """The expected latency as a differentiable function of the arch weights; `.uniform()` gives
        it with every choice equally likely."""
        raise NotImplementedError

    def derive(self) -> Any:
        """The genotype body the noise-free relaxed weights derive to."""
        raise NotImplementedError

    def alpha_state(self) -> list[dict]:
        """Decision groups for alphas.jsonl: [{"index", "kind", "ops", "edges", "alpha", "weights", ...}]."""
        raise NotImplementedError

    def space_state(self) -> dict | None:
        """Anything else the space records per epoch (AutoRTNet: the trellis path), or None."""
        return None

    def exact_weights(self, body: Any) -> Any:
        """Weights under which `forward` runs exactly `body` on the shared weights and skips every
        other op and cell: the one-shot evaluation and the single-path training of weight-sharing
        NAS (`weight_paths: sampled`). A space that cannot invert its derivation does not have it."""
        raise NotImplementedError(f"{type(self).__name__} cannot run one exact network (no exact_weights)")

    # -- shared ----------------------------------------------------------------------------------
    def expected_latency(self, latency: nn.Module, sample: bool = False) -> torch.Tensor:
        return latency(self.arch_weights(sample=sample))

    @torch.no_grad()
    def random_bodies(self, count: int, seed: int) -> list[Any]:
        """Bodies derived from random architecture parameters (latency calibration, benchmarks)."""
        saved = {k: v.detach().clone() for k, v in self.arch.state_dict().items()}
        gen = torch.Generator().manual_seed(seed)
        out = []
        for _ in range(count):
            for p in self.arch.parameters():
                p.copy_(2.0 * torch.randn(p.shape, generator=gen))
            out.append(self.derive())
        self.arch.load_state_dict(saved)
        return out
