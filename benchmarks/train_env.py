"""Process-level levers on CPU training throughput: the memory allocator, flushing denormals, and
OpenMP thread binding, none of which a recipe can switch inside a running process.

Each variant is a fresh Python process (an allocator is chosen by LD_PRELOAD before torch loads)
that times one training step per network (channels_last fp32, the format and precision `fast-v1`
chooses on a CPU without AMX; forward, fp32 cross entropy, backward, AdamW) on a fixed batch:
the median of `--steps` steps after one warm-up. The variants run round-robin, `--rounds` times,
so that a drifting VM hits each one alike; a variant's speed-up is the median over rounds of the
default process's step time over its own in the same round (`per_round_ratio`).

    python benchmarks/train_env.py --net fpn_mobilenetv3_small_050 \
        --net benchmarks/results/proxy_genotypes/lgcnet-lw0.json --net fpn_mobilenet_v2 \
        --out benchmarks/results/train_env_intel.json

With `--bench SIZE`, each variant instead runs `workbench bench` on each network at SIZE (batch 1,
inference, the latency tables' protocol) and the speed-up is of its latency: whether a variant
changes the latency a table would record.

Time only on a quiet machine (the JSON records the load average before and after). A variant whose
library is not installed (Debian: libjemalloc2, libtcmalloc-minimal4; PyPI: intel-openmp) is skipped
and named. `--variant` picks some (default: all); `default` is always timed, as the reference.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from workbench.allocator import find_tcmalloc

LIB = Path("/usr/lib/x86_64-linux-gnu")
JEMALLOC, TCMALLOC = str(LIB / "libjemalloc.so.2"), str(find_tcmalloc() or LIB / "libtcmalloc_minimal.so.4")
IOMP = str(Path(sys.prefix) / "lib" / "libiomp5.so")  # pip install intel-openmp
IOMP_ENV = {"KMP_BLOCKTIME": "1", "KMP_AFFINITY": "granularity=fine,compact,1,0"}  # as torch's xeon run_cpu sets
VARIANTS: dict[str, dict[str, str]] = {
    "default": {},
    "jemalloc": {"LD_PRELOAD": JEMALLOC},
    "tcmalloc": {"LD_PRELOAD": TCMALLOC},
    "flush_denormal": {"WB_FLUSH_DENORMAL": "1"},
    "omp_bind": {"OMP_PROC_BIND": "close", "OMP_PLACES": "cores"},
    "iomp": {"LD_PRELOAD": IOMP, **IOMP_ENV},
    "tcmalloc+iomp": {"LD_PRELOAD": f"{TCMALLOC}:{IOMP}", **IOMP_ENV},
}


def child(nets: list[str], threads: int, batch: int, size: tuple[int, int], steps: int) -> dict[str, float]:
    """Step milliseconds per network in this process (run as `--child`)."""
    import torch

    sys.path.insert(0, str(Path(__file__).parent))
    from train_throughput import make_step

    from workbench.device import set_threads
    from workbench.seg import throughput
    from workbench.seg.model import build_model

    set_threads(threads)
    if os.environ.get("WB_FLUSH_DENORMAL") == "1" and not torch.set_flush_denormal(True):
        raise SystemExit("error: flush_denormal: this CPU does not support it")
    out = {}
    for net in nets:
        torch.manual_seed(0)
        kw = {"genotype": net} if net.endswith(".json") else {"baseline": net}
        model, _ = build_model(num_classes=11, **kw)
        x, y = torch.randn(batch, 3, *size), torch.randint(0, 11, (batch, *size))
        step = make_step(throughput.prepare(model.train(), "channels_last"), "channels_last", "fp32", x, y)
        step()
        times = []
        for _ in range(steps):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        out[net] = statistics.median(times) * 1000
    return out


def bench_ms(net: str, size: str, threads: int, env: dict[str, str]) -> float:
    """`workbench bench`'s latency (ms) of one network, in a fresh process with `env`."""
    import tempfile

    flag = "--genotype" if net.endswith(".json") else "--baseline"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        subprocess.run([sys.executable, "-m", "workbench", "bench", flag, net, "--size", size, "--device", "cpu",
                        "--threads", str(threads), "--no-memory", "--json", str(out)],
                       env=env, capture_output=True, text=True, check=True)
        return float(json.loads(out.read_text())["latency_ms"]["median"])


def main() -> None:
    from workbench.device import cpu_flags, cpu_model
    from workbench.study.bench import per_round_ratio

    sys.path.insert(0, str(Path(__file__).parent))
    from train_throughput import step_arguments

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    step_arguments(p, rounds=5, steps=5)
    p.add_argument("--out", default="benchmarks/results/train_env.json")
    p.add_argument("--variant", action="append", choices=sorted(VARIANTS), help="time only these (repeat)")
    p.add_argument("--bench", metavar="HxW", help="time inference latency with `workbench bench` at this size instead")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    if args.child:
        print(json.dumps(child(args.net, args.threads, args.batch, size, args.steps)))
        return
    if not args.net:
        raise SystemExit("error: --net: name at least one network")
    asked = {k: v for k, v in VARIANTS.items() if k == "default" or not args.variant or k in args.variant}
    variants = {k: v for k, v in asked.items() if all(Path(lib).exists() for lib in v.get("LD_PRELOAD", "").split(":") if lib)}
    skipped = sorted(set(asked) - set(variants))
    cmd = [sys.executable, __file__, "--child", "--threads", str(args.threads), "--batch", str(args.batch),
           "--size", args.size, "--steps", str(args.steps)] + [a for n in args.net for a in ("--net", n)]
    load_before = os.getloadavg()
    rounds: dict[str, list[dict[str, float]]] = {k: [] for k in variants}
    for r in range(args.rounds):
        for name, env in variants.items():
            if args.bench:
                rounds[name].append({n: bench_ms(n, args.bench, args.threads, {**os.environ, **env}) for n in args.net})
            else:
                done = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True, check=True)
                rounds[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"round {r + 1}/{args.rounds} {name}: "
                  + ", ".join(f"{Path(n).stem} {ms:.1f} ms" for n, ms in rounds[name][-1].items()), flush=True)
    step_ms = {k: {n: [round(rd[n], 2) for rd in rs] for n in args.net} for k, rs in rounds.items()}
    per_round = "latency_ms_per_round" if args.bench else "step_ms_per_round"
    speedup = {k: {n: round(per_round_ratio(step_ms["default"][n], step_ms[k][n]), 3) for n in args.net}
               for k in variants}
    result = {"machine": {"cpu": cpu_model(), "flags": [f for f in cpu_flags() if "bf16" in f or "amx" in f],
                          "cores": os.cpu_count(), "threads": args.threads},
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "command": "python " + " ".join([Path(__file__).name] + sys.argv[1:]),
              "setting": ({"bench_size": args.bench, "batch": 1, "rounds": args.rounds, "mode": "inference latency "
                           "(workbench bench defaults)"} if args.bench else
                          {"batch": args.batch, "size": list(size), "steps": args.steps, "rounds": args.rounds,
                           "format": "channels_last", "precision": "fp32"}),
              "variants": variants, "skipped": skipped,
              per_round: step_ms, "speedup_vs_default_per_round": speedup,
              "loadavg_before": load_before, "loadavg_after": os.getloadavg()}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    for k, by_net in speedup.items():
        print(f"{k:15s} " + "  ".join(f"{Path(n).stem} {s:.3f}x" for n, s in by_net.items()))


if __name__ == "__main__":
    main()
