"""Mixed precision for the search's two kinds of steps: an autocast context, and for fp16 a
gradient scaler per optimizer (its own, since the weight and architecture steps are separate
backward passes). fp32 is the plain path: no context, no scaler."""

from __future__ import annotations

import contextlib

import torch

from workbench.errors import ConfigError


class Precision:
    def __init__(self, precision: str, device: torch.device):
        if precision == "fp16" and device.type != "cuda":
            raise ConfigError("precision: fp16 needs a CUDA device (gradient scaling); use bf16 on the CPU")
        self.name, self.device = precision, device
        self.scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None

    def autocast(self):
        if self.name == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.name == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def backward(self, loss: torch.Tensor, inputs: list[torch.Tensor] | None = None) -> None:
        """`inputs`: accumulate gradients only into these (autograd then skips every other gradient)."""
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward(inputs=inputs)

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        """Before gradient clipping: the true gradients."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is None:
            optimizer.step()
        else:  # skipped when the scaled gradients overflowed; the scale then shrinks
            self.scaler.step(optimizer)
            self.scaler.update()

    def state_dict(self) -> dict:
        return self.scaler.state_dict() if self.scaler is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)
