"""Ablation studies of the seed papers' claims: collect run directories, aggregate seeds, judge claims.

The study is a set of `workbench batch` sweeps (benchmarks/ablations.yaml) that write ordinary run
directories; everything here only reads them (`summarize`), so the same code judges the full study,
the smoke version and any hand-made set of runs. An *arm* is one setting of the swept switches
(space, cell_sharing, gcn, gamma, fusion, latency_weight, ...; or a baseline name; or the VOS
attention switch); its runs differ only in the seed. Per arm and metric we report the mean, the
sample standard deviation and min/max over seeds. A comparison of two arms is decided against the
noise: a difference counts when it exceeds `k` standard errors of the difference
(se = sqrt(s_a^2/n_a + s_b^2/n_b)), otherwise it is "within noise". With fewer than 2 seeds on a
side there is no spread, and no verdict beyond "inconclusive".

Verdicts: "held", "did not hold", "mixed" (held in one context, not in another), "inconclusive"
(within noise, too few seeds, or arms trained with different budgets), "not measured".
"""

from __future__ import annotations

import argparse
import logging
import math
import statistics
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from workbench.config import load_yaml
from workbench.errors import ConfigError
from workbench.runs import RunDir, atomic_write_json, atomic_write_text, iter_runs, read_json

log = logging.getLogger(__name__)

SCHEMA, VERSION = "workbench.ablations", 1
HELD, NOT_HELD, MIXED, INCONCLUSIVE, NOT_MEASURED = "held", "did not hold", "mixed", "inconclusive", "not measured"

# search-config fields that define a NAS arm (the swept switches); everything else is budget or fixed
ARM_KEYS = ("space", "cell_sharing", "gcn", "gamma", "fusion", "aggregation", "latency_weight",
            "target_latency_ms", "relaxation")
SEARCH_BUDGET = ("dataset", "data_root", "epochs", "warmup_epochs", "steps_per_epoch", "batch_size",
                 "crop_size", "input_size", "num_cells", "channels", "nodes")
RETRAIN_BUDGET = ("dataset", "data_root", "epochs", "crop", "batch_size", "lr", "eval_size")
VOS_BUDGET = ("data_root", "split", "epochs", "iters_per_epoch", "batch_size", "crop")
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
    return {k: cfg.get(k) for k in keys}


def _architecture(genotype: dict | None, search_cfg: dict) -> dict:
    """Derived depth and downsampling positions (hyper path when searched, else reduction cells)."""
    if not genotype:
        return {}
    hyper = genotype.get("hyper") or None
    if hyper and hyper.get("path"):
        path = hyper["path"]
        downs = [int(p["layer"]) for p in path if p.get("choice") == "down"]
        depth = hyper.get("depth")
        if depth is None:
            depth = sum(1 for p in path if p.get("choice") != "prune")
    else:
        cells = genotype.get("cells") or []
        downs = [int(c.get("index", i)) for i, c in enumerate(cells) if c.get("kind") == "reduction"]
        depth = len(cells)
    return {"depth": depth, "downsampling": downs,
            "mean_down_layer": sum(downs) / len(downs) if downs else None}


def _nas_arm(cfg: dict) -> dict:
    arm = {k: cfg.get(k) for k in ARM_KEYS}
    arm["space"] = arm["space"] or "cells"
    if not arm["gcn"]:
        arm["gamma"] = None
    if arm["space"] != "hyper":
        arm["aggregation"] = None
    else:
        arm["fusion"] = None
        arm["aggregation"] = True if arm["aggregation"] is None else arm["aggregation"]
    return arm


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
        parts.append(f"λ={arm['latency_weight'] or 0:g}")
    if arm.get("target_latency_ms") is not None:
        parts.append(f"T={arm['target_latency_ms']:g} ms")
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
    cfg = search.read_config()
    genotype = None
    if search.genotype_path.is_file():
        try:
            genotype = read_json(search.genotype_path)
        except (OSError, ValueError):
            genotype = None
    base = {"search_miou": (rec.get("metrics") or {}).get("miou"),
            "expected_latency_ms": (genotype or {}).get("expected_latency_ms"), **_architecture(genotype, cfg)}
    row = {"family": "nas", "arm": _nas_arm(cfg), "seed": cfg.get("seed", rec.get("seed")), "finished": rec.get("finished"),
           "preset": cfg.get("preset", rec.get("preset")), "run_dir": str(search.path), "device": None}
    if not retrains:
        return [dict(row, metrics=dict(base), budget={"search": _budget(cfg, SEARCH_BUDGET), "retrain": None})]
    out = []
    for rt in sorted(retrains, key=lambda r: str(r.path)):
        rrec = records[rt.path.resolve()]
        metrics = dict(base, **{k: (rrec.get("metrics") or {}).get(k) for k in ("miou", "pixel_acc", "params_m")})
        bench = benches.get(rt.path.resolve()) or {}
        metrics.update({k: bench.get(k) for k in BENCH_KEYS if bench.get(k) is not None})
        out.append(dict(row, metrics=metrics, retrain_dir=str(rt.path), device=bench.get("device"),
                        budget={"search": _budget(cfg, SEARCH_BUDGET), "retrain": _budget(_config(rt.path), RETRAIN_BUDGET)}))
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


# -- arms: seeds -> mean and spread -------------------------------------------------------------------
def describe(values: list[float]) -> dict:
    """mean, sample std (None below 2 values), min, max, n of the non-missing values."""
    vals = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return {"mean": None, "std": None, "min": None, "max": None, "n": 0, "values": []}
    return {"mean": statistics.fmean(vals), "std": statistics.stdev(vals) if len(vals) > 1 else None,
            "min": min(vals), "max": max(vals), "n": len(vals), "values": vals}


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


# -- comparisons ---------------------------------------------------------------------------------------
def compare(a: dict | None, b: dict | None, higher_is_better: bool = True, k: float = 2.0) -> dict:
    """Is a better than b (statistics from `describe`)? 'better' / 'worse' beyond k standard errors,
    'within noise', 'too few seeds' (n < 2 on a side) or 'missing'."""
    out = {"a": None if not a else a["mean"], "b": None if not b else b["mean"], "diff": None, "se": None,
           "outcome": "missing"}
    if not a or not b or a["mean"] is None or b["mean"] is None:
        return out
    diff = a["mean"] - b["mean"]
    out["diff"] = diff
    if a["n"] < 2 or b["n"] < 2:
        out["outcome"] = "too few seeds"
        return out
    se = math.sqrt(a["std"] ** 2 / a["n"] + b["std"] ** 2 / b["n"])
    out["se"] = se
    gain = diff if higher_is_better else -diff
    out["outcome"] = "better" if gain > k * se else "worse" if -gain > k * se else "within noise"
    return out


def tradeoff(acc: dict, lat: dict) -> str:
    """Verdict for 'A gives a better accuracy-latency trade-off than B' from two `compare` results:
    better on one axis and not worse on the other -> held; the reverse -> did not hold."""
    known = [o for o in (acc["outcome"], lat["outcome"]) if o != "missing"]
    if acc["outcome"] == "missing":
        return NOT_MEASURED
    if "too few seeds" in known:
        return INCONCLUSIVE
    if "better" in known and "worse" not in known:
        return HELD
    if "worse" in known and "better" not in known:
        return NOT_HELD
    return INCONCLUSIVE


def single(cmp: dict) -> str:
    return {"better": HELD, "worse": NOT_HELD, "missing": NOT_MEASURED}.get(cmp["outcome"], INCONCLUSIVE)


def combine(verdicts: list[str]) -> str:
    """A claim tested in several contexts (or with several parts) holds only where all of them hold."""
    vs = [v for v in verdicts if v != NOT_MEASURED]
    if not vs:
        return NOT_MEASURED
    if all(v == HELD for v in vs):
        return HELD
    if NOT_HELD in vs:
        return MIXED if HELD in vs else NOT_HELD
    return INCONCLUSIVE


def _same_budget(arms: list[dict], part: str | None = None) -> bool:
    budgets = []
    for arm in arms:
        if arm["budget"] == "mixed":
            return False
        budgets.append(repr(arm["budget"].get(part) if part else arm["budget"]))
    return len(set(budgets)) <= 1


def _fmt(stats: dict | None, digits: int = 3) -> str:
    if not stats or stats.get("mean") is None:
        return "–"
    text = f"{stats['mean']:.{digits}f}"
    if stats.get("std") is not None:
        text += f" ± {stats['std']:.{digits}f}"
    return text + f" (n={stats['n']})"


def _m(arm: dict, key: str) -> dict | None:
    return arm["metrics"].get(key)


def _pairs(arms: list[dict], switch: str, ignore: tuple[str, ...] = ()) -> list[tuple[dict, dict, dict]]:
    """(arm with switch on, arm with it off, the shared context) for NAS arms differing only in `switch`."""
    groups: dict[tuple, dict[Any, dict]] = defaultdict(dict)
    for arm in arms:
        if arm["family"] != "nas":
            continue
        ctx = {k: v for k, v in arm["arm"].items() if k != switch and k not in ignore}
        groups[tuple(sorted((k, repr(v)) for k, v in ctx.items()))][bool(arm["arm"].get(switch))] = arm
    out = []
    for ctx, pair in sorted(groups.items()):
        if True in pair and False in pair:
            out.append((pair[True], pair[False], dict((k, _literal(v)) for k, v in ctx)))
    return out


def _literal(text: str) -> Any:
    import ast

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _context(ctx: dict) -> str:
    return arm_name("nas", ctx)


def _claim(cid: str, title: str, claim: str, metric: str, rows: list[dict], verdicts: list[str],
           statement: str, arms: list[dict], budget_part: str | None = None, extra: dict | None = None) -> dict:
    verdict = combine(verdicts)
    notes = []
    if arms and not _same_budget(arms, budget_part):
        notes.append("arms were trained with different budgets (or some of their runs are unfinished): no verdict")
        verdict = INCONCLUSIVE if verdict != NOT_MEASURED else verdict
    if arms and min(a["n"] for a in arms) < 3:
        notes.append(f"fewer than 3 seeds in an arm (min {min(a['n'] for a in arms)})")
    if verdict == NOT_MEASURED and not statement:
        statement = "not yet measured: no finished runs of the needed arms under this root"
    return {"id": cid, "title": title, "claim": claim, "metric": metric, "verdict": verdict, "statement": statement,
            "rows": rows, "notes": notes, "arms": [a["name"] for a in arms], **(extra or {})}


def _row(arm: dict, keys: tuple[str, ...], label: str | None = None) -> dict:
    return {"arm": label or arm["name"], "n": arm["n"], **{k: _m(arm, k) for k in keys}}


NAS_KEYS = ("miou", "latency_ms", "expected_latency_ms", "search_miou")


def claim_cell_independent(arms: list[dict], k: float) -> dict:
    rows, verdicts, used, says = [], [], [], []
    for shared, indep, ctx in _pairs(arms, "cell_sharing"):
        acc = compare(_m(indep, "miou"), _m(shared, "miou"), True, k)
        lat = compare(_m(indep, "latency_ms"), _m(shared, "latency_ms"), False, k)
        v = tradeoff(acc, lat)
        verdicts.append(v)
        used += [indep, shared]
        rows += [_row(indep, NAS_KEYS), _row(shared, NAS_KEYS)]
        says.append(f"[{_context(ctx)}] mIoU {_fmt(_m(indep, 'miou'))} independent vs {_fmt(_m(shared, 'miou'))} "
                    f"shared ({acc['outcome']}); latency {_fmt(_m(indep, 'latency_ms'), 2)} vs "
                    f"{_fmt(_m(shared, 'latency_ms'), 2)} ms ({'lower ' if lat['outcome'] == 'better' else ''}"
                    f"{lat['outcome']}): {v}")
    return _claim("cell_independent", "Cell-independent vs cell-sharing search space",
                  "GAS/LGCNet: cell-independent alphas give a better accuracy-latency trade-off than DARTS-style "
                  "cell sharing", "miou (higher), latency_ms (lower) of the retrained networks", rows, verdicts,
                  "; ".join(says), used)


def claim_gcn(arms: list[dict], k: float, reference_gamma: float = 0.5) -> dict:
    rows, verdicts, used, says = [], [], [], []
    pairs = _pairs(arms, "gcn", ignore=("gamma",))
    for on_arm_any, off, ctx in pairs:
        ctx_on = [a for a in arms if a["family"] == "nas" and a["arm"].get("gcn")
                  and all(a["arm"].get(key) == val for key, val in ctx.items())]
        ctx_on.sort(key=lambda a: a["arm"]["gamma"] or 0.0)
        ref = next((a for a in ctx_on if a["arm"]["gamma"] == reference_gamma), ctx_on[0] if ctx_on else on_arm_any)
        cmp = compare(_m(ref, "miou"), _m(off, "miou"), True, k)
        verdicts.append(single(cmp))
        used += [ref, off]
        rows += [_row(off, NAS_KEYS, off["name"] + " (γ=0)")] + [_row(a, NAS_KEYS) for a in ctx_on]
        says.append(f"[{_context(ctx)}] mIoU {_fmt(_m(ref, 'miou'))} with GCN (γ={ref['arm']['gamma']}) vs "
                    f"{_fmt(_m(off, 'miou'))} without ({cmp['outcome']}): {single(cmp)}")
    sweep = []
    for _, off, ctx in pairs:
        points = [(0.0, off)] + [(a["arm"]["gamma"], a) for a in arms if a["family"] == "nas" and a["arm"].get("gcn")
                                 and all(a["arm"].get(key) == val for key, val in ctx.items())]
        if len(points) > 2:
            best = max(points, key=lambda p: (_m(p[1], "miou") or {}).get("mean") or -1)
            points.sort(key=lambda p: p[0] or 0.0)
            sweep.append({"context": _context(ctx), "gamma": [g for g, _ in points],
                          "miou": [_m(a, "miou") for _, a in points],
                          "best_gamma": best[0]})
            says.append(f"γ sweep [{_context(ctx)}]: best mean mIoU at γ={best[0]}")
    return _claim("gcn", "GCN-guided module on vs off; gamma swept",
                  "GAS/LGCNet: the GCN-guided module between cells improves the searched network",
                  "miou (higher) of the retrained networks; γ=0 is the module off", rows, verdicts, "; ".join(says),
                  used, extra={"gamma_sweep": sweep})


def claim_fusion(arms: list[dict], k: float) -> dict:
    rows, verdicts, used, says = [], [], [], []
    for on, off, ctx in _pairs(arms, "fusion"):
        if ctx.get("space") == "hyper":
            continue
        acc = compare(_m(on, "miou"), _m(off, "miou"), True, k)
        verdicts.append(single(acc))
        used += [on, off]
        rows += [_row(on, NAS_KEYS), _row(off, NAS_KEYS)]
        says.append(f"[{_context(ctx)}] mIoU {_fmt(_m(on, 'miou'))} with the fusion cell vs {_fmt(_m(off, 'miou'))} "
                    f"without ({acc['outcome']}), latency {_fmt(_m(on, 'latency_ms'), 2)} vs "
                    f"{_fmt(_m(off, 'latency_ms'), 2)} ms: {single(acc)}")
    return _claim("fusion", "LGCNet dense-connected fusion cell on vs off",
                  "LGCNet: the dense-connected fusion cell (long-range multi-level aggregation) improves accuracy",
                  "miou (higher); latency_ms reported", rows, verdicts, "; ".join(says), used)


def _lambda_groups(arms: list[dict], space: str) -> list[tuple[dict, list[dict]]]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for arm in arms:
        if arm["family"] == "nas" and arm["arm"].get("space") == space:
            ctx = {k: v for k, v in arm["arm"].items() if k != "latency_weight"}
            groups[tuple(sorted((k, repr(v)) for k, v in ctx.items()))].append(arm)
    out = [(dict((k, _literal(v)) for k, v in ctx), sorted(g, key=lambda a: a["arm"]["latency_weight"] or 0))
           for ctx, g in groups.items() if len(g) >= 2]
    return sorted(out, key=lambda item: -len(item[1]))


def dominated(point: tuple[float, float], others: list[tuple[float, float]]) -> bool:
    """(latency, miou) dominated: another point is no slower and no worse, and strictly better in one."""
    lat, acc = point
    return any(ol <= lat and oa >= acc and (ol < lat or oa > acc) for ol, oa in others)


def claim_lambda(arms: list[dict], k: float) -> dict:
    groups = _lambda_groups(arms, "cells")
    baselines = [a for a in arms if a["family"] == "baseline"]
    if not groups:
        return _claim("lambda_frontier", "Latency weight λ swept: accuracy-latency frontier vs baselines",
                      "GAS/LGCNet: the latency-oriented constraint trades accuracy for speed; the searched networks "
                      "reach a better trade-off than hand-designed ones", "latency_ms, miou", [], [], "", [],
                      extra={"frontier": []})
    ctx, sweep = groups[0]
    lo, hi = sweep[0], sweep[-1]
    lat = compare(_m(hi, "latency_ms") or _m(hi, "expected_latency_ms"), _m(lo, "latency_ms") or _m(lo, "expected_latency_ms"),
                  False, k)
    points = []
    for arm in sweep + baselines:
        la, mi = _m(arm, "latency_ms"), _m(arm, "miou")
        points.append({"name": arm["name"], "kind": "baseline" if arm["family"] == "baseline" else "searched",
                       "latency_weight": arm["arm"].get("latency_weight"), "latency_ms": la, "miou": mi})
    measured = [p for p in points if p["latency_ms"] and p["miou"] and p["latency_ms"]["mean"] is not None
                and p["miou"]["mean"] is not None]
    base_pts = [(p["latency_ms"]["mean"], p["miou"]["mean"]) for p in measured if p["kind"] == "baseline"]
    for p in measured:
        p["pareto"] = not dominated((p["latency_ms"]["mean"], p["miou"]["mean"]),
                                    [(q["latency_ms"]["mean"], q["miou"]["mean"]) for q in measured if q is not p])
    searched = [p for p in measured if p["kind"] == "searched"]
    undominated = [p for p in searched if not dominated((p["latency_ms"]["mean"], p["miou"]["mean"]), base_pts)]
    v_lat = single(lat)
    v_base = NOT_MEASURED if not (searched and base_pts) else HELD if undominated else NOT_HELD
    says = [f"[{_context(ctx)}] latency {_fmt(_m(hi, 'latency_ms'), 2)} ms at λ={hi['arm']['latency_weight']:g} vs "
            f"{_fmt(_m(lo, 'latency_ms'), 2)} ms at λ={lo['arm']['latency_weight']:g} ({'lower ' if lat['outcome'] == 'better' else ''}{lat['outcome']}): {v_lat}"]
    if v_base != NOT_MEASURED:
        says.append(f"{len(undominated)} of {len(searched)} searched arms not dominated by any of {len(base_pts)} "
                    f"baselines (arm means): {v_base}")
    rows = [_row(a, NAS_KEYS + ("params_m", "gflops")) for a in sweep] + [_row(b, ("miou", "latency_ms", "params_m", "gflops")) for b in baselines]
    claim = _claim("lambda_frontier", "Latency weight λ swept: accuracy-latency frontier vs baselines",
                  "GAS/LGCNet: the latency-oriented constraint trades accuracy for speed; the searched networks "
                  "reach a better trade-off than hand-designed ones", "latency_ms (lower with λ), miou; Pareto vs baselines",
                  rows, [v_lat, v_base], "; ".join(says), sweep,
                  extra={"frontier": points, "context": _context(ctx)})
    if baselines and not _same_budget(sweep + baselines, "retrain"):
        claim["notes"].append("baselines were retrained with another budget than the searched networks: no verdict")
        claim["verdict"] = INCONCLUSIVE
    return claim


def claim_autortnet(arms: list[dict], k: float) -> dict:
    groups = _lambda_groups(arms, "hyper")
    rows, verdicts, used, says, depth_rows = [], [], [], [], []
    if groups:
        ctx, sweep = groups[0]
        used += sweep
        for arm in sweep:
            rows.append(_row(arm, NAS_KEYS + ("depth", "mean_down_layer")))
            downs = Counter(tuple(a["downsampling"] or ()) for a in arm["architectures"])
            depth_rows.append({"latency_weight": arm["arm"]["latency_weight"], "depth": _m(arm, "depth"),
                               "mean_down_layer": _m(arm, "mean_down_layer"),
                               "expected_latency_ms": _m(arm, "expected_latency_ms"),
                               "downsampling": [{"layers": list(d), "seeds": c} for d, c in downs.most_common()]})
        lo, hi = sweep[0], sweep[-1]
        exp = compare(_m(hi, "expected_latency_ms"), _m(lo, "expected_latency_ms"), False, k)
        verdicts.append(single(exp))
        says.append(f"as λ goes {lo['arm']['latency_weight']:g} -> {hi['arm']['latency_weight']:g}: depth "
                    f"{_fmt(_m(lo, 'depth'), 2)} -> {_fmt(_m(hi, 'depth'), 2)}, mean downsampling layer "
                    f"{_fmt(_m(lo, 'mean_down_layer'), 2)} -> {_fmt(_m(hi, 'mean_down_layer'), 2)}, LUT latency "
                    f"{_fmt(_m(lo, 'expected_latency_ms'), 2)} -> {_fmt(_m(hi, 'expected_latency_ms'), 2)} ms "
                    f"({'lower ' if exp['outcome'] == 'better' else ''}{exp['outcome']}): {single(exp)}")
    fixed = [a for a in arms if a["family"] == "nas" and a["arm"].get("space") != "hyper" and not a["arm"].get("gcn")
             and not a["arm"].get("cell_sharing")]
    for hyper in [a for a in arms if a["family"] == "nas" and a["arm"].get("space") == "hyper"]:
        same = [f for f in fixed if f["arm"].get("latency_weight") == hyper["arm"].get("latency_weight")]
        same.sort(key=lambda f: not f["arm"].get("fusion"))  # the fixed chain with a fusion cell first
        if not same or "miou" not in hyper["metrics"]:
            continue
        fix = same[0]
        acc = compare(_m(hyper, "miou"), _m(fix, "miou"), True, k)
        lat = compare(_m(hyper, "latency_ms"), _m(fix, "latency_ms"), False, k)
        v = tradeoff(acc, lat)
        verdicts.append(v)
        used += [hyper, fix]
        rows += [_row(fix, NAS_KEYS + ("depth", "mean_down_layer"))]
        says.append(f"hyper-cells vs fixed at λ={hyper['arm']['latency_weight']:g}: mIoU {_fmt(_m(hyper, 'miou'))} vs "
                    f"{_fmt(_m(fix, 'miou'))} ({acc['outcome']}), latency {_fmt(_m(hyper, 'latency_ms'), 2)} vs "
                    f"{_fmt(_m(fix, 'latency_ms'), 2)} ms ({'lower ' if lat['outcome'] == 'better' else ''}"
                    f"{lat['outcome']}): {v}")
    return _claim("autortnet", "AutoRTNet: depth and downsampling vs λ; hyper-cells vs fixed",
                  "AutoRTNet: hyper-cells decide depth and downsampling (cheaper networks as λ grows) and beat a "
                  "fixed depth/downsampling at the same λ", "expected_latency_ms vs λ; miou and latency_ms vs fixed",
                  rows, verdicts, "; ".join(says), list({id(a): a for a in used}.values()),
                  extra={"depth_vs_lambda": depth_rows})


def claim_ovs(arms: list[dict], k: float, jf_tolerance: float = 0.05) -> dict:
    vos = {a["arm"]["attention"]: a for a in arms if a["family"] == "vos"}
    on, off = vos.get(True), vos.get(False)
    rows, verdicts, used, says = [], [], [], []
    if on is not None:
        used.append(on)
        fps = compare(_m(on, "onepass_fps"), _m(on, "offline_fps"), True, k)
        jf = compare(_m(on, "onepass_jf"), _m(on, "offline_jf"), True, k)
        for method in ("onepass", "offline", "copy"):
            if _m(on, f"{method}_jf") or _m(on, f"{method}_fps"):
                rows.append({"arm": f"{on['name']}: {method}", "n": on["n"], "jf": _m(on, f"{method}_jf"),
                             "fps": _m(on, f"{method}_fps")})
        if fps["outcome"] != "missing":
            ratio = fps["a"] / fps["b"] if fps["b"] else None
            comparable = None if jf["diff"] is None else jf["diff"] >= -jf_tolerance
            v_jf = NOT_MEASURED if comparable is None else HELD if comparable else NOT_HELD
            verdicts += [single(fps), v_jf]
            says.append(f"one-pass {_fmt(_m(on, 'onepass_fps'), 1)} fps vs offline {_fmt(_m(on, 'offline_fps'), 1)} fps "
                        f"({f'x{ratio:.1f}, ' if ratio else ''}{fps['outcome']}): {single(fps)}; J&F "
                        f"{_fmt(_m(on, 'onepass_jf'))} vs {_fmt(_m(on, 'offline_jf'))} (comparable = within "
                        f"{jf_tolerance:g}): {v_jf}")
    if on is not None and off is not None:
        used.append(off)
        att = compare(_m(on, "onepass_jf"), _m(off, "onepass_jf"), True, k)
        verdicts.append(single(att))
        rows.append({"arm": f"{off['name']}: onepass", "n": off["n"], "jf": _m(off, "onepass_jf"),
                     "fps": _m(off, "onepass_fps")})
        says.append(f"one-pass J&F {_fmt(_m(on, 'onepass_jf'))} with mask-guided attention vs "
                    f"{_fmt(_m(off, 'onepass_jf'))} without ({att['outcome']}): {single(att)}")
    return _claim("ovs", "OVS-Net: one-pass vs offline; mask-guided attention on vs off",
                  "OVS-Net: one-pass inference is much faster than the offline back-and-forth paradigm at comparable "
                  "J&F; the mask-guided attention module improves J&F", "fps (higher), jf (higher)",
                  rows, verdicts, "; ".join(says), used)


CLAIMS = (claim_cell_independent, claim_gcn, claim_fusion, claim_lambda, claim_autortnet, claim_ovs)


# -- summary, markdown, CLI -------------------------------------------------------------------------
def summarize(root: str | Path, json_out: str | Path | None = None, markdown_out: str | Path | None = None,
              k: float = 2.0, html_out: str | Path | None = None) -> dict:
    """Collect the runs under root, aggregate seeds per arm, judge every claim; write
    ablations.json and ablations.md (default: in root), the HTML report when html_out is given,
    and return the summary."""
    root = Path(root)
    rows, skipped = collect_runs(root)
    arms = group_arms(rows)
    claims = [fn(arms, k) for fn in CLAIMS]
    devices = sorted({repr(r["device"]) for r in rows if r.get("device")})
    summary = {"schema": SCHEMA, "version": VERSION, "root": str(root), "k": k,
               "devices": [_literal(d) for d in devices], "runs": len(rows), "unfinished": skipped,
               "arms": arms, "claims": claims}
    json_out = Path(json_out) if json_out else root / "ablations.json"
    markdown_out = Path(markdown_out) if markdown_out else root / "ablations.md"
    atomic_write_json(json_out, summary)
    atomic_write_text(markdown_out, to_markdown(summary))
    if html_out:
        write_report(summary, html_out)
    log.info("ablations: %d runs, %d arms -> %s, %s", len(rows), len(arms), json_out, markdown_out)
    return summary


def _cell(stats: Any, digits: int = 3) -> str:
    if isinstance(stats, dict) and "mean" in stats:
        if stats["mean"] is None:
            return "–"
        text = f"{stats['mean']:.{digits}f}"
        if stats.get("std") is not None:
            text += f" ± {stats['std']:.{digits}f} [{stats['min']:.{digits}f}, {stats['max']:.{digits}f}]"
        return text
    if stats is None:
        return "–"
    return str(stats)


COLUMNS = {"miou": ("mIoU", 3), "latency_ms": ("latency ms", 2), "expected_latency_ms": ("LUT ms", 2),
           "search_miou": ("search mIoU", 3), "depth": ("depth", 2), "mean_down_layer": ("mean down layer", 2),
           "params_m": ("params M", 3), "gflops": ("GFLOPs", 3), "jf": ("J&F", 3), "fps": ("fps", 1)}


def _preface(summary: dict) -> str:
    devices = ", ".join(f"{d.get('name')} ({d.get('device_type')}, {d.get('threads')} threads, torch {d.get('torch')})"
                        if isinstance(d, dict) else str(d) for d in summary["devices"]) or "not recorded"
    return (f"{summary['runs']} runs in {len(summary['arms'])} arms under {summary['root']}; a difference counts "
            f"beyond {summary['k']:g} standard errors. Latency measured on: {devices}.")


def to_markdown(summary: dict) -> str:
    """The claims table (verdict and numbers) and one table per claim: mean ± std [min, max] over seeds."""
    lines = [_preface(summary), "", "| claim | verdict | numbers |", "|---|---|---|"]
    for c in summary["claims"]:
        lines.append(f"| {c['title']} | **{c['verdict']}** | {c['statement'] or 'not yet measured'} |")
    for c in summary["claims"]:
        lines += ["", f"### {c['title']}", "", f"Claim: {c['claim']}. Verdict: **{c['verdict']}**.", ""]
        if c["notes"]:
            lines += [f"Note: {'; '.join(c['notes'])}.", ""]
        if not c["rows"]:
            lines.append("not yet measured")
            continue
        keys = [k for k in COLUMNS if any(k in r for r in c["rows"])]
        lines.append("| arm | seeds | " + " | ".join(COLUMNS[k][0] for k in keys) + " |")
        lines.append("|---|---:|" + "---:|" * len(keys))
        for r in c["rows"]:
            lines.append(f"| {r['arm']} | {r['n']} | " + " | ".join(_cell(r.get(k), COLUMNS[k][1]) for k in keys) + " |")
    if summary.get("unfinished"):
        lines += ["", f"{len(summary['unfinished'])} unfinished or failed runs were left out."]
    return "\n".join(lines) + "\n"


# -- the offline HTML report ----------------------------------------------------------------------------
def write_report(summary: dict, out: str | Path) -> Path:
    """Self-contained offline HTML (plotly.js inlined once): verdicts, per-claim tables and figures."""
    from widgets.ablations import figures
    from workbench.report import Report

    rep = Report(f"Ablations: {Path(summary['root']).name}")
    rep.text(_preface(summary))
    rep.table([{"claim": c["title"], "verdict": c["verdict"], "numbers": c["statement"] or "not yet measured"}
               for c in summary["claims"]])
    figs = figures(summary)
    for c in summary["claims"]:
        rep.heading(c["title"])
        rep.text(f"Claim: {c['claim']}. Verdict: {c['verdict']}." + (f" Note: {'; '.join(c['notes'])}." if c["notes"] else ""))
        keys = [k for k in COLUMNS if any(k in r for r in c["rows"])]
        rep.table([{"arm": r["arm"], "seeds": r["n"], **{COLUMNS[k][0]: _cell(r.get(k), COLUMNS[k][1]) for k in keys}}
                   for r in c["rows"]])
        for title, fig in figs:
            if title == c["title"]:
                rep.figure(fig)
    out = Path(out)
    atomic_write_text(out, rep.html())
    return out


# -- running the study ----------------------------------------------------------------------------------
STUDY_KEYS = {"output_root", "budget", "data", "sweeps", "estimate"}


def load_study(path: str | Path) -> dict:
    """Read and check a study file: output_root, data (generated when missing), sweeps (batch sweeps, each with an `id`)."""
    import yaml

    path = Path(path)
    try:
        study = load_yaml(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read study ({exc.__class__.__name__})") from None
    unknown = sorted(set(study) - STUDY_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown key {', '.join(unknown)} (known: {', '.join(sorted(STUDY_KEYS))})")
    sweeps = study.get("sweeps") or []
    if not sweeps or not all(isinstance(s, dict) and s.get("id") for s in sweeps):
        raise ConfigError(f"{path}: sweeps must be a list of batch sweeps, each with an `id`")
    ids = [s["id"] for s in sweeps]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{path}: sweep ids must be unique, got {ids}")
    return study


def run_study(path: str | Path, only: list[str] | None = None, dry_run: bool = False, k: float = 2.0) -> dict:
    """Generate the study's data when missing, run every sweep through `workbench batch` (finished runs
    are skipped, failures do not stop the rest), then one frontier and the summary over output_root."""
    import yaml

    from workbench import steps
    from workbench.frontier import run_frontier
    from workbench.notebooks import run_batch

    study = load_study(path)
    root = Path(study.get("output_root", "runs/ablations")).resolve()
    if only:
        bad = sorted(set(only) - {s["id"] for s in study["sweeps"]})
        if bad:
            raise ConfigError(f"--only: unknown sweep {', '.join(bad)} (known: {', '.join(s['id'] for s in study['sweeps'])})")
    for data in study.get("data") or []:
        spec = dict(data)
        kind, out = spec.pop("kind"), spec.pop("out")
        if not Path(out, "synth.json").exists() and not dry_run:
            log.info("generating %s data in %s", kind, out)
            steps.synth_data(kind, out, **{k2: tuple(v) if k2 == "size" else v for k2, v in spec.items()})
    results = {}
    with tempfile.TemporaryDirectory(prefix="ablations-") as tmp:
        for sweep in study["sweeps"]:
            if only and sweep["id"] not in only:
                continue
            body = {key: v for key, v in sweep.items() if key != "id"}
            body["output_root"] = str(root / sweep["id"])
            body["frontier"] = False
            sweep_file = Path(tmp, f"{sweep['id']}.yaml")
            sweep_file.write_text(yaml.safe_dump(body, sort_keys=False))
            print(f"== sweep {sweep['id']} -> {body['output_root']}")
            results[sweep["id"]] = run_batch(sweep_file, dry_run=dry_run)
    if dry_run:
        return {"sweeps": results}
    run_frontier({"roots": [str(root)]}, root / "frontier")
    summary = summarize(root, k=k, html_out=root / "ablations.html")
    print(f"ablations: {root / 'ablations.md'}, {root / 'ablations.html'}")
    return {"sweeps": results, "summary": summary}


def _cmd_summarize(args: argparse.Namespace) -> int:
    summary = summarize(args.root, args.json, args.markdown, k=args.k,
                        html_out=None if args.no_html else args.html or Path(args.root) / "ablations.html")
    for c in summary["claims"]:
        print(f"{c['verdict']:>13}  {c['title']}")
    print(f"{summary['runs']} runs in {len(summary['arms'])} arms; "
          f"{args.markdown or Path(args.root) / 'ablations.md'}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    result = run_study(args.study, only=args.only, dry_run=args.dry_run, k=args.k)
    return 1 if any(r.get("failed") for r in result["sweeps"].values()) else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ablations", help="ablation study of the papers' claims: run the sweeps, summarize")
    p_sub = p.add_subparsers(dest="ablations_command", metavar="ACTION")
    s = p_sub.add_parser("summarize", help="aggregate seeds per arm and judge every claim (ablations.json/.md)")
    s.add_argument("root", help="folder of the study's run directories (e.g. runs/ablations)")
    s.add_argument("--json", help="summary JSON (default: ROOT/ablations.json)")
    s.add_argument("--markdown", help="markdown tables (default: ROOT/ablations.md)")
    s.add_argument("--html", help="offline HTML report (default: ROOT/ablations.html)")
    s.add_argument("--no-html", action="store_true", help="skip the HTML report")
    s.add_argument("--k", type=float, default=2.0, help="a difference counts beyond k standard errors (default 2)")
    s.set_defaults(func=_cmd_summarize)
    r = p_sub.add_parser("run", help="run a study file (benchmarks/ablations.yaml): data, sweeps, summary")
    r.add_argument("study", help="study YAML (output_root, data, sweeps)")
    r.add_argument("--only", nargs="+", metavar="ID", help="run only these sweeps")
    r.add_argument("--dry-run", action="store_true", help="list the notebook runs without running them")
    r.add_argument("--k", type=float, default=2.0, help="noise threshold in standard errors (default 2)")
    r.set_defaults(func=_cmd_run)
    p.set_defaults(func=lambda a: p.print_help() or 1)
