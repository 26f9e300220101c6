"""The architecture step, kept apart from the weight step (first-order DARTS).

One step: relaxed weights (Gumbel noise if so configured) -> task loss on an architecture batch
(or the mean over several, `arch_batches`: one batch's gradient is mostly noise) -> + lambda *
latency term on the noise-free expected latency -> Adam on the alphas and the GCN module. The
backward pass is restricted to those parameters: the weight gradients would only be zeroed by the
next weight step, and skipping them leaves the alphas' gradients bit-identical at about 0.6x the
backward time (benchmarks/results/search_length.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from workbench.nas.latency.expected import latency_term
from workbench.nas.precision import Precision
from workbench.nas.supernet import Supernet


class Architect:
    def __init__(self, model: Supernet, latency: torch.nn.Module | None, *, lr: float, weight_decay: float,
                 latency_weight: float, target_latency_ms: float | None, target_mode: str = "above",
                 ignore_index: int = 255, average_gradients=None, precision: str = "fp32"):
        self.model, self.latency = model, latency
        self.average_gradients = average_gradients  # under torchrun: average the alphas' gradients
        self.precision = Precision(precision, next(model.parameters()).device)
        self.optimizer = torch.optim.Adam(model.arch_parameters(), lr=lr, betas=(0.5, 0.999),
                                          weight_decay=weight_decay)
        self.latency_weight, self.target, self.mode = latency_weight, target_latency_ms, target_mode
        self.ignore_index = ignore_index
        self.reference_ms = self._uniform_latency()

    def _uniform_latency(self) -> float | None:
        """E[latency] with every op equally likely: the scale of the target-free latency term."""
        if self.latency is None:
            return None
        with torch.no_grad():
            return float(self.latency.uniform())

    def expected_latency(self) -> torch.Tensor | None:
        return None if self.latency is None else self.model.expected_latency(self.latency)

    def step(self, images: torch.Tensor, labels: torch.Tensor,
             more: Sequence[tuple[torch.Tensor, torch.Tensor]] = ()) -> float:
        """One Adam step on the task loss averaged over (images, labels) and the `more` batches (each
        with its own relaxation sample, backpropagated one at a time to bound memory), plus the
        latency term once. Returns that loss."""
        self.optimizer.zero_grad(set_to_none=True)
        batches = [(images, labels), *more]
        params = self.model.arch_parameters()
        total = 0.0
        for i, (x, y) in enumerate(batches):
            with self.precision.autocast():
                logits = self.model(x, self.model.arch_weights(sample=True))
            loss = F.cross_entropy(logits.float(), y, ignore_index=self.ignore_index)
            if len(batches) > 1:
                loss = loss / len(batches)
            if i == len(batches) - 1 and self.latency is not None and self.latency_weight > 0:
                term = latency_term(self.expected_latency(), self.reference_ms, self.target, self.mode)
                loss = loss + self.latency_weight * term
            self.precision.backward(loss, inputs=params)
            total += float(loss.detach())
        if self.average_gradients is not None:
            self.average_gradients(params)
        self.precision.step(self.optimizer)
        return total
