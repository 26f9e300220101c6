"""Training throughput on this machine: memory format x precision, and the cost of data loading.

1. For each network (baselines by name, genotype.json paths), one full training step (forward,
   OHEM-free cross entropy in fp32, backward, AdamW step) on a fixed batch is timed in the four
   (contiguous | channels_last) x (fp32 | bf16 autocast) variants, round-robin: every round times
   `--steps` steps of each variant and keeps the median; each variant's best round counts. The
   ratios are what `workbench.seg.throughput` decides on at run start.
2. Data: the time to decode one training pair (PNG image + label), to augment it (scale / crop /
   flip), and both together, per image, against the training step time per image.
   With `--compile`, also both memory formats at fp32 under `torch.compile` (inductor's generated
   C++ for forward and backward; the optimizer step stays eager), with each one's compile time
   (its first two steps) recorded apart; `--compile-bf16` does the same under bf16 autocast.
   With `--depthwise-fp32`, also bf16 autocast with every depthwise convolution kept in fp32
   (`bf16-dwfp32`, both formats).
3. Run-to-run determinism of each variant (two 3-step runs from the same weights and seed):
   exact resume needs it.
4. End to end (`--recipe-net`): real `retrain` runs of one network with `plain-v1` (fp32,
   contiguous, images decoded every step) and `fast-v1` (format and precision timed at run start,
   images decoded once; `--fast-recipe` names others, e.g. the study's `fast-v3` with its auxiliary
   head), alternated plain, fast, plain, fast so that a drifting machine hits both;
   training images/s from each run's logged epoch times (its data loading included, the run-start
   timing and the evaluation not). `--procs 2` adds `fast-v1` in two torchrun processes (gloo,
   threads split between them, the global batch too).

    python benchmarks/train_throughput.py --threads 2 --data datasets/synth-camvid --dataset camvid \
        --net G.json --net fpn_mobilenetv3_small --recipe-net fpn_mobilenet_v2 \
        --out benchmarks/results/train_throughput.json

Time only on a quiet machine (the JSON records the load average before and after).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F

from workbench.device import cpu_flags, cpu_model, set_threads
from workbench.seg import throughput
from workbench.seg.model import build_model

VARIANTS = [(f, p) for f in ("contiguous", "channels_last") for p in ("fp32", "bf16")]
COMPILED = [("contiguous", "fp32"), ("channels_last", "fp32")]
COMPILED_BF16 = [("contiguous", "bf16"), ("channels_last", "bf16")]


class _FP32Depthwise(torch.nn.Conv2d):
    """A depthwise convolution that runs in fp32 inside bf16 autocast (its bf16 kernels were slower,
    and for dilated ones not reproducible, on the AMX Xeon: retrain_recipes.md)."""

    def forward(self, x):
        with torch.autocast(x.device.type, enabled=False):
            return super().forward(x.float())


def depthwise_in_fp32(model) -> int:
    """Make every plain depthwise `nn.Conv2d` of `model` an `_FP32Depthwise` (same parameters and state
    dict); returns how many."""
    n = 0
    for m in model.modules():
        if type(m) is torch.nn.Conv2d and m.groups > 1 and m.groups == m.in_channels:
            m.__class__ = _FP32Depthwise
            n += 1
    return n


def step_builder(images, labels, compiled: bool = False):
    """`make_step` as `throughput.choose` and `differing_tensors` call it, `(prepared twin, format,
    precision) -> one step`, for a benchmark variant: `bf16-dwfp32` swaps the depthwise convolutions'
    class first, `compiled` steps the twin under `torch.compile` (its weights are the twin's)."""
    def build(twin, fmt: str, prec: str):
        if prec == "bf16-dwfp32":
            depthwise_in_fp32(twin)
        return make_step(torch.compile(twin) if compiled else twin, fmt, prec, images, labels)
    return build


def make_step(model, fmt: str, prec: str, images, labels, phase=lambda name: contextlib.nullcontext()):
    """One training step on a fixed batch; `phase(name)` wraps its forward, loss, backward and
    optimizer parts (train_profile.py passes torch.profiler.record_function)."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6)
    x = throughput.to_format(images, fmt)

    def step():
        with phase("forward"), torch.autocast("cpu", dtype=torch.bfloat16, enabled=prec != "fp32"):
            out = model(x)
        with phase("loss"):
            loss = F.cross_entropy(out.float(), labels, ignore_index=255)
        with phase("backward"):
            opt.zero_grad(set_to_none=True)
            loss.backward()
        with phase("optimizer"):
            opt.step()
    return step


def time_variants(net: str, batch: int, size: tuple[int, int], classes: int, rounds: int, steps: int,
                  compile_too: bool = False, compile_bf16: bool = False, depthwise_fp32: bool = False) -> dict:
    kw = {"genotype": net} if net.endswith(".json") else {"baseline": net}
    torch.manual_seed(0)
    model, _ = build_model(num_classes=classes, **kw)
    images, labels = torch.randn(batch, 3, *size), torch.randint(0, classes, (batch, *size))
    to_compile = (COMPILED if compile_too else []) + (COMPILED_BF16 if compile_bf16 else [])
    variants = [(f, p, False) for f, p in VARIANTS] + [(f, p, True) for f, p in to_compile]
    if depthwise_fp32:  # bf16 autocast with the depthwise convolutions kept in fp32
        variants += [(f, "bf16-dwfp32", False) for f in throughput.FORMATS]
    cpu = torch.device("cpu")
    runs, compile_s = {}, {}
    for fmt, prec, compiled in variants:
        key = f"{fmt}+{prec}" + ("+compile" if compiled else "")
        runs[key] = step_builder(images, labels, compiled)(throughput.prepare(copy.deepcopy(model).train(), fmt),
                                                          fmt, prec)
        t0 = time.perf_counter()
        runs[key]()  # warm-up; for a compiled variant, its compilation
        if compiled:
            runs[key]()
            compile_s[key] = round(time.perf_counter() - t0, 1)
    best = throughput.time_round_robin(runs, rounds, steps, cpu)
    base = best["contiguous+fp32"]
    determinism = {f"{fmt}+{prec}" + ("+compile" if compiled else ""):
                   not throughput.differing_tensors(model, step_builder(images, labels, compiled), (fmt, prec), cpu)
                   for fmt, prec, compiled in variants}
    out = {"step_ms": {k: round(v * 1000, 2) for k, v in best.items()},
           "speedup_vs_contiguous_fp32": {k: round(base / v, 3) for k, v in best.items()},
           "deterministic": determinism,
           "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 4)}
    if depthwise_fp32:
        out["depthwise_fp32_layers"] = depthwise_in_fp32(copy.deepcopy(model))
    if compile_s:
        out["compile_s"] = compile_s
    return out


def time_data(dataset: str, root: str, size: tuple[int, int], n: int) -> dict:
    from workbench.data.segmentation import build_seg_dataset

    ds = build_seg_dataset(dataset, root, "train", train=True, crop_size=size, scale_range=(0.75, 1.5))
    n = min(n, len(ds))
    t0 = time.perf_counter()
    pairs = [ds.load(i) for i in range(n)]
    t1 = time.perf_counter()
    for i in range(n):
        ds[i]
    t2 = time.perf_counter()
    pre = build_seg_dataset(dataset, root, "train", train=True, crop_size=size, scale_range=(0.75, 1.5),
                            preload=True)
    t3 = time.perf_counter()
    for i in range(n):
        pre[i]
    t4 = time.perf_counter()
    del pairs
    return {"images": n, "decode_ms": round((t1 - t0) / n * 1000, 3),
            "decode_and_augment_ms": round((t2 - t1) / n * 1000, 3),
            "augment_preloaded_ms": round((t4 - t3) / n * 1000, 3)}


def retrain_command(fields: dict, run_dir: Path, procs: int, extra: tuple[str, ...] = ()) -> list[str]:
    """The `workbench retrain` command line for `fields`, under `torchrun --standalone` where `procs` > 1
    (gloo, the global batch split between them), with `extra` arguments."""
    import sys

    flag = {"genotype": "--genotype", "baseline": "--baseline"}
    net_arg = next([flag[k], v] for k, v in fields.items() if k in flag)
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}", "-m"]
                if procs > 1 else [sys.executable, "-m"])
    return [*launcher, "workbench", "retrain", *net_arg, "--dataset", fields["dataset"], "--data-root", fields["data_root"],
            "--run-dir", str(run_dir), "--epochs", str(fields["epochs"]),
            "--crop-size", "x".join(map(str, fields["crop_size"])), "--batch-size", str(fields["batch_size"]),
            "--recipe", fields["recipe"], "--threads", str(fields["threads"]), "--device", "cpu",
            "--eval-size", "x".join(map(str, fields["eval_size"])), *extra]


def retrain_in_processes(fields: dict, run_dir: Path, procs: int, env: dict[str, str] | None = None,
                         extra: tuple[str, ...] = ()) -> dict:
    """One retrain in a fresh process (`retrain_command`), with `env` added (e.g. an LD_PRELOAD
    allocator); returns its run record."""
    import subprocess

    from workbench.runs import RunDir

    cmd = retrain_command(fields, run_dir, procs, ("--overwrite", *extra))
    subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": str(fields["threads"]), **(env or {})})
    return RunDir(run_dir).record()


def time_recipes(net: str, dataset: str, root: str, size: tuple[int, int], batch: int, epochs: int,
                 repeats: int, threads: int, work: Path, procs: int = 1,
                 fast: tuple[str, ...] = ("fast-v1",), preload: tuple[str, ...] = ()) -> dict:
    """Training images/s of `plain-v1` and each `fast` recipe's retrains of one network, alternated;
    with `procs` > 1 also the first fast recipe in that many torchrun processes of threads / procs
    threads each (on a 2-core machine, two single-threaded processes instead of one process's two
    OpenMP threads). With `preload` (shared libraries, e.g. tcmalloc), also every fast recipe in a
    process that LD_PRELOADs each one, and then every arm runs in a fresh process of its own, so
    that a warm benchmark process does not favour the arms without one."""
    from workbench.runs import RunDir
    from workbench.seg.retrain import run_retrain

    kw = {"genotype": net} if net.endswith(".json") else {"baseline": net}
    arms = [("plain-v1", "plain-v1", 1, None)] + [(name, name, 1, None) for name in fast]
    arms += [(f"{fast[0]}x{procs}", fast[0], procs, None)] if procs > 1 else []
    arms += [(f"{name}+{Path(lib).name.split('.')[0]}", name, 1, {"LD_PRELOAD": lib}) for lib in preload for name in fast]
    out: dict = {"network": net, "epochs": epochs, "repeats": repeats, "runs": [], "fresh_processes": bool(preload)}
    for rep in range(repeats):
        for arm, recipe, n, env in arms:
            run_dir = work / f"{arm}-{rep}"
            fields = {**kw, "dataset": dataset, "data_root": root, "epochs": epochs, "crop_size": list(size),
                      "batch_size": batch, "recipe": recipe, "threads": max(1, threads // n), "device": "cpu",
                      "eval_size": list(size), "overwrite": True}
            record = (run_retrain(fields, run_dir) if n == 1 and not preload
                      else retrain_in_processes(fields, run_dir, n, env))
            times = [r["epoch_time_s"] for r in RunDir(run_dir).metrics() if r.get("phase") == "train"]
            images = record["steps"] * batch
            speed = record.get("throughput") or {}
            out["runs"].append({"recipe": recipe, "arm": arm, "processes": n, "threads": fields["threads"],
                                "preload": (env or {}).get("LD_PRELOAD"),
                                "repeat": rep, "images": images,
                                "train_s": round(sum(times), 3), "images_per_s": round(images / sum(times), 3),
                                "memory_format": speed.get("memory_format"), "precision": speed.get("precision"),
                                "step_ms": speed.get("step_ms")})
            print(out["runs"][-1], flush=True)
    best = {a: max(x["images_per_s"] for x in out["runs"] if x["arm"] == a) for a, *_ in arms}
    out["images_per_s"] = best
    out["speedup"] = round(best[fast[0]] / best["plain-v1"], 3)
    out["speedup_by_arm"] = {a: round(v / best["plain-v1"], 3) for a, v in best.items()}
    return out


def bf16_flags() -> list[str]:
    """The bf16-relevant CPU flags: the model name does not say whether a VM exposes AMX."""
    return sorted(f for f in cpu_flags() if "bf16" in f or f.startswith("amx"))


def step_arguments(p: argparse.ArgumentParser, rounds: int, steps: int) -> None:
    """The training-step setting both throughput benchmarks take (train_env.py too)."""
    p.add_argument("--net", action="append", default=[], help="baseline name or genotype.json (repeat)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--size", default="128x256")
    p.add_argument("--rounds", type=int, default=rounds)
    p.add_argument("--steps", type=int, default=steps)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    step_arguments(p, rounds=3, steps=3)
    p.add_argument("--classes", type=int, default=11)
    p.add_argument("--compile", action="store_true", help="also time fp32 under torch.compile (both formats)")
    p.add_argument("--compile-bf16", action="store_true",
                   help="also time bf16 autocast under torch.compile (both formats; where AMX runs bf16 natively)")
    p.add_argument("--depthwise-fp32", action="store_true",
                   help="also time bf16 autocast with the depthwise convolutions kept in fp32 (both formats)")
    p.add_argument("--data", help="dataset root for the data-loading figures")
    p.add_argument("--dataset", default="camvid")
    p.add_argument("--recipe-net", action="append", default=[],
                   help="baseline name or genotype.json: plain-v1 vs --fast-recipe retrains (needs --data; repeat)")
    p.add_argument("--fast-recipe", action="append", default=[],
                   help="recipe(s) timed against plain-v1 by --recipe-net (repeat; default fast-v1)")
    p.add_argument("--recipe-epochs", type=int, default=2)
    p.add_argument("--recipe-repeats", type=int, default=2)
    p.add_argument("--procs", type=int, default=1, help="also the first --fast-recipe under torchrun in this many processes "
                                                         "(threads split between them)")
    p.add_argument("--preload", action="append", default=[],
                   help="also each --fast-recipe with this shared library LD_PRELOADed, e.g. "
                        "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 (repeat); every arm then runs in its own process")
    p.add_argument("--work", default="/tmp/train_throughput_runs", help="where the recipe comparison's runs go")
    p.add_argument("--out", default="benchmarks/results/train_throughput.json")
    args = p.parse_args()
    if not args.net and not args.recipe_net:
        p.error("name a network: --net or --recipe-net")
    set_threads(args.threads)
    size = tuple(int(v) for v in args.size.split("x"))
    load_before = os.getloadavg()
    result = {"machine": {"cpu": cpu_model(), "bf16_flags": bf16_flags(), "cores": os.cpu_count(), "threads": args.threads,
                          "torch": torch.__version__, "isa": torch.backends.cpu.get_cpu_capability()},
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "batch": args.batch, "size": list(size), "rounds": args.rounds, "steps": args.steps,
              "compile": args.compile, "compile_bf16": args.compile_bf16, "depthwise_fp32": args.depthwise_fp32,
              "networks": {}}
    for net in args.net:
        result["networks"][Path(net).stem if net.endswith(".json") else net] = r = time_variants(
            net, args.batch, size, args.classes, args.rounds, args.steps, args.compile, args.compile_bf16,
            args.depthwise_fp32)
        print(net, r["step_ms"], r["deterministic"], flush=True)
    if args.data:
        result["data"] = time_data(args.dataset, args.data, size, 64)
        print(result["data"], flush=True)
    if args.recipe_net:
        if not args.data:
            p.error("--recipe-net needs --data")
        result["recipes"] = {Path(net).stem: time_recipes(net, args.dataset, args.data, size, args.batch,
                                                          args.recipe_epochs, args.recipe_repeats, args.threads,
                                                          Path(args.work) / Path(net).stem, args.procs,
                                                          tuple(args.fast_recipe) or ("fast-v1",), tuple(args.preload))
                             for net in args.recipe_net}
    result["loadavg_before"], result["loadavg_after"] = load_before, os.getloadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
