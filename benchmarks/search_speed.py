"""Search speed and memory per preset at demo size, and the step-time overhead of GCN and latency term.

Each preset runs in a fresh subprocess (peak memory = that process's ru_maxrss; tracemalloc does not
see torch's allocations), with a fixed thread count. Step time = median of timed (architecture step +
weight step) pairs after warm-up pairs; epoch time = one full search epoch on the demo data
(synth-cityscapes, generated if missing) including the held-out mIoU. Overheads: the same gas
supernet with and without the GCN module / the latency term, stepped round-robin in one process so
load hits all alike (`overhead_from_step_times`), and, because that difference drowns in noise on a
busy machine, the directly timed cost of the additions themselves relative to a plain step
(`overhead_direct`). With --full, a complete `workbench search --preset lgcnet` demo run is timed too.

    python benchmarks/search_speed.py [--threads 2] [--steps 6] [--full] [--out benchmarks/results/search_speed.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PRESETS = {"gas": dict(preset="gas"), "lgcnet": dict(preset="lgcnet"), "autortnet": dict(preset="autortnet")}
# the same gas supernet with and without its search-time additions, stepped round-robin in one process
VARIANTS = {
    "gas": dict(preset="gas"),
    "gas_no_gcn": dict(preset="gas", gcn=False),
    "gas_no_latency": dict(preset="gas", latency_weight=0.0),
    "gas_no_gcn_no_latency": dict(preset="gas", gcn=False, latency_weight=0.0),
}


def data_root() -> Path:
    from workbench.lab.demo import DATA
    from workbench.steps import synth_data

    root = ROOT / "datasets" / "synth-cityscapes"
    if not (root / ".complete").exists():
        synth_data("cityscapes", root, seed=0, **DATA["cityscapes"])
        (root / ".complete").write_text("ok\n")
    return root


def make_search(config: dict):
    import torch

    from workbench.nas.search import Search, build_datasets, lut_for, resolve_config, split_halves
    from workbench.runs import RunDir

    cfg = resolve_config({**config, "warmup_epochs": 0})
    torch.set_num_threads(cfg.threads)
    train, val, num_classes = build_datasets(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        search = Search(cfg, RunDir(tmp), lut_for(cfg, num_classes, "cpu"), num_classes, torch.device("cpu"))
    w_data, a_data = split_halves(train, cfg.seed)
    xw, yw = next(iter(torch.utils.data.DataLoader(w_data, batch_size=cfg.batch_size)))
    xa, ya = next(iter(torch.utils.data.DataLoader(a_data, batch_size=cfg.batch_size)))
    return search, (xw, yw, xa, ya), (w_data, a_data, val, num_classes)


def step_pair(search, batch) -> float:
    """One architecture step + one weight step on fixed batches (seconds)."""
    import torch

    xw, yw, xa, ya = batch
    t0 = time.perf_counter()
    search.architect.step(xa, ya)
    search.w_opt.zero_grad(set_to_none=True)
    loss = torch.nn.functional.cross_entropy(search.model(xw, search.model.arch_weights(sample=True)), yw,
                                             ignore_index=255)
    loss.backward()
    search.w_opt.step()
    return time.perf_counter() - t0


def arch_extras(search, reps: int = 30) -> float:
    """Median seconds of what GCN and the latency term add: relaxed (GCN-guided) weights + latency
    term, forward and backward, without the network itself."""
    from workbench.nas.latency.expected import latency_term

    model, arch = search.model, search.architect
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        weights = model.arch_weights(sample=True)
        loss = sum(w.sum() for w in weights) * 0.0
        if arch.latency is not None and arch.latency_weight > 0:
            loss = loss + latency_term(model.expected_latency(arch.latency), arch.reference_ms, None)
        loss.backward()
        times.append(time.perf_counter() - t0)
    model.zero_grad(set_to_none=True)
    return statistics.median(times)


def overhead_worker(spec: dict) -> dict:
    """All VARIANTS in one process, stepped round-robin so machine noise hits them alike."""
    searches = {name: make_search({**spec["config"], **v}) for name, v in VARIANTS.items()}
    times = {name: [] for name in searches}
    for i in range(spec["warmup"] + spec["steps"]):
        for name, (search, batch, _) in searches.items():
            t = step_pair(search, batch)
            if i >= spec["warmup"]:
                times[name].append(t)
    step = {name: statistics.median(t) for name, t in times.items()}
    extras = {name: arch_extras(s) for name, (s, _, _) in searches.items()}
    base = step["gas_no_gcn_no_latency"]
    return {"step_time_s": step, "step_times_s": times, "arch_extras_s": extras,
            "overhead_from_step_times": {
                "gcn": step["gas"] / step["gas_no_gcn"] - 1,
                "latency_term": step["gas"] / step["gas_no_latency"] - 1,
                "gcn_and_latency": step["gas"] / base - 1},
            # the additions per step pair: one architecture step computes them with backward, the
            # weight step the relaxed weights only; counted twice as an upper bound
            "overhead_direct": {
                "gcn": 2 * (extras["gas_no_latency"] - extras["gas_no_gcn_no_latency"]) / base,
                "latency_term": 2 * (extras["gas_no_gcn"] - extras["gas_no_gcn_no_latency"]) / base,
                "gcn_and_latency": 2 * (extras["gas"] - extras["gas_no_gcn_no_latency"]) / base}}


def worker(spec: dict) -> dict:
    """One preset in this (fresh) process: step time, one full epoch, peak RSS."""
    import torch

    from workbench.nas.search import evaluate_miou

    if spec.get("overhead"):
        return overhead_worker(spec)
    search, batch, (w_data, a_data, val, num_classes) = make_search(spec["config"])
    cfg = search.cfg
    times = [step_pair(search, batch) for _ in range(spec["warmup"] + spec["steps"])][spec["warmup"]:]
    out = {"step_time_s": statistics.median(times), "step_times_s": times, "arch_extras_s": arch_extras(search)}
    if spec.get("epoch", True):
        t0 = time.perf_counter()
        stats = search.train_epoch(0, w_data, a_data)
        out["train_epoch_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        evaluate_miou(search.model, val, num_classes, torch.device("cpu"))
        out["val_s"] = time.perf_counter() - t1
        out["epoch_time_s"] = out["train_epoch_s"] + out["val_s"]
        out["steps_per_epoch"] = min(len(w_data), len(a_data)) // cfg.batch_size
        out["train_loss"] = stats["train_loss"]
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["arch_params"] = sum(p.numel() for p in search.model.arch_parameters())
    out["weight_params"] = sum(p.numel() for p in search.model.weight_parameters())
    return out


def run_worker(spec: dict) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"worker failed for {spec['config']}:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def full_search(root: Path, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        # the child reports its own peak (RUSAGE_CHILDREN would be the max over every preset's process too)
        code = ("import resource, sys; from workbench.cli import main; rc = main(sys.argv[1:]); "
                "print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(rc)")
        proc = subprocess.run([sys.executable, "-c", code, "search", "--preset", "lgcnet", "--dataset",
                               "cityscapes", "--data-root", str(root), "--run-dir", f"{tmp}/run", "--device", "cpu",
                               "--threads", str(threads)], capture_output=True, text=True, cwd=ROOT)
        wall = time.time() - t0
        if proc.returncode != 0:
            raise SystemExit(f"full search failed:\n{proc.stderr[-3000:]}")
        rec = json.loads((Path(tmp) / "run" / "run_record.json").read_text())
    peak = [int(line.split()[1]) for line in proc.stdout.splitlines() if line.startswith("PEAK_RSS_KB")]
    return {"wall_s": wall, "peak_rss_mb": peak[-1] / 1024 if peak else None,
            "expected_latency_ms": rec["metrics"].get("expected_latency_ms"), "miou": rec["metrics"].get("miou")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=6, help="timed step pairs per configuration")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--full", action="store_true", help="also time a complete lgcnet demo search")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "search_speed.json"))
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    from workbench.device import device_fingerprint
    from workbench.nas.presets import get_preset

    root = data_root()
    lut_cache = tempfile.mkdtemp(prefix="lut")
    common = {"dataset": "cityscapes", "data_root": str(root), "threads": args.threads, "device": "cpu",
              "lut_cache_dir": lut_cache}
    results = {}
    for name, overrides in PRESETS.items():
        print(f"== {name}", flush=True)
        results[name] = run_worker({"config": {**overrides, **common}, "steps": args.steps, "warmup": args.warmup})
        print(json.dumps({k: v for k, v in results[name].items() if k != "step_times_s"}), flush=True)
    print("== overhead of GCN and latency term (gas variants, round-robin)", flush=True)
    overhead = run_worker({"config": common, "steps": args.steps, "warmup": args.warmup, "overhead": True})
    print(json.dumps({k: overhead[k] for k in ("overhead_from_step_times", "overhead_direct")}), flush=True)
    demo = get_preset("lgcnet")
    out = {
        "machine": device_fingerprint("cpu", args.threads),
        "demo_config": {k: getattr(demo, k) for k in ("input_size", "crop_size", "batch_size", "epochs",
                                                       "num_cells", "channels", "nodes")},
        "presets": results,
        "overhead": overhead,
        "estimated_lgcnet_search_s": results["lgcnet"]["epoch_time_s"] * demo.epochs,
        "estimated_autortnet_search_s": results["autortnet"]["epoch_time_s"] * get_preset("autortnet").epochs,
        "autortnet_step_vs_lgcnet": results["autortnet"]["step_time_s"] / results["lgcnet"]["step_time_s"],
        # the trellis latency term (path walk + LUT sums), forward and backward, twice per step pair
        "autortnet_latency_term_direct": 2 * results["autortnet"]["arch_extras_s"] / results["autortnet"]["step_time_s"],
    }
    if args.full:
        out["full_lgcnet_search"] = full_search(root, args.threads)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: overhead[k] for k in ("overhead_from_step_times", "overhead_direct")}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
