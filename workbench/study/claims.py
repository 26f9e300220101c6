"""The seed papers' claims, each judged from the arms of a study, and the study summary.

Verdicts: "held", "did not hold", "mixed" (held in one context, not in another), "inconclusive"
(within noise, too few seeds, or arms trained with different budgets), "not measured".
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from workbench.jsonio import atomic_write_json
from workbench.study.collect import arm_name, collect_runs, group_arms
from workbench.study.stats import (
    ACCURACY_MARGIN,
    HELD,
    INCONCLUSIVE,
    LATENCY_MARGIN,
    NOT_HELD,
    NOT_MEASURED,
    combine,
    compare,
    latency_margin,
    single,
    tradeoff,
)

log = logging.getLogger(__name__)

SCHEMA, VERSION = "workbench.ablations", 1


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
        acc = compare(_m(indep, "miou"), _m(shared, "miou"), True, k, ACCURACY_MARGIN)
        lat = compare(_m(indep, "latency_ms"), _m(shared, "latency_ms"), False, k,
                      latency_margin(_m(shared, "latency_ms")))
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
        cmp = compare(_m(ref, "miou"), _m(off, "miou"), True, k, ACCURACY_MARGIN)
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
        acc = compare(_m(on, "miou"), _m(off, "miou"), True, k, ACCURACY_MARGIN)
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


def equal_latency(arms: list[dict], k: float) -> dict:
    """The workbench's headline question: is a searched network more accurate than a hand-designed
    one at the same speed? For every arm on the hand-designed Pareto front (arm means of measured
    latency and mIoU), the most accurate searched arm with equal or lower mean measured latency is
    compared with it in mIoU against the noise (k standard errors over seeds). Held when it wins at
    two or more levels of the hand-designed frontier; did not hold when it wins at none and loses
    at least once."""
    def measured(a: dict) -> bool:
        return all((_m(a, key) or {}).get("mean") is not None for key in ("miou", "latency_ms"))

    base = [a for a in arms if a["family"] == "baseline" and measured(a)]
    searched = [a for a in arms if a["family"] == "nas" and measured(a)]
    mean = {id(a): (_m(a, "latency_ms")["mean"], _m(a, "miou")["mean"]) for a in base + searched}
    front = sorted((b for b in base if not dominated(mean[id(b)], [mean[id(o)] for o in base if o is not b])),
                   key=lambda b: mean[id(b)][0])
    rows, verdicts, says = [], [], []
    for b in front:
        faster = [s for s in searched if mean[id(s)][0] <= mean[id(b)][0]]
        best = max(faster, key=lambda s: mean[id(s)][1]) if faster else None
        cmp = compare(_m(best, "miou") if best else None, _m(b, "miou"), True, k, ACCURACY_MARGIN)
        verdicts.append(single(cmp))
        rows.append({"baseline": b["name"], "baseline_latency_ms": _m(b, "latency_ms"), "baseline_miou": _m(b, "miou"),
                     "searched": best["name"] if best else None,
                     "searched_latency_ms": _m(best, "latency_ms") if best else None,
                     "searched_miou": _m(best, "miou") if best else None, "diff": cmp["diff"], "se": cmp["se"],
                     "outcome": cmp["outcome"] if best else "no searched network this fast"})
        says.append(f"{b['name']} ({mean[id(b)][0]:.2f} ms, mIoU {_fmt(_m(b, 'miou'))}): "
                    + (f"{best['name']} ({mean[id(best)][0]:.2f} ms) {_fmt(_m(best, 'miou'))}, {cmp['outcome']}"
                       if best else "no searched network this fast"))
    wins = sum(v == HELD for v in verdicts)
    if not front or not searched:
        verdict = NOT_MEASURED
    elif wins >= 2:
        verdict = HELD
    elif wins == 0 and NOT_HELD in verdicts:
        verdict = NOT_HELD
    else:
        verdict = INCONCLUSIVE
    return _claim("equal_latency", "Searched vs hand-designed networks at equal latency",
                  "NAS finds networks more accurate than hand-designed ones at the same measured latency "
                  "(at 2 or more levels of the hand-designed frontier, by more than k standard errors)",
                  "miou of the best searched arm no slower than each hand-designed frontier arm", rows,
                  [verdict], "; ".join(says), base + searched, budget_part="retrain",
                  extra={"wins": wins, "levels": len(front)})


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
    targeted = ("target_latency_ms", "target_fraction")  # λ moved during those searches: no fixed-λ pair
    for hyper in [a for a in arms if a["family"] == "nas" and a["arm"].get("space") == "hyper"
                  and not any(a["arm"].get(key) is not None for key in targeted)]:
        same = [f for f in fixed if f["arm"].get("latency_weight") == hyper["arm"].get("latency_weight")]
        # like with like: hyper-cells with their aggregation cell against the fixed chain with its fusion
        # cell, without it against the chain without one (else the head's gain reads as the hyper-cells')
        aggregates = hyper["arm"].get("aggregation") is not False  # AutoRTNet's default: on
        same.sort(key=lambda f: bool(f["arm"].get("fusion")) != aggregates)
        if not same or "miou" not in hyper["metrics"]:
            continue
        fix = same[0]
        # no fixed arm with the same head at this λ: compared anyway, and the sentence says so
        heads = ("" if bool(fix["arm"].get("fusion")) == aggregates else
                 f" (heads differ: the fixed chain {'has' if fix['arm'].get('fusion') else 'lacks'} a fusion cell, "
                 f"the hyper-cells {'have' if aggregates else 'lack'} an aggregation cell)")
        acc = compare(_m(hyper, "miou"), _m(fix, "miou"), True, k, ACCURACY_MARGIN)
        lat = compare(_m(hyper, "latency_ms"), _m(fix, "latency_ms"), False, k, latency_margin(_m(fix, "latency_ms")))
        v = tradeoff(acc, lat)
        verdicts.append(v)
        used += [hyper, fix]
        rows += [_row(fix, NAS_KEYS + ("depth", "mean_down_layer"))]
        says.append(f"hyper-cells vs fixed at λ={hyper['arm']['latency_weight']:g}: mIoU {_fmt(_m(hyper, 'miou'))} vs "
                    f"{_fmt(_m(fix, 'miou'))} ({acc['outcome']}), latency {_fmt(_m(hyper, 'latency_ms'), 2)} vs "
                    f"{_fmt(_m(fix, 'latency_ms'), 2)} ms ({'lower ' if lat['outcome'] == 'better' else ''}"
                    f"{lat['outcome']}): {v}{heads}")
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
        att = compare(_m(on, "onepass_jf"), _m(off, "onepass_jf"), True, k, ACCURACY_MARGIN)
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


def summarize(root: str | Path, json_out: str | Path | None = None, k: float = 2.0) -> dict:
    """Collect the runs under root, aggregate seeds per arm, judge every claim; write the summary
    to json_out (default ROOT/ablations.json) and return it."""
    root = Path(root)
    rows, skipped = collect_runs(root)
    arms = group_arms(rows)
    claims = [fn(arms, k) for fn in CLAIMS]
    headline = equal_latency(arms, k)
    devices = sorted({repr(r["device"]) for r in rows if r.get("device")})
    summary = {"schema": SCHEMA, "version": VERSION, "root": str(root), "k": k, "accuracy_margin": ACCURACY_MARGIN,
               "latency_margin": LATENCY_MARGIN,
               "devices": [_literal(d) for d in devices], "runs": len(rows), "unfinished": skipped,
               "arms": arms, "equal_latency": headline, "claims": claims}
    json_out = Path(json_out) if json_out else root / "ablations.json"
    atomic_write_json(json_out, summary)
    log.info("ablations: %d runs, %d arms -> %s", len(rows), len(arms), json_out)
    return summary
