"""Does a memory format and precision compute a network's convolutions correctly on this machine?

A training candidate must be right before it can be fast. On the AMX Xeon with torch 2.14.1,
`channels_last` + bf16 computes the weight gradient of dilated depthwise convolutions wrongly: a
relative error of 0.87-1.4, 1e32 or NaN depending on the shape and the call, where bf16 rounding alone
gives 0.002-0.004 (benchmarks/results/retrain_recipes.md, "A wrong kernel"). Every such result measured
also differed call to call, so the run-start reproducibility check dropped the pair, but only after
timing it, and a NaN during that timing crashed `make demo`; a kernel wrong the same way every call
would pass that check. So every convolution of the network is run once, forward and backward, at the
shape it meets in training, in the candidate and in contiguous fp32 from the same bf16-representable
inputs, and compared, before the candidate trains a step.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

REFERENCE = ("contiguous", "fp32")
# Largest error allowed, as max |candidate - reference| / max |reference| over the output, the input
# gradient and each parameter gradient: 13x the largest bf16 rounding error of a correct kernel in seven
# networks (0.0038), 22x below the smallest wrong one (1.13; 0.87 in a first run the same day), on the
# AMX Xeon (benchmarks/results/kernel_check_amx.json).
TOLERANCE = 0.05


def conv_shapes(model: nn.Module, images: torch.Tensor) -> dict[str, tuple[nn.Conv2d, tuple[int, ...]]]:
    """Each `nn.Conv2d` of `model` (by name) with the input shape it meets in one training forward pass
    (on a copy: the model's own BatchNorm statistics stay untouched)."""
    twin = copy.deepcopy(model).to(images.device).train()
    found: dict[str, tuple[nn.Conv2d, tuple[int, ...]]] = {}

    def record(name: str):
        def hook(module: nn.Conv2d, args: tuple) -> None:  # returns None: the input goes on unchanged
            found.setdefault(name, (module, tuple(args[0].shape)))
        return hook

    hooks = [m.register_forward_pre_hook(record(name)) for name, m in twin.named_modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            twin(images)
    finally:
        for h in hooks:
            h.remove()
    return found


def _forward_backward(conv: nn.Conv2d, x: torch.Tensor, grad: torch.Tensor, fmt: str,
                      prec: str) -> list[torch.Tensor]:
    memory_format = torch.channels_last if fmt == "channels_last" else torch.contiguous_format
    conv = copy.deepcopy(conv).to(memory_format=memory_format)
    xx = x.contiguous(memory_format=memory_format).detach().requires_grad_()
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=prec == "bf16"):
        out = conv(xx)
    out.backward(grad.to(out.dtype).contiguous(memory_format=memory_format))
    return [out, xx.grad] + [p.grad for p in conv.parameters()]


def conv_error(conv: nn.Conv2d, shape: tuple[int, ...], fmt: str, prec: str) -> float:
    """The candidate's worst relative error against contiguous fp32 for one convolution at one input
    shape (inf where it gives NaN or inf)."""
    device = next(conv.parameters()).device
    gen = torch.Generator().manual_seed(0)
    conv = copy.deepcopy(conv).float().train().requires_grad_(True)
    with torch.no_grad():
        for p in conv.parameters():  # bf16-representable, so the reference sees what bf16 sees
            p.copy_(p.bfloat16().float())
    x = torch.randn(shape, generator=gen).bfloat16().float().to(device)
    with torch.no_grad():
        out_shape = conv(x).shape
    grad = torch.randn(out_shape, generator=gen).bfloat16().float().to(device)
    ref = _forward_backward(conv, x, grad, *REFERENCE)
    got = _forward_backward(conv, x, grad, fmt, prec)
    worst = 0.0
    for a, b in zip(got, ref, strict=True):
        a, b = a.detach().float(), b.detach().float()
        if not torch.isfinite(a).all():
            return float("inf")
        scale = b.abs().max().item()
        worst = max(worst, (a - b).abs().max().item() / scale if scale > 0 else (a - b).abs().max().item())
    return worst


def wrong_convolutions(model: nn.Module, images: torch.Tensor, key: tuple[str, str],
                       tolerance: float = TOLERANCE) -> dict[str, float]:
    """{convolution name: relative error} for those the (memory_format, precision) `key` computes
    beyond `tolerance` at this network's shapes; empty when every one agrees with contiguous fp32.
    Each distinct configuration and input shape is run once."""
    if tuple(key) == REFERENCE:
        return {}
    errors: dict[tuple, float] = {}
    wrong = {}
    with torch.random.fork_rng(devices=[images.device] if images.device.type == "cuda" else []):
        for name, (conv, shape) in conv_shapes(model, images).items():
            config = (type(conv).__name__, tuple(conv.weight.shape), conv.stride, conv.padding, conv.dilation,
                      conv.groups, conv.bias is not None, conv.padding_mode, shape)
            if config not in errors:
                errors[config] = conv_error(conv, shape, *key)
            if not errors[config] <= tolerance:
                wrong[name] = errors[config]
    return wrong
