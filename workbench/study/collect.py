"""Collecting a study's run directories into rows (one per seed) and arms (one per setting).

An *arm* is one setting of the swept switches (space, cell_sharing, gcn, gamma, fusion,
latency_weight, ...; or a baseline name; or the VOS attention switch); its runs differ only in
the seed. A NAS row joins a search run, the retrain of its genotype and that retrain's benchmark.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from workbench.config import RENAMED
from workbench.errors import ConfigError, GenotypeError
from workbench.jsonio import read_json
from workbench.nas.genotypes import genotype_from_dict
from workbench.nas.space import get_space
from workbench.runs import RunDir, iter_runs
from workbench.study.stats import describe

# search-config fields that define a NAS arm besides the space's own (`SearchSpace.arm_keys`);
# everything else is budget or fixed
LOOP_ARM_KEYS = ("latency_weight", "target_latency_ms", "target_baseline", "target_fraction", "latency_control",
                 "target_derive", "relaxation")
SEARCH_BUDGET = ("dataset", "data_root", "epochs", "warmup_epochs", "steps_per_epoch", "batch_size",
                 "crop_size", "input_size")
# the supernet's size, whatever its space calls it (a chain's num_cells is a trellis' layers)
SPACE_BUDGET = {"cells": ("num_cells", "layers"), "channels": ("channels",), "nodes": ("nodes",)}
RETRAIN_BUDGET = ("dataset", "data_root", "epochs", "crop_size", "batch_size", "lr", "eval_size")
VOS_BUDGET = ("data_root", "split", "epochs", "steps_per_epoch", "batch_size", "crop_size")
BENCH_KEYS = ("latency_ms", "fps", "gflops", "params_m")


# -- collecting runs ------------------------------------------------------------------------------
def _config(path: Path) -> dict:
    try:
        return read_json(path / "config.json") if (path / "config.json").is_file() else {}
    except (OSError, ValueError):
        return {}


def _benchmarks(runs: list[RunDir]) -> dict[Path, dict]:
    """Metrics of finished benchmark runs keyed by the run directory they measured (latest wins)."""
    out: dict[Path, tuple[str, dict]] = {}
    for run in runs:
        rec = run.record()
        target = _config(run.path).get("run")
        if rec.get("kind") != "benchmark" or rec.get("status") != "finished" or not target:
            continue
        key = Path(target) if Path(target).is_absolute() else (Path.cwd() / target)
        if not key.exists():
            key = run.path / target
        stamp = str(rec.get("finished"))
        if key.resolve() not in out or stamp >= out[key.resolve()][0]:
            out[key.resolve()] = (stamp, dict(rec.get("metrics") or {}, device=rec.get("device")))
    return {k: v for k, (_, v) in out.items()}


def _budget(cfg: dict, keys: tuple[str, ...]) -> dict:
    """The budget settings of a stored config; runs stored with 0.1 names (`RENAMED`) read the same."""
    cfg = {RENAMED.get(k, k): v for k, v in cfg.items()} | {k: v for k, v in cfg.items() if k not in RENAMED}
    return {k: cfg.get(k) for k in keys}


def _search_budget(cfg: dict) -> dict:
    space = cfg.get("space") if isinstance(cfg.get("space"), dict) else {}
    out = _budget(cfg, SEARCH_BUDGET)
    for key, names in SPACE_BUDGET.items():
        out[key] = next((space[n] for n in names if n in space), None)
    return out


def _architecture(genotype: dict | None) -> dict:
    """Derived depth and downsampling positions, as the genotype's space summarizes its body."""
    if not genotype:
        return {}
    try:
        g = genotype_from_dict(genotype)
    except GenotypeError:
        return {}
    summary = get_space(g.space).summary(g.body)
    downs = list(summary["downsampling"])
    return {"depth": summary["depth"], "downsampling": downs,
            "mean_down_layer": sum(downs) / len(downs) if downs else None}


def search_config(cfg: dict) -> dict:
    """A stored search config in today's nested form (configs of workbench 0.1 are flat)."""
    from workbench.nas.presets import upgrade_stored

    try:
        return upgrade_stored(cfg)
    except ConfigError:
        return dict(cfg)


def _nas_arm(cfg: dict) -> dict:
    space = cfg.get("space") if isinstance(cfg.get("space"), dict) else {"name": "cells"}
    impl = get_space(space.get("name", "cells"))
    return {"space": impl.name, **impl.arm(space), **{k: cfg.get(k) for k in LOOP_ARM_KEYS}}


def arm_name(family: str, arm: dict) -> str:
    """Short readable label of an arm: 'fixed, indep, gcn γ=0.5, fusion, λ=0.1'. Settings missing
    from `arm` (a comparison's context lacks the compared switch) are left out."""
    if family == "baseline":
        return f"baseline {arm['baseline']}"
    if family == "vos":
        return f"OVS-Net attention {'on' if arm['attention'] else 'off'}"
    parts = []
    if "space" in arm:
        parts.append("hyper-cells" if arm["space"] == "hyper" else "fixed")
    if "cell_sharing" in arm:
        parts.append("shared" if arm["cell_sharing"] else "indep")
    if "gcn" in arm:
        parts.append(f"gcn γ={arm['gamma']:g}" if arm["gcn"] and arm.get("gamma") is not None
                     else "gcn" if arm["gcn"] else "no gcn")
    if arm.get("fusion"):
        parts.append("fusion")
    if arm.get("space") == "hyper" and "aggregation" in arm:
        parts.append("aggregation" if arm["aggregation"] else "no aggregation")
    if "latency_weight" in arm:
        start = "λ0" if arm.get("latency_control") == "adaptive" else "λ"  # adaptive: the starting value
        parts.append(f"{start}={arm['latency_weight'] or 0:g}")
    if arm.get("target_latency_ms") is not None:
        parts.append(f"T={arm['target_latency_ms']:g} ms")
    if arm.get("target_fraction") is not None:
        parts.append(f"T={arm['target_fraction']:g}x {arm.get('target_baseline')}")
    if arm.get("target_derive"):
        parts.append("derived to T")
    if arm.get("relaxation") not in (None, "softmax"):
        parts.append(str(arm["relaxation"]))
    return ", ".join(parts)


def collect_runs(root: str | Path) -> tuple[list[dict], list[dict]]:
    """(finished runs as flat rows, unfinished/unusable runs) under root.

    A row: {"family": "nas"|"baseline"|"vos", "arm": {...}, "seed", "metrics": {...},
    "budget": {...}, "run_dir", "preset"}. A NAS row joins a search run, the retrain of its
    genotype and that retrain's benchmark; a search that was not retrained still gives a row with
    the search-side numbers (expected latency, depth, downsampling).
    """
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"{root}: no such folder of ablation runs")
    runs = list(iter_runs(root))
    benches = _benchmarks(runs)
    records = {run.path.resolve(): run.record() for run in runs}
    retrains_of: dict[Path, list[RunDir]] = defaultdict(list)
    rows, skipped = [], []
    for run in runs:
        rec = records[run.path.resolve()]
        if rec.get("kind") == "retrain" and rec.get("status") == "finished":
            src = rec.get("genotype_source") or _config(run.path).get("genotype")
            if src:
                src_path = Path(src) if Path(src).is_absolute() else Path.cwd() / src
                retrains_of[src_path.resolve().parent].append(run)
    for run in runs:
        rec = records[run.path.resolve()]
        kind, status = rec.get("kind"), rec.get("status")
        if kind in ("frontier", "notebook", "benchmark", "vos_train"):
            continue
        if kind == "retrain" and status == "finished":
            continue  # joined to its search run below
        if status != "finished":
            skipped.append({"run_dir": str(run.path), "kind": kind, "status": status, "error": rec.get("error")})
            continue
        if kind == "search":
            rows.extend(_nas_rows(run, rec, retrains_of.get(run.path.resolve(), []), records, benches))
        elif kind == "baseline":
            cfg = _config(run.path)
            metrics = {k: (rec.get("metrics") or {}).get(k) for k in ("miou", "pixel_acc", "params_m")}
            bench = benches.get(run.path.resolve()) or {}
            metrics.update({k: bench.get(k) for k in BENCH_KEYS if bench.get(k) is not None})
            rows.append({"family": "baseline", "arm": {"baseline": rec.get("baseline")}, "seed": rec.get("seed"),
                         "metrics": metrics, "budget": {"retrain": _budget(cfg, RETRAIN_BUDGET)},
                         "run_dir": str(run.path), "preset": None, "device": bench.get("device"),
                         "finished": rec.get("finished")})
        elif kind == "vos_segment":
            rows.append(_vos_row(run, rec))
    return rows, skipped


def _nas_rows(search: RunDir, rec: dict, retrains: list[RunDir], records: dict, benches: dict) -> list[dict]:
    cfg = search_config(search.read_config())
    genotype = None
    if search.genotype_path.is_file():
        try:
            genotype = read_json(search.genotype_path)
        except (OSError, ValueError):
            genotype = None
    base = {"search_miou": (rec.get("metrics") or {}).get("miou"),
            "expected_latency_ms": (genotype or {}).get("expected_latency_ms"), **_architecture(genotype)}
    row = {"family": "nas", "arm": _nas_arm(cfg), "seed": cfg.get("seed", rec.get("seed")), "finished": rec.get("finished"),
           "preset": cfg.get("preset", rec.get("preset")), "run_dir": str(search.path), "device": None}
    if not retrains:
        return [dict(row, metrics=dict(base), budget={"search": _search_budget(cfg), "retrain": None})]
    out = []
    for rt in sorted(retrains, key=lambda r: str(r.path)):
        rrec = records[rt.path.resolve()]
        metrics = dict(base, **{k: (rrec.get("metrics") or {}).get(k) for k in ("miou", "pixel_acc", "params_m")})
        bench = benches.get(rt.path.resolve()) or {}
        metrics.update({k: bench.get(k) for k in BENCH_KEYS if bench.get(k) is not None})
        out.append(dict(row, metrics=metrics, retrain_dir=str(rt.path), device=bench.get("device"),
                        budget={"search": _search_budget(cfg), "retrain": _budget(_config(rt.path), RETRAIN_BUDGET)}))
    return out


def _vos_row(run: RunDir, rec: dict) -> dict:
    cfg = run.read_config()
    model = cfg.get("model") or rec.get("model")
    train_rec, train_cfg = {}, {}
    if model:
        mpath = Path(model) if Path(model).is_absolute() else Path.cwd() / model
        train_rec, train_cfg = RunDir(mpath).record(), _config(mpath)
    attention = train_cfg.get("attention", train_rec.get("attention"))
    metrics = {}
    for method, res in (rec.get("methods_results") or {}).items():
        for k in ("jf", "j_mean", "f_mean", "fps"):
            if res.get(k) is not None:
                metrics[f"{method}_{k}"] = res[k]
    return {"family": "vos", "arm": {"attention": True if attention is None else bool(attention)},
            "seed": train_cfg.get("seed", train_rec.get("seed")), "metrics": metrics, "preset": "ovsnet",
            "budget": {"vos": _budget(train_cfg, VOS_BUDGET)}, "run_dir": str(run.path),
            "device": rec.get("device"), "finished": rec.get("finished")}


def _key(family: str, arm: dict) -> tuple:
    return (family, tuple(sorted((k, repr(v)) for k, v in arm.items())))


def group_arms(rows: list[dict]) -> list[dict]:
    """One entry per arm: seeds, per-metric statistics, the budget (or 'mixed') and the runs."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        groups[_key(row["family"], row["arm"])].append(row)
    arms = []
    for (family, _), members in groups.items():
        by_seed: dict[Any, dict] = {}
        for row in sorted(members, key=lambda r: (str(r.get("finished")), r["run_dir"])):
            by_seed[row["seed"]] = row  # a repeated seed counts once: the latest finished run
        members = [by_seed[s] for s in sorted(by_seed, key=lambda s: (s is None, s))]
        keys = sorted({k for row in members for k, v in row["metrics"].items() if isinstance(v, (int, float))})
        budgets = {repr(row["budget"]) for row in members}
        arm = members[0]["arm"]
        arms.append({"family": family, "name": arm_name(family, arm), "arm": arm,
                     "presets": sorted({str(r["preset"]) for r in members if r.get("preset")}),
                     "seeds": [r["seed"] for r in members], "n": len(members),
                     "metrics": {k: describe([r["metrics"].get(k) for r in members]) for k in keys},
                     "architectures": [{"seed": r["seed"], "depth": r["metrics"].get("depth"),
                                        "downsampling": r["metrics"].get("downsampling")} for r in members
                                       if r["metrics"].get("depth") is not None],
                     "budget": members[0]["budget"] if len(budgets) == 1 else "mixed",
                     "runs": [r.get("retrain_dir") or r["run_dir"] for r in members]})
    order = {"nas": 0, "baseline": 1, "vos": 2}
    return sorted(arms, key=lambda a: (order.get(a["family"], 9), a["name"]))
