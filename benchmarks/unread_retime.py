"""Time the networks of published comparisons as published (every part built) and as built today
(the parts no output reads dropped), in one round-robin run, and re-read each comparison's
latency verdict with its study's rule. The comparisons and the declared verdicts are in
benchmarks/unread_retime.yaml.

Dropping unread parts leaves every output bit-identical with the same weights, so the published
per-seed mIoU stand; only latency moves. Networks with nothing unread are the control: they must
time the same both ways.

    python benchmarks/unread_retime.py benchmarks/unread_retime.yaml --out benchmarks/results/unread/retime_run1.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import statistics
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch
import yaml
from tqdm.auto import tqdm

RESULTS = Path(__file__).resolve().parent / "results"
CONTROL_BAND = (0.97, 1.03)  # today / published of a network with nothing unread (the declared control)


@contextlib.contextmanager
def every_part():
    """Build chain networks as workbench did before 2026-12-05: every cell, input and edge a genotype names."""
    import workbench.nas.chain as chain

    saved = chain.live_cells, chain.live_inputs, chain.live_edges
    chain.live_cells = lambda body: list(range(len(body.cells)))
    chain.live_inputs = lambda cell: list(range(cell.n_inputs))
    chain.live_edges = lambda cell: list(range(len(cell.edges)))
    try:
        yield
    finally:
        chain.live_cells, chain.live_inputs, chain.live_edges = saved


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def seed_of(run: str) -> int:
    found = re.search(r"-s(\d+)/retrain$", run)
    if not found:
        raise SystemExit(f"error: {run}: no seed in the run's name")
    return int(found.group(1))


def per_seed_miou(spec) -> list[tuple[int, int, float]]:
    """(source index, seed, val mIoU) of each run of the named arm(s) of published compare files."""
    out = []
    for i, part in enumerate(_as_list(spec)):
        path = RESULTS / part["file"]
        stats = json.loads(path.read_text())["stats"]
        if part["arm"] not in stats:
            raise SystemExit(f"error: {path}: no arm {part['arm']!r}")
        out += [(i, seed_of(r["run"]), float(r["miou"])) for r in stats[part["arm"]]["runs"]]
    return out


def builders_of(comparisons: list[dict]) -> tuple[dict, dict]:
    """{key: builder} for every network (`<name>@published` and `<name>@today`) and, per comparison,
    the keys and values it needs."""
    from workbench.nas.genotypes import load_genotype
    from workbench.nas.network import build_network
    from workbench.seg.baselines import build_baseline

    builders, plan = {}, {}
    for comp in comparisons:
        patterns = _as_list(comp["genotypes"])
        arm = []
        for i, seed, miou in per_seed_miou(comp["arm_miou"]):
            path = RESULTS / patterns[i].format(seed=seed)
            if not path.is_file():
                raise SystemExit(f"error: {path}: no such genotype")
            g = load_genotype(path)
            key = f"{comp['name']}/s{seed}"
            builders[key + "@today"] = lambda g=g: build_network(g)
            builders[key + "@published"] = lambda g=g: _published(build_network, g)
            arm.append({"network": key, "seed": seed, "miou": miou, "genotype": str(path.relative_to(RESULTS)),
                        "num_classes": g.num_classes})
        classes = arm[0]["num_classes"]
        base = comp["baseline"]
        builders[base + "@today"] = lambda b=base, c=classes: build_baseline(b, c)
        builders[base + "@published"] = lambda b=base, c=classes: build_baseline(b, c, drop_unread=False)
        plan[comp["name"]] = {"baseline": base, "arm": arm,
                              "baseline_miou": [m for _, _, m in per_seed_miou(comp["baseline_miou"])]}
    return builders, plan


def _published(build, genotype):
    with every_part():
        return build(genotype)


def ratio(a: list[list[float]], b: list[list[float]]) -> float:
    """Median over rounds of (a's mean latency in the round / b's mean latency in the round)."""
    n = min(len(r) for r in a + b)
    return statistics.median(statistics.fmean(r[i] for r in a) / statistics.fmean(r[i] for r in b) for i in range(n))


def analyse(plan: dict, timed: dict[str, list[float]]) -> dict:
    from workbench.study.stats import compare, describe

    networks = {}
    for key in sorted({k.rsplit("@", 1)[0] for k in timed}):
        today, published = timed[key + "@today"], timed[key + "@published"]
        networks[key] = {"today_ms": min(today), "published_ms": min(published),
                         "today_over_published": round(ratio([today], [published]), 4)}
    comparisons = {}
    for name, p in plan.items():
        keys = [a["network"] for a in p["arm"]]
        out = {}
        for build in ("published", "today"):
            arm = [timed[f"{k}@{build}"] for k in keys]
            base = timed[f"{p['baseline']}@{build}"]
            out[build] = {"per_round_ratio": round(ratio(arm, [base]), 4),
                          "arm_fastest_ms": describe([min(r) for r in arm]), "baseline_fastest_ms": min(base)}
        miou = compare(describe([a["miou"] for a in p["arm"]]), describe(p["baseline_miou"]))
        comparisons[name] = {"baseline": p["baseline"], "seeds": len(keys), "miou": miou, **out,
                             "equal_or_lower_latency_today": out["today"]["per_round_ratio"] <= 1.0,
                             "arm": p["arm"]}
    return {"networks": networks, "comparisons": comparisons}


def unread_summary(plan: dict) -> dict:
    """Per network: parameters as published and today, and what was dropped."""
    from workbench.nas.genotypes import load_genotype
    from workbench.nas.network import build_network
    from workbench.seg.baselines import build_baseline

    out = {}
    for p in plan.values():
        for a in p["arm"]:
            g = load_genotype(RESULTS / a["genotype"])
            today, published = build_network(g), _published(build_network, g)
            out[a["network"]] = {"params_today": sum(t.numel() for t in today.parameters()),
                                 "params_published": sum(t.numel() for t in published.parameters()),
                                 "dropped": today.body.unbuilt_prefixes()}
        classes = p["arm"][0]["num_classes"]
        today, published = build_baseline(p["baseline"], classes), build_baseline(p["baseline"], classes, drop_unread=False)
        out[p["baseline"]] = {"params_today": sum(t.numel() for t in today.parameters()),
                              "params_published": sum(t.numel() for t in published.parameters()),
                              "dropped": today.unread}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rounds", type=int, help="override the file's rounds (a smoke run)")
    args = parser.parse_args(argv)
    from workbench.device import cpu_model, device_fingerprint, set_threads
    from workbench.jsonio import atomic_write_json
    from workbench.loadcheck import OtherLoad
    from workbench.nas.latency.timing import measure_built

    try:
        spec = yaml.safe_load(args.spec.read_text())
    except (OSError, yaml.YAMLError) as exc:
        print(f"error: {args.spec}: {exc.__class__.__name__}", file=sys.stderr)
        return 2
    builders, plan = builders_of(spec["comparisons"])
    rounds = args.rounds or int(spec["rounds"])
    threads = set_threads(int(spec["threads"]))
    with tqdm(total=len(builders) * rounds, desc="unread retime", disable=None) as bar, OtherLoad() as load:
        timed = measure_built(builders, tuple(spec["size"]), "cpu", int(spec["warmup"]), int(spec["repeats"]),
                              rounds, progress=bar.update)
    result = {"spec": str(args.spec), "measured": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "cpu": cpu_model(), "device": device_fingerprint(torch.device("cpu"), threads),
              "size": spec["size"], "threads": threads, "rounds": rounds, "repeats": spec["repeats"],
              "other_load": load.share, "busy": load.busy, **analyse(plan, timed),
              "parts": unread_summary(plan), "round_medians": timed}
    controls = {k: v["today_over_published"] for k, v in result["networks"].items()
                if result["parts"][k]["params_today"] == result["parts"][k]["params_published"]}
    result["control"] = {"band": list(CONTROL_BAND), "ratios": controls,
                         "outside": sorted(k for k, r in controls.items() if not CONTROL_BAND[0] <= r <= CONTROL_BAND[1])}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out, result)
    for name, c in result["comparisons"].items():
        print(f"{name}: mIoU {c['miou']['diff']:+.4f} (SE {c['miou']['se']:.4f}, {c['miou']['outcome']}); per-round "
              f"ratio published {c['published']['per_round_ratio']:.3f}, today {c['today']['per_round_ratio']:.3f}")
    for key, n in result["networks"].items():
        print(f"  {key}: {n['published_ms']:.2f} -> {n['today_ms']:.2f} ms (per round x{n['today_over_published']:.3f})")
    print(f"other load {100 * (load.share or 0):.1f} %; controls outside {CONTROL_BAND}: {result['control']['outside'] or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
