"""Memory format and precision of training, chosen by timing a few steps on the machine at hand.

Whether `channels_last` and bf16 autocast speed training up depends on the CPU (AMX, AVX-512
BF16 or neither), the GPU and the network (depthwise convolutions on 16-64 channels are
memory-bound), so nothing is assumed: the candidates train a copy of the model on a fixed batch,
round-robin, and each keeps its fastest round. The choice and every step time are recorded, and
a resumed run reuses the recorded choice instead of measuring again (so resume stays exact).

Exact resume also needs every step to be reproducible run to run, so every candidate is checked
(two 3-step runs from the same weights and seed) and one that differs is dropped. Whether a
candidate trains reproducibly depends on the network, its input size and the machine, not on the
pair alone: on the AMX Xeon with torch 2.14.1, `channels_last` + bf16 computes the weight gradient
of some dilated depthwise convolutions differently call to call (38-39 of 39 repeated calls), so
it fails the check for lgcnet-lw0 at 128x256 every time and passes it for FPN-MobileNetV2, which
has no such layer (benchmarks/results/retrain_recipes.md, "Reproducible per network"). The pair
failed for some networks on the AMD EPYC too, so until 2026-12-07 `auto` left it out on every CPU;
now the check decides, as it does for the other pairs. Before anything is timed, a candidate that
computes one of the network's convolutions wrongly is dropped (`kernel_check`): that same kernel's
weight gradients are wrong, not only unrepeatable, and a NaN among them crashed a run's timing.
"""

from __future__ import annotations

import copy
import itertools
import logging
from collections.abc import Callable

import torch
from torch import nn

from workbench.device import timed_call
from workbench.errors import ConfigError, DivergedError
from workbench.seg import kernel_check

log = logging.getLogger(__name__)

FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}
# bf16 changes the numerics, so it must beat the fastest fp32 candidate by more than this fraction
# of its step time: a lead of 1 % in a dozen timed steps is noise (on the AMD EPYC VM such a lead
# picked contiguous+bf16 for FPN-MobileNetV3-large-0.75, whose epochs then ran slower than the
# channels_last+fp32 ones of the same network beside it; benchmarks/results/weight_ema.md).
BF16_MARGIN = 0.05


def candidates(memory_format: str, precision: str, device: torch.device) -> list[tuple[str, str]]:
    """(memory_format, precision) pairs to time; 'auto' expands to every option."""
    formats = list(FORMATS) if memory_format == "auto" else [memory_format]
    precisions = ["fp32", "bf16"] if precision == "auto" else [precision]
    if device.type == "cpu" and precision == "auto" and not _cpu_has_bf16():
        precisions = ["fp32"]  # emulated bf16 is only ever slower
    return list(itertools.product(formats, precisions))


def resumed_choice(checkpoint: dict | None, record: dict | None, allocator: str) -> dict | None:
    """A resumed run's choice: the checkpoint's format and precision (else the run record's), the
    record's step times kept, and the allocator the run goes on under, with the one before where it
    changed (an allocator trains faster, not differently). None when there is nothing to resume."""
    record = record or {}
    if not (checkpoint or record):
        return None
    choice = {**record, **(checkpoint or record), "reused": True, "allocator": allocator}
    if record.get("allocator") not in (None, allocator):
        choice["allocator_before_resume"] = record["allocator"]
    return choice


def _cpu_has_bf16() -> bool:
    from workbench.device import cpu_flags

    flags = cpu_flags()
    if not flags:
        return True  # unknown: let the timing decide
    return any("bf16" in f or f == "avx_ne_convert" for f in flags)


def prepare(model: nn.Module, memory_format: str) -> nn.Module:
    """The model in the memory format (in place for parameters and buffers)."""
    return model.to(memory_format=FORMATS[memory_format])


def to_format(images: torch.Tensor, memory_format: str) -> torch.Tensor:
    return images.contiguous(memory_format=FORMATS[memory_format])


def choose(model: nn.Module, make_step: Callable[[nn.Module, str, str], Callable[[], None]],
           options: list[tuple[str, str]], device: torch.device, images: torch.Tensor, rounds: int = 3,
           steps: int = 2) -> dict:
    """Time `steps` training steps of each option per round, round-robin, after one untimed warm-up
    step each; the option with the fastest round median wins among the reproducible ones (bf16
    only by a margin: `pick`). An option that computes a convolution wrongly at this network's
    shapes (`kernel_check`, on the sample batch `images`) is dropped before anything runs; asked for
    alone, it is refused.

    `make_step(model_copy, memory_format, precision)` returns a function doing one full step
    (forward, loss, backward, optimizer step) on a fixed batch. Returns {"memory_format",
    "precision", "measured", "step_ms": {"channels_last+fp32": best ms, ...}, "rounds", "steps",
    "not_reproducible": [...], "wrong_convolutions": {...}, "diverged": [...]}. Random state is restored afterwards, so
    the run's own random streams are unchanged.
    """
    wrong = {key: w for key in options if (w := kernel_check.wrong_convolutions(model, images, key))}
    for (f, p), convs in wrong.items():
        log.warning("%s+%s computes %d convolution(s) wrongly here (relative error against contiguous fp32 above %s; "
                    "first: %s): not used", f, p, len(convs), kernel_check.TOLERANCE, next(iter(convs.items())))
    if len(options) == 1:
        fmt, prec = options[0]
        if wrong:
            raise ConfigError(f"memory_format/precision: {fmt}+{prec} computes {len(wrong[options[0]])} "
                              f"convolution(s) of this network wrongly on this machine (first: "
                              f"{next(iter(wrong[options[0]]))}); use 'auto' or another pair")
        return {"memory_format": fmt, "precision": prec, "measured": False}
    options = [key for key in options if key not in wrong] or [kernel_check.REFERENCE]
    diverged: dict[tuple[str, str], str] = {}  # a probe step at lr 1e-6 that goes non-finite: dropped

    def guarded_step(twin: nn.Module, fmt: str, prec: str) -> Callable[[], None]:
        step = make_step(twin, fmt, prec)

        def run() -> None:
            if (fmt, prec) not in diverged:
                try:
                    step()
                except DivergedError as err:
                    diverged[(fmt, prec)] = str(err)
        return run

    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        runs = {}
        for fmt, prec in options:
            runs[(fmt, prec)] = guarded_step(prepare(copy.deepcopy(model).to(device).train(), fmt), fmt, prec)
            runs[(fmt, prec)]()  # warm-up: oneDNN primitives, autocast caches
        best = time_round_robin(runs, rounds, steps, device)
        unstable = [key for key in best if key not in diverged and differing_tensors(model, guarded_step, key, device)]
        best = {key: t for key, t in best.items() if key not in diverged}
        unstable = [key for key in unstable if key in best]  # one that diverged in the check is dropped anyway
        if not best:  # every candidate diverges: the network or its setup, not a kernel
            raise DivergedError(next(iter(diverged.values())))
    for key, err in diverged.items():
        log.warning("%s+%s went non-finite in the run-start probe (%s): not used", *key, err)
    fmt, prec = pick(best, unstable)
    step_ms = {f"{f}+{p}": round(t * 1000, 3) for (f, p), t in best.items()}
    log.info("training step times (best round): %s -> %s+%s", step_ms, fmt, prec)
    if len(unstable) == len(best):
        log.warning("no memory format / precision trained reproducibly here: resume will not be exact")
    return {"memory_format": fmt, "precision": prec, "measured": True, "step_ms": step_ms,
            "rounds": rounds, "steps": steps, "not_reproducible": [f"{f}+{p}" for f, p in unstable],
            "bf16_margin": BF16_MARGIN, "wrong_convolutions": {f"{f}+{p}": sorted(w) for (f, p), w in wrong.items()},
            "diverged": [f"{f}+{p}" for f, p in diverged]}


def time_round_robin(runs: dict, rounds: int, steps: int, device: torch.device) -> dict:
    """Seconds per step of each of `runs` (key -> one step, already warmed up): every round times
    `steps` steps of each in turn and keeps their median, and each key's fastest round counts, so
    that a machine whose speed drifts hits every candidate alike."""
    best = {key: float("inf") for key in runs}
    for _ in range(rounds):
        for key, step in runs.items():
            times = sorted(timed_call(step, device) for _ in range(steps))
            best[key] = min(best[key], times[len(times) // 2])
    return best


def pick(step_time: dict[tuple[str, str], float], unstable: list[tuple[str, str]]) -> tuple[str, str]:
    """The fastest reproducible (memory_format, precision), except that a bf16 one must be more than
    BF16_MARGIN faster than the fastest reproducible fp32 one. When none is reproducible, the
    fastest."""
    ranked = sorted(step_time, key=step_time.get)
    usable = [key for key in ranked if key not in unstable] or ranked
    fp32 = [key for key in usable if key[1] == "fp32"]
    if usable[0][1] != "fp32" and fp32 and step_time[fp32[0]] <= step_time[usable[0]] * (1 + BF16_MARGIN):
        return fp32[0]
    return usable[0]


def differing_tensors(model: nn.Module, make_step, key: tuple[str, str], device: torch.device,
                      steps: int = 3) -> list[str]:
    """State-dict entries that differ after two `steps`-step runs from the same weights and seed (empty:
    reproducible). A layer that computes differently call to call shows in any step and then stays in
    the weights, so a few steps suffice when most calls differ (as measured; none can prove a kernel exact)."""
    finals = []
    for _ in range(2):
        twin = prepare(copy.deepcopy(model).to(device).train(), key[0])
        step = make_step(twin, *key)
        torch.manual_seed(0)
        for _ in range(steps):
            step()
        finals.append(twin.state_dict())
    return [k for k, a in finals[0].items() if not torch.equal(a, finals[1][k])]
