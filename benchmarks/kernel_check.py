"""Which (memory format, precision) pairs compute each network's convolutions correctly here?

`auto` drops a training candidate that computes a convolution wrongly (`workbench.seg.kernel_check`:
every convolution run once forward and backward at its training shape, against contiguous fp32, with
a relative-error tolerance). This records every error it sees, so that the tolerance stands on a
measured gap: the largest error of a correct kernel (bf16 rounding) against the smallest of a wrong
one, per network and pair, and for standalone dilated and plain depthwise convolutions.

    python benchmarks/kernel_check.py --threads 2 --out benchmarks/results/kernel_check_amx.json

Not a timing: a busy machine changes only the `seconds` fields.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))  # train_throughput.py, beside this file

from train_throughput import bf16_flags  # noqa: E402

from workbench.device import cpu_model, set_threads  # noqa: E402
from workbench.seg import kernel_check  # noqa: E402
from workbench.seg.model import build_model  # noqa: E402

PAIRS = [("contiguous", "bf16"), ("channels_last", "fp32"), ("channels_last", "bf16")]
RESULTS = Path(__file__).parent / "results"
NETS = ["fpn_mobilenet_v2", "fpn_mobilenetv3_large_075", "fpn_mobilenetv3_small_050", "pspnet_lcnet_035",
        str(RESULTS / "proxy_genotypes" / "lgcnet-lw0.json"), str(RESULTS / "proxy_genotypes" / "autortnet-lw0.5.json"),
        str(RESULTS / "kernel_check_genotypes" / "demo-autortnet-lw0.0.json")]
# (channels, dilation, (h, w)) of standalone depthwise convolutions, batch 16
DEPTHWISE = [(8, 2, (32, 64)), (16, 2, (32, 64)), (16, 4, (16, 32)), (16, 8, (32, 64)), (32, 2, (16, 32)),
             (64, 4, (8, 16)), (16, 1, (32, 64)), (96, 1, (32, 64))]


def _finite(e: float) -> float | str:
    return round(e, 6) if math.isfinite(e) else "not finite"


def network_errors(net: str, batch: int, size: tuple[int, int], classes: int) -> dict:
    kw = {"genotype": net} if net.endswith(".json") else {"baseline": net}
    torch.manual_seed(0)
    model, _ = build_model(num_classes=classes, **kw)
    images = torch.randn(batch, 3, *size, generator=torch.Generator().manual_seed(0))
    shapes = kernel_check.conv_shapes(model, images)
    out = {"convolutions": len(shapes)}
    for key in PAIRS:
        t0 = time.perf_counter()
        errors = {name: kernel_check.conv_error(conv, shape, *key) for name, (conv, shape) in shapes.items()}
        right = [e for e in errors.values() if e <= kernel_check.TOLERANCE]
        wrong = {n: e for n, e in errors.items() if not e <= kernel_check.TOLERANCE}
        out["+".join(key)] = {"largest_right": _finite(max(right, default=0.0)),
                              "wrong": {n: _finite(e) for n, e in wrong.items()},
                              "smallest_wrong": _finite(min(wrong.values())) if wrong else None,
                              "seconds": round(time.perf_counter() - t0, 2)}
        print(Path(net).stem, "+".join(key), {k: v for k, v in out["+".join(key)].items() if k != "wrong"},
              len(wrong), "wrong", flush=True)
    return out


def _same_calls(conv: torch.nn.Conv2d, shape: tuple[int, ...], calls: int) -> bool:
    """Whether channels_last + bf16 gives bitwise the same weight gradient in `calls` calls on one input:
    a wrong result that repeats is one the run-start reproducibility check cannot see."""
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0)).contiguous(memory_format=torch.channels_last)
    twin = copy.deepcopy(conv).to(memory_format=torch.channels_last)
    grads = []
    for _ in range(calls):
        twin.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = twin(x)
        out.float().sum().backward()
        grads.append(twin.weight.grad.clone())
    return all(torch.equal(grads[0], g) for g in grads[1:])  # NaN != NaN: a NaN gradient counts as differing


def depthwise_errors(batch: int) -> list[dict]:
    rows = []
    for channels, dilation, hw in DEPTHWISE:
        torch.manual_seed(0)
        conv = torch.nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, groups=channels, bias=False)
        row = {"channels": channels, "dilation": dilation, "size": list(hw)}
        for key in PAIRS:
            row["+".join(key)] = _finite(kernel_check.conv_error(conv, (batch, channels, *hw), *key))
        row["channels_last+bf16 weight gradient same in 5 calls"] = _same_calls(conv, (batch, channels, *hw), 5)
        print(row, flush=True)
        rows.append(row)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--net", action="append", help="baseline name or genotype.json (repeat; default: a set of seven)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--size", default="128x256")
    p.add_argument("--classes", type=int, default=11)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    set_threads(args.threads)
    size = tuple(int(v) for v in args.size.split("x"))
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    load_before = os.getloadavg()
    nets = {Path(n).stem: network_errors(n, args.batch, size, args.classes) for n in (args.net or NETS)}
    depthwise = depthwise_errors(args.batch)
    out = {"machine": {"cpu": cpu_model(), "bf16_flags": bf16_flags(), "threads": args.threads, "torch": torch.__version__},
           "started": started, "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "load_before": [round(v, 2) for v in load_before], "command": " ".join(sys.argv),
           "tolerance": kernel_check.TOLERANCE, "batch": args.batch, "size": list(size),
           "networks": nets, "depthwise": depthwise}
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
