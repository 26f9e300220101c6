"""Does a training step reproduce run to run, per network and (memory format, precision)?

`auto` keeps a candidate only if the run-start check (`workbench.seg.throughput.differing_tensors`:
two 3-step runs from the same weights and seed) finds equal weights. A check of a few steps can miss a
kernel that differs rarely, so this measures how much to trust it, in three parts:

1. Per network and pair: the run-start check repeated `--repeats` times, against one longer check
   (two `--long-steps`-step runs), and the parameters that differ after the longer one.
2. Per standalone depthwise convolution (channels, dilation, input size, format, precision): how
   many of `--calls` repeated weight-gradient calls differ from the first (a kernel that differs
   call to call shows in almost every step, and a short check catches it).
3. `--resume-net`: real `workbench retrain` runs of `--resume-epochs` epochs with the recipe's `auto`
   choice: one straight, one SIGKILLed after its first checkpoint and resumed; the final weights
   must be equal, whichever pair the run-start probe picked (recorded).

    python benchmarks/step_reproducibility.py --threads 2 --data datasets/proxy-camvid-128x256-400 \\
        --resume-net fpn_mobilenet_v2 --resume-net benchmarks/results/proxy_genotypes/lgcnet-lw0.json \\
        --out benchmarks/results/step_reproducibility_amx.json

Run it on a quiet machine: the timings in it are only the run-start probe's, but the runs are long.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))  # train_throughput.py, beside this file

from workbench.device import cpu_model, set_threads  # noqa: E402
from workbench.seg import throughput  # noqa: E402
from workbench.seg.model import build_model  # noqa: E402

PAIRS = [(f, p) for f in ("contiguous", "channels_last") for p in ("fp32", "bf16")]
GENOTYPES = Path(__file__).parent / "results" / "proxy_genotypes"
NETS = ["fpn_mobilenet_v2", "fpn_mobilenetv3_large_075", str(GENOTYPES / "lgcnet-lw0.json"),
        str(GENOTYPES / "autortnet-lw0.5.json")]
# (channels, dilation, (h, w)): the lgcnet / test-genotype kinds of dilated depthwise layer and plain ones
DEPTHWISE = [(8, 2, (32, 64)), (32, 2, (16, 32)), (64, 4, (8, 16)), (96, 1, (32, 64)), (32, 1, (64, 128))]


def network_checks(net: str, batch: int, size: tuple[int, int], classes: int, repeats: int,
                   long_steps: int) -> dict:
    from train_throughput import step_builder

    kw = {"genotype": net} if net.endswith(".json") else {"baseline": net}
    torch.manual_seed(0)
    model, _ = build_model(num_classes=classes, **kw)
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, *size, generator=gen)
    labels = torch.randint(0, classes, (batch, *size), generator=gen)
    mk = step_builder(images, labels)
    out = {}
    for key in PAIRS:
        t0 = time.perf_counter()
        cpu = torch.device("cpu")
        short = [not throughput.differing_tensors(model, mk, key, cpu) for _ in range(repeats)]
        differ = throughput.differing_tensors(model, mk, key, cpu, steps=long_steps)
        out["+".join(key)] = {"run_start_check": short, "long_check": not differ,
                              "differing_tensors": len(differ), "first_differing": differ[:4],
                              "seconds": round(time.perf_counter() - t0, 1)}
        print(Path(net).stem, "+".join(key), out["+".join(key)], flush=True)
    return out


def depthwise_checks(calls: int) -> list[dict]:
    rows = []
    for channels, dilation, hw in DEPTHWISE:
        for fmt, prec in PAIRS:
            torch.manual_seed(0)
            conv = throughput.prepare(torch.nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation,
                                                      groups=channels, bias=False), fmt)
            x = throughput.to_format(torch.randn(16, channels, *hw), fmt).requires_grad_(True)
            grads = []
            for _ in range(calls):
                conv.zero_grad()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=prec == "bf16"):
                    y = conv(x)
                y.float().square().mean().backward()
                grads.append(conv.weight.grad.clone())
            rows.append({"channels": channels, "dilation": dilation, "input": list(hw), "memory_format": fmt,
                         "precision": prec, "calls": calls,
                         "differ_from_first": sum(not torch.equal(g, grads[0]) for g in grads[1:])})
            print(rows[-1], flush=True)
    return rows


def resume_check(net: str, args: argparse.Namespace, work: Path) -> dict:
    """A straight retrain and one killed after its first checkpoint, then resumed: equal weights?"""
    from train_throughput import retrain_command

    from workbench.runs import RunDir
    from workbench.seg.recipes import get_recipe

    size = [int(v) for v in args.size.split("x")]
    kw = {"genotype": net} if net.endswith(".json") else {"baseline": net}
    fields = {**kw, "dataset": "camvid", "data_root": args.data, "epochs": args.resume_epochs, "crop_size": size,
              "batch_size": get_recipe("fast-v4").batch_size, "recipe": "fast-v4", "threads": args.threads, "eval_size": size}
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    straight, killed = work / f"{Path(net).stem}-straight", work / f"{Path(net).stem}-killed"
    subprocess.run(retrain_command(fields, straight, 1, ("--overwrite", "--seed", "0")), check=True, env=env)
    proc = subprocess.Popen(retrain_command(fields, killed, 1, ("--overwrite", "--seed", "0")), env=env)
    last = killed / "checkpoints" / "last.pt"
    while not last.exists() and proc.poll() is None:
        time.sleep(0.2)
    time.sleep(1.0)  # into the next epoch
    killed_at = "finished before the kill" if proc.poll() is not None else "after the first checkpoint"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    subprocess.run(retrain_command(fields, killed, 1, ("--resume",)), check=True, env=env)
    a = torch.load(straight / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(last, weights_only=True)
    differ = [k for k, v in a["model"].items() if not torch.equal(v, b["model"][k])]
    record, resumed = RunDir(straight).record(), RunDir(killed).record()
    speed = record.get("throughput") or {}
    out = {"network": Path(net).stem, "recipe": "fast-v4", "epochs": args.resume_epochs, "killed": killed_at,
           "picked": f"{speed.get('memory_format')}+{speed.get('precision')}",
           "resumed_picked": f"{resumed['throughput']['memory_format']}+{resumed['throughput']['precision']}",
           "step_ms": speed.get("step_ms"), "not_reproducible": speed.get("not_reproducible"),
           "equal_weights": not differ, "differing_tensors": len(differ),
           "miou": [record["metrics"]["miou"], resumed["metrics"]["miou"]]}
    print(out, flush=True)
    return out


def main() -> None:
    from train_throughput import bf16_flags

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--net", action="append", help=f"networks for part 1 (default: {', '.join(NETS)})")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--size", default="128x256")
    p.add_argument("--classes", type=int, default=11)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--long-steps", type=int, default=12)
    p.add_argument("--calls", type=int, default=40)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data", help="a camvid-format dataset for part 3")
    p.add_argument("--resume-net", action="append", default=[])
    p.add_argument("--resume-epochs", type=int, default=3)
    p.add_argument("--work", default="runs/step_reproducibility")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    if args.resume_net and not args.data:
        p.error("--resume-net needs --data")
    set_threads(args.threads)
    size = tuple(int(v) for v in args.size.split("x"))
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    load_before = os.getloadavg()
    nets = {Path(n).stem: network_checks(n, args.batch, size, args.classes, args.repeats, args.long_steps)
            for n in (args.net or NETS)}
    depthwise = depthwise_checks(args.calls)
    resumes = [resume_check(n, args, Path(args.work)) for n in args.resume_net]
    out = {"machine": {"cpu": cpu_model(), "bf16_flags": bf16_flags(),
                       "threads": args.threads, "torch": torch.__version__},
           "started": started, "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "load_before": [round(v, 2) for v in load_before], "load_after": [round(v, 2) for v in os.getloadavg()],
           "command": " ".join(sys.argv), "batch": args.batch, "size": list(size), "repeats": args.repeats,
           "long_steps": args.long_steps, "networks": nets, "depthwise": depthwise, "resume": resumes}
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
