"""Auxiliary segmentation heads for training only (deep supervision).

PSPNet adds a head on its stage-4 features with weight 0.4; BiSeNet and FasterSeg supervise their
1/16 and 1/32 branches too. The extra gradient reaches the early stages directly, which is what
small networks trained from scratch on a short budget lack.

The heads sit beside the network, not in it: a forward hook hands them a body stage's output
while the network trains, their weights go into the checkpoint under their own key, and the
network's state dict, fingerprint, latency, export and evaluation stay those of the network alone.
A head reads the last stage output at its stride, or, when the network has no stage there, the
last one at the deepest stride below it; the run record says which.
"""

from __future__ import annotations

import torch
from torch import nn

from workbench.errors import ConfigError


def body_stages(model: nn.Module) -> list[nn.Module]:
    """The modules whose outputs a head may read, in forward order: the chain's cells (GAS,
    LGCNet, AutoRTNet), the MBConv stages, or a segmentation-models-pytorch encoder (its output
    is the list of its features)."""
    body = getattr(model, "body", None)
    for attr in ("cells", "stages"):
        stages = getattr(body, attr, None)
        if isinstance(stages, nn.ModuleList):
            return list(stages)
        if isinstance(stages, nn.ModuleDict):  # a chain keyed by cell index (cells no output reads are not built)
            return list(stages.values())
    encoder = getattr(model, "encoder", None)
    if isinstance(encoder, nn.Module):
        return [encoder]
    raise ConfigError(f"aux_weight: {type(model).__name__} has no body stages an auxiliary head can read")


def _tensors(output) -> list[torch.Tensor]:
    items = output if isinstance(output, (list, tuple)) else [output]
    return [t for t in items if torch.is_tensor(t) and t.dim() == 4]


def find_taps(model: nn.Module, strides: tuple[int, ...], size: tuple[int, int]) -> list[dict]:
    """One {"stage", "item", "stride", "channels", "requested"} per requested stride, from one
    forward of a zero image of `size` (no gradient, eval mode, the global RNG untouched)."""
    stages, seen = body_stages(model), []

    def record(index: int):
        def hook(_module, _inputs, output):
            for j, t in enumerate(_tensors(output)):
                seen.append({"stage": index, "item": j, "stride": size[0] // t.shape[-2], "channels": t.shape[1]})
        return hook

    handles = [s.register_forward_hook(record(i)) for i, s in enumerate(stages)]
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, *size))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    taps = []
    for want in strides:
        below = [s for s in seen if s["stride"] <= want]
        if not below:
            raise ConfigError(f"aux_strides: no body stage at 1/{want} or finer "
                              f"(the stages reach {sorted({s['stride'] for s in seen})})")
        deepest = max(s["stride"] for s in below)
        taps.append({**[s for s in below if s["stride"] == deepest][-1], "requested": int(want)})
    return taps


class _Capture:
    """Forward hook of one stage: keeps the output a head reads, only inside a training forward
    of the `TrainingNet` (a plain object, so that a deep copy of the network carries a hook into
    the copied heads)."""

    def __init__(self, owner: AuxHeads, stage: int):
        self.owner, self.stage = owner, stage

    def __call__(self, _module: nn.Module, _inputs, output) -> None:
        if self.owner.armed:
            self.owner.captured[self.stage] = _tensors(output)


def _head(channels: int, num_classes: int, hidden: int = 64) -> nn.Sequential:
    """3x3 conv-BN-ReLU then a 1x1 classifier (PSPNet's and BiSeNet's auxiliary head, narrowed)."""
    return nn.Sequential(nn.Conv2d(channels, hidden, 3, padding=1, bias=False), nn.BatchNorm2d(hidden),
                         nn.ReLU(inplace=True), nn.Conv2d(hidden, num_classes, 1))


class AuxHeads(nn.Module):
    """The auxiliary heads of one network; `TrainingNet` runs them beside it."""

    def __init__(self, model: nn.Module, strides: tuple[int, ...], num_classes: int, size: tuple[int, int]):
        super().__init__()
        self.taps = find_taps(model, tuple(strides), size)
        self.heads = nn.ModuleList(_head(t["channels"], num_classes) for t in self.taps)
        self.captured: dict[int, list[torch.Tensor]] = {}
        self.armed = False  # set by TrainingNet for the length of one training forward
        stages = body_stages(model)
        for index in sorted({t["stage"] for t in self.taps}):
            stages[index].register_forward_hook(_Capture(self, index))

    def forward(self) -> list[torch.Tensor]:
        """Logits of every head from the features the last training forward left (then dropped)."""
        out = [head(self.captured[t["stage"]][t["item"]]) for t, head in zip(self.taps, self.heads)]
        self.captured = {}
        return out

    def describe(self) -> list[dict]:
        return [{"requested": t["requested"], "stride": t["stride"], "channels": t["channels"]} for t in self.taps]


class TrainingNet(nn.Module):
    """The network plus its auxiliary heads: (logits, [aux logits]) in training, logits otherwise."""

    def __init__(self, model: nn.Module, aux: AuxHeads):
        super().__init__()
        self.model, self.aux = model, aux

    def forward(self, x: torch.Tensor):
        if not self.training:
            return self.model(x)
        self.aux.armed = True
        try:
            logits = self.model(x)
        finally:
            self.aux.armed = False
        return logits, self.aux()
