"""An exponential moving average of the network's weights (timm's ModelEma, Polyak averaging).

A short run ends while the weights still jitter from step to step; their running average is
often a better network than the last step's. The average is torch's `AveragedModel` over the
parameters and the buffers (BatchNorm statistics too, as timm does), with TensorFlow's warm-up of
the decay, min(decay, (1 + n) / (10 + n)) after n updates: early on the average follows the
weights closely, and over a 2,000-step run it covers roughly its last n / 9 steps.

The averaged weights are the run's network: evaluation, the run record's mIoU, `workbench
evaluate`, predict and export load them (bench times the architecture, not the weights) (checkpoint key `model_ema`); the raw weights stay under
`model` so that training resumes from them, and their mIoU is recorded beside as `miou_raw`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from workbench.errors import CheckpointError


def warm_decay(decay: float, updates: int) -> float:
    """The decay of update number `updates` (1-based): the target `decay`, lower while warming up."""
    return min(decay, (1 + updates) / (10 + updates))


def _ema_update(decay: float):
    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], n_averaged: torch.Tensor) -> None:
        if averaged[0].is_floating_point():
            get_ema_multi_avg_fn(warm_decay(decay, int(n_averaged)))(averaged, current, n_averaged)
        else:  # integer buffers (BatchNorm's batch counter) are counts, not weights
            for a, c in zip(averaged, current, strict=True):
                a.copy_(c)
    return update


def build_ema(model: nn.Module, decay: float) -> AveragedModel | None:
    """The averaged copy of `model` (after its memory format and device are set), or None when
    `decay` is 0."""
    if decay <= 0:
        return None
    ema = AveragedModel(model, multi_avg_fn=_ema_update(decay), use_buffers=True)
    ema.module.eval().requires_grad_(False)
    return ema


def ema_state(ema: AveragedModel) -> dict:
    """What the checkpoint keeps: the averaged network's state dict and the update count."""
    return {"model_ema": ema.module.state_dict(), "ema_updates": int(ema.n_averaged)}


def load_ema_state(ema: AveragedModel, state: dict, where: str) -> None:
    if "model_ema" not in state:
        raise CheckpointError(f"{where}: has no 'model_ema' entry (the run was started without ema_decay)")
    ema.module.load_state_dict(state["model_ema"])
    ema.n_averaged.fill_(int(state["ema_updates"]))


def deployed_weights(state: dict) -> dict:
    """The weights a retrain checkpoint stands for: the averaged ones when the run kept an
    average, else the trained ones."""
    return state["model_ema"] if "model_ema" in state else state["model"]
