"""Where a training step's time goes: self CPU time per phase and operator kind (torch.profiler).

The throughput pages time whole steps. A format or precision speeds up only the operators it
touches (bf16 on AMX tiles: the convolutions' matrix work), so the step can gain at most what
Amdahl's law leaves: step / (step - part + part / s). This splits one training step (the step
`train_throughput.py` times: forward, fp32 cross entropy, backward, AdamW) into its phases and
its operator kinds: convolutions by shape (depthwise, 1x1, dense kxk; forward and backward),
normalization (batch and group norm), dtype casts and layout copies, and the rest, per (memory format, precision) variant.
Self times sum to the profiled step (the profiler's own overhead included); the unprofiled step
time is recorded beside them, the variants timed round-robin as in `train_throughput.py`.

    python benchmarks/train_profile.py --net fpn_mobilenet_v2 \\
        --net benchmarks/results/proxy_genotypes/lgcnet-lw0.json --batch 16 \\
        --out benchmarks/results/train_profile_amx.json

Time only on a quiet machine (the JSON records the load average before and after).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))  # train_throughput.py, beside this file

PHASES = ("forward", "loss", "backward", "optimizer")
CASTS = {"aten::to", "aten::_to_copy", "aten::copy_", "aten::contiguous", "aten::clone", "aten::to_dense",
         "aten::_reshape_alias", "aten::empty_strided"}


def op_kind(name: str, shapes: list) -> str:
    """Operator kind of one profiled op from its name and input shapes (a conv's weight names its shape)."""
    low = name.lower()
    if "conv" in low:
        weight = shapes[2] if "backward" in low and len(shapes) > 2 else (shapes[1] if len(shapes) > 1 else [])
        direction = "backward" if "backward" in low else "forward"
        if len(weight) != 4:
            return f"conv (other) {direction}"
        taps = weight[2] * weight[3]
        shape = "depthwise" if weight[1] == 1 and taps > 1 else ("1x1" if taps == 1 else "dense kxk")
        return f"conv {shape} {direction}"
    if any(norm in low for norm in ("batch_norm", "group_norm", "layer_norm", "instance_norm")):
        return "normalization"
    if name in CASTS:
        return "casts and copies"
    return "other"


def _phase(evt) -> str:
    """The phase (a record_function range of PHASES) an event runs inside."""
    node = evt
    while node is not None:
        if node.name in PHASES:
            return node.name
        node = node.cpu_parent
    return "outside"


def profile_step(model: torch.nn.Module, fmt: str, prec: str, images: torch.Tensor, labels: torch.Tensor,
                 steps: int = 3) -> dict:
    """Self CPU ms per step by phase and by kind, over `steps` profiled steps after two warm-up steps."""
    from train_throughput import make_step

    from workbench.seg import throughput

    step = make_step(throughput.prepare(model.train(), fmt), fmt, prec, images, labels,
                     phase=torch.profiler.record_function)
    for _ in range(2):
        step()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True) as prof:
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        wall = time.perf_counter() - t0
    by_phase: dict[str, float] = defaultdict(float)
    by_kind: dict[str, float] = defaultdict(float)
    other_ops: dict[str, float] = defaultdict(float)
    for evt in prof.events():
        if evt.name in PHASES:
            continue
        ms = evt.self_cpu_time_total / 1000 / steps
        phase = _phase(evt)
        kind = "optimizer" if phase == "optimizer" else op_kind(evt.name, evt.input_shapes or [])
        by_phase[phase] += ms
        by_kind[kind] += ms
        if kind == "other":
            other_ops[evt.name] += ms
    top_other = dict(sorted(other_ops.items(), key=lambda kv: -kv[1])[:8])
    return {"profiled_step_ms": round(wall * 1000 / steps, 2),
            "self_ms": round(sum(by_kind.values()), 2),
            "by_phase_ms": {k: round(v, 2) for k, v in sorted(by_phase.items())},
            "by_kind_ms": {k: round(v, 2) for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1])},
            "top_other_ms": {k: round(v, 2) for k, v in top_other.items()}}


def main() -> None:
    from train_throughput import VARIANTS, bf16_flags, step_arguments, time_variants

    from workbench.device import cpu_model, set_threads
    from workbench.seg.model import build_model

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    step_arguments(p, rounds=3, steps=3)
    p.add_argument("--classes", type=int, default=11)
    p.add_argument("--out", default="benchmarks/results/train_profile.json")
    args = p.parse_args()
    if not args.net:
        p.error("--net: name a network")
    set_threads(args.threads)
    size = tuple(int(v) for v in args.size.split("x"))
    load_before = os.getloadavg()
    result = {"machine": {"cpu": cpu_model(), "bf16_flags": bf16_flags(), "cores": os.cpu_count(),
                          "threads": args.threads, "torch": torch.__version__,
                          "isa": torch.backends.cpu.get_cpu_capability()},
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "command": " ".join(sys.argv),
              "batch": args.batch, "size": list(size), "networks": {}}
    for net in args.net:
        # unprofiled step times, round-robin (and each variant's run-to-run determinism)
        timed = time_variants(net, args.batch, size, args.classes, args.rounds, args.steps)
        kw = {"genotype": net} if net.endswith(".json") else {"baseline": net}
        torch.manual_seed(0)  # the weights time_variants timed
        model, _ = build_model(num_classes=args.classes, **kw)
        images, labels = torch.randn(args.batch, 3, *size), torch.randint(0, args.classes, (args.batch, *size))
        rows = {}
        for fmt, prec in VARIANTS:
            key = f"{fmt}+{prec}"
            rows[key] = {"step_ms": timed["step_ms"][key], "deterministic": timed["deterministic"][key],
                         **profile_step(copy.deepcopy(model), fmt, prec, images, labels)}
            print(Path(net).stem, key, rows[key]["step_ms"], rows[key]["by_kind_ms"], flush=True)
        result["networks"][Path(net).stem] = rows
    result["loadavg_before"], result["loadavg_after"] = load_before, os.getloadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
