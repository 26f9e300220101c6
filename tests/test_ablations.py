"""Ablation summaries: seeds -> mean/spread per arm and claim verdicts, checked by hand on fake runs.

The fake run directories are written through `RunDir` in the contract's record formats (a search
run with config.json + genotype.json, the retrain of its genotype, the benchmark of that retrain,
baselines, VOS segment runs pointing at their training run), with known numbers, so every mean,
standard deviation and verdict below can be computed by hand. One test runs the real tiny steps
and summarizes what they wrote; another plans the committed study files against the notebooks.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import pytest

from workbench.errors import ConfigError
from workbench.jsonio import atomic_write_json
from workbench.lab import study as lab_study
from workbench.runs import RunDir
from workbench.study import stats

REPO = Path(__file__).resolve().parent.parent
SEARCH_BUDGET = {"dataset": "cityscapes", "data_root": "d", "epochs": 6, "warmup_epochs": 1, "steps_per_epoch": 8,
                 "batch_size": 4, "crop_size": [64, 128], "input_size": [128, 256], "num_cells": 6, "channels": 16,
                 "nodes": 3}
RETRAIN_BUDGET = {"dataset": "cityscapes", "data_root": "d", "epochs": 4, "crop_size": [64, 128], "batch_size": 4,
                  "lr": 0.01, "eval_size": [128, 256]}


def chain_genotype(expected_ms: float, hyper: tuple[int, list[int]] | None = None) -> dict:
    """A valid genotype.json: six cells, reductions at 0, 2, 4 (space cells); or, given (depth,
    downsampling layers), an AutoRTNet path over six layers and the cells it keeps (space hyper)."""
    if hyper is None:
        kinds, path = ["reduction" if i in (0, 2, 4) else "normal" for i in range(6)], None
    else:
        depth, downs = hyper
        keep = depth - len(downs)
        path, kinds = [], []
        for layer in range(6):
            choice = "down" if layer in downs else "keep" if keep > 0 else "prune"
            keep -= choice == "keep"
            path.append({"layer": layer, "choice": choice})
            if choice != "prune":
                kinds.append("reduction" if choice == "down" else "normal")
    cells, stride = [], 4
    for i, kind in enumerate(kinds):
        stride *= 2 if kind == "reduction" else 1
        cells.append({"index": i, "kind": kind, "stride": stride, "channels": 8, "nodes": 1,
                      "edges": [{"from": 0, "to": 2, "op": "skip_connect"}, {"from": 1, "to": 2, "op": "skip_connect"}],
                      "concat": [2]})
    body = {"ops": ["none", "skip_connect"], "cells": cells}
    if path is not None:
        stride = 4
        for step in path:
            stride *= 2 if step["choice"] == "down" else 1
            step["stride"] = stride
        body["trellis"] = {"scales": [4, 8, 16, 32], "path": path}
    return {"schema": "workbench.genotype", "version": 2, "space": "hyper" if path else "cells", "space_version": 1,
            "preset": "gas", "num_classes": 19, "input_size": [64, 128], "stem": {"channels": 8},
            "head": {"channels": 8}, "body": body, "expected_latency_ms": expected_ms}


def nas_arm(root: Path, name: str, seeds_miou: list[float], seeds_latency: list[float], *, space="cells",
            cell_sharing=False, gcn=True, gamma=0.5, fusion=False, latency_weight=0.1, expected=None, depths=None,
            downs=None, search_budget=None, aggregation=None) -> None:
    """One arm: per seed a search run, the retrain of its genotype and the benchmark of that retrain."""
    for seed, (miou, lat) in enumerate(zip(seeds_miou, seeds_latency)):
        point = root / f"{name}-s{seed}"
        search = RunDir(point / "search")
        cfg = {"preset": "gas", "space": space, "cell_sharing": cell_sharing, "gcn": gcn, "gamma": gamma,
               "fusion": fusion, "latency_weight": latency_weight, "target_latency_ms": None,
               "relaxation": "softmax", "seed": seed, **(search_budget or SEARCH_BUDGET)}
        if aggregation is not None:
            cfg["aggregation"] = aggregation
        search.write_config(cfg)
        genotype = chain_genotype(expected[seed] if expected else lat,
                                  None if depths is None else (depths[seed], downs[seed]))
        atomic_write_json(search.genotype_path, genotype)
        search.start("search", preset="gas", seed=seed, latency_weight=latency_weight)
        search.update(metrics={"miou": miou / 2, "expected_latency_ms": genotype["expected_latency_ms"]})
        search.finish()
        retrain = RunDir(point / "retrain")
        retrain.write_config({"genotype": str(search.genotype_path), "seed": seed, **RETRAIN_BUDGET})
        retrain.start("retrain", genotype_source=str(search.genotype_path), seed=seed)
        atomic_write_json(retrain.genotype_path, genotype)  # as a retrain keeps its genotype
        retrain.update(metrics={"miou": miou, "pixel_acc": 0.9}, artifacts={"genotype": "genotype.json"})
        retrain.finish()
        bench = RunDir(point / "retrain" / "benchmark")
        bench.write_config({"run": str(retrain.path), "size": [128, 256]})
        bench.start("benchmark", device={"name": "test-cpu"})
        bench.update(metrics={"latency_ms": lat, "fps": 1000 / lat})
        bench.finish()


def baseline_arm(root: Path, name: str, mious: list[float], lats: list[float], budget=None) -> None:
    for seed, (miou, lat) in enumerate(zip(mious, lats)):
        run = RunDir(root / f"{name}-s{seed}" / "retrain")
        run.write_config({"baseline": name, "seed": seed, **(budget or RETRAIN_BUDGET)})
        run.start("baseline", baseline=name, seed=seed)
        run.update(metrics={"miou": miou})
        run.finish()
        bench = RunDir(run.path / "benchmark")
        bench.write_config({"run": str(run.path)})
        bench.start("benchmark")
        bench.update(metrics={"latency_ms": lat})
        bench.finish()


def vos_arm(root: Path, attention: bool, results: dict[str, dict[str, list[float]]]) -> None:
    n = len(next(iter(results.values()))["jf"])
    for seed in range(n):
        point = root / f"vos-att{attention}-s{seed}"
        train = RunDir(point / "video" / "train")
        train.write_config({"attention": attention, "seed": seed, "data_root": "v", "split": "train", "epochs": 2,
                            "iters_per_epoch": 10, "batch_size": 2, "crop": [64, 112]})
        train.start("vos_train", attention=attention, seed=seed)
        train.finish()
        seg = RunDir(point / "video")
        seg.write_config({"model": str(train.path), "method": "all"})
        seg.start("vos_segment", methods_results={m: {"jf": r["jf"][seed], "fps": r["fps"][seed]}
                                                  for m, r in results.items()})
        seg.finish()


@pytest.fixture
def study(tmp_path) -> Path:
    """A complete fake study with numbers chosen so that each verdict can be checked by hand."""
    r = tmp_path / "abl"
    lat = [10.0, 11.0, 12.0]
    nas_arm(r, "gas", [0.50, 0.52, 0.54], lat)                                       # indep, GCN γ=0.5, λ=0.1
    nas_arm(r, "gas-nogcn", [0.40, 0.42, 0.44], lat, gcn=False)                      # GCN off
    nas_arm(r, "gas-shared", [0.30, 0.31, 0.32], lat, gcn=False, cell_sharing=True)  # DARTS-style sharing
    nas_arm(r, "gas-g1", [0.45, 0.46, 0.47], lat, gamma=1.0)                         # γ sweep
    nas_arm(r, "lgc", [0.51, 0.52, 0.53], [12.0, 13.0, 14.0], fusion=True)           # fusion on
    nas_arm(r, "gas-l0", [0.55, 0.56, 0.57], [20.0, 21.0, 22.0], latency_weight=0.0)
    nas_arm(r, "gas-l1", [0.40, 0.41, 0.42], [5.0, 6.0, 7.0], latency_weight=1.0)
    hyper = dict(space="hyper", gcn=False, fusion=False)
    nas_arm(r, "art-l0", [0.5, 0.5, 0.5], [9, 9, 9], latency_weight=0.0, expected=[30.0, 31.0, 32.0],
            depths=[6, 6, 5], downs=[[0, 2, 4]] * 3, **hyper)
    nas_arm(r, "art-l1", [0.35, 0.36, 0.37], lat, latency_weight=0.1, expected=[20.0, 20.0, 20.0],
            depths=[5, 5, 5], downs=[[0, 1, 3]] * 3, **hyper)
    nas_arm(r, "art-l2", [0.3, 0.3, 0.3], [7, 7, 7], latency_weight=1.0, expected=[10.0, 11.0, 12.0],
            depths=[3, 4, 3], downs=[[0, 1, 2]] * 3, **hyper)
    baseline_arm(r, "fpn_mobilenet_v2", [0.30, 0.31, 0.32], [15.0, 16.0, 17.0])
    vos_arm(r, True, {"onepass": {"jf": [0.60, 0.62, 0.64], "fps": [10.0, 11.0, 12.0]},
                      "offline": {"jf": [0.63, 0.65, 0.67], "fps": [2.0, 2.5, 3.0]},
                      "copy": {"jf": [0.3, 0.3, 0.3], "fps": [900.0, 1000.0, 1100.0]}})
    vos_arm(r, False, {"onepass": {"jf": [0.50, 0.52, 0.54], "fps": [10.0, 11.0, 12.0]}})
    return r


def test_describe_by_hand():
    s = stats.describe([0.50, 0.52, 0.54, None])
    assert s["n"] == 3 and s["mean"] == pytest.approx(0.52) and s["std"] == pytest.approx(0.02)
    assert (s["min"], s["max"]) == (0.50, 0.54)
    one = stats.describe([3.0])
    assert one["mean"] == 3.0 and one["std"] is None and one["n"] == 1
    assert stats.describe([])["mean"] is None


def test_compare_against_noise():
    a, b = stats.describe([0.50, 0.52, 0.54]), stats.describe([0.40, 0.42, 0.44])
    c = stats.compare(a, b, higher_is_better=True, k=2.0)
    assert c["diff"] == pytest.approx(0.10) and c["se"] == pytest.approx(math.sqrt(2 * 0.02 ** 2 / 3))
    assert c["outcome"] == "better"
    assert stats.compare(a, b, higher_is_better=False)["outcome"] == "worse"
    # 0.10 apart but k=10 standard errors (10 * 0.0163 = 0.163) asked for: within noise
    assert stats.compare(a, b, k=10.0)["outcome"] == "within noise"
    assert stats.compare(stats.describe([1.0]), b)["outcome"] == "too few seeds"
    assert stats.compare(None, b)["outcome"] == "missing"
    assert stats.combine(["held", "held"]) == "held"
    assert stats.combine(["held", "did not hold"]) == "mixed"
    assert stats.combine(["inconclusive", "did not hold"]) == "did not hold"
    assert stats.combine(["held", "inconclusive"]) == "inconclusive"
    assert stats.combine([]) == "not measured"


def test_equivalence_margin_calls_a_claim_with_no_effect():
    """diff 0.002, se sqrt(2 x 0.002^2 / 3) = 0.00163: the 2-SE interval [-0.0013, 0.0053] lies inside
    ±0.02, so 'better' is ruled out (did not hold); with a margin of 0.004 it is not, and without a
    margin a null effect stays within noise."""
    a, b = stats.describe([0.300, 0.302, 0.304]), stats.describe([0.298, 0.300, 0.302])
    c = stats.compare(a, b, True, 2.0, margin=0.02)
    assert c["outcome"] == "equivalent" and c["margin"] == 0.02 and stats.single(c) == "did not hold"
    assert stats.compare(a, b, True, 2.0, margin=0.004)["outcome"] == "within noise"
    assert stats.compare(a, b, True, 2.0)["outcome"] == "within noise"
    wide = stats.describe([0.25, 0.30, 0.35])  # se 0.03: a gain of 0.02 cannot be ruled out
    assert stats.compare(wide, b, True, 2.0, margin=0.02)["outcome"] == "within noise"
    lat_same = stats.compare(stats.describe([5.0, 5.1, 5.2]), stats.describe([5.0, 5.1, 5.2]), False, 2.0)
    lat_better = stats.compare(stats.describe([4.0, 4.1, 4.2]), stats.describe([5.0, 5.1, 5.2]), False, 2.0)
    assert stats.tradeoff(c, lat_better) == "held"  # as accurate and faster
    assert stats.tradeoff(c, lat_same) == "inconclusive"  # latency within noise, not ruled equal
    assert stats.tradeoff(c, {"outcome": "missing"}) == "did not hold"
    # the latency margin is 10 % of the reference's mean: 0.51 ms around 5.1 ms. Equal latencies with
    # se 0.082 -> |0| + 2 x 0.082 < 0.51: equivalent, so no gain on either axis -> did not hold
    ref = stats.describe([5.0, 5.1, 5.2])
    assert stats.latency_margin(ref) == pytest.approx(0.51) and stats.latency_margin(None) is None
    lat_equal = stats.compare(stats.describe([5.0, 5.1, 5.2]), ref, False, 2.0, stats.latency_margin(ref))
    assert lat_equal["outcome"] == "equivalent" and stats.tradeoff(c, lat_equal) == "did not hold"
    # 0.4 ms faster (8 %) but se 0.33: the interval [-0.25, 1.05] leaves the ±0.51 margin -> within noise
    lat_wide = stats.compare(stats.describe([4.3, 4.7, 5.1]), stats.describe([4.7, 5.1, 5.5]), False, 2.0,
                             stats.latency_margin(ref))
    assert lat_wide["outcome"] == "within noise" and stats.tradeoff(c, lat_wide) == "inconclusive"
    acc_noise = stats.compare(wide, b, True, 2.0, margin=0.02)
    assert stats.tradeoff(acc_noise, lat_equal) == "inconclusive"  # a gain in accuracy is not ruled out


def test_summarize_fake_study(study):
    summary = lab_study.summarize_study(study)
    assert (study / "ablations.json").is_file() and (study / "ablations.md").is_file()
    assert json.loads((study / "ablations.json").read_text())["schema"] == "workbench.ablations"
    assert summary["latency_margin"] == 0.10 and "±10 % of the reference" in (study / "ablations.md").read_text()
    arms = {a["name"]: a for a in summary["arms"]}
    assert len(arms) == 13 and summary["runs"] == 39
    gas = arms["fixed, indep, gcn γ=0.5, λ=0.1"]
    assert gas["n"] == 3 and gas["seeds"] == [0, 1, 2] and gas["presets"] == ["gas"]
    assert gas["metrics"]["miou"]["mean"] == pytest.approx(0.52)
    assert gas["metrics"]["miou"]["std"] == pytest.approx(0.02)
    assert gas["metrics"]["latency_ms"]["mean"] == pytest.approx(11.0)     # joined from the benchmark run
    assert gas["metrics"]["search_miou"]["mean"] == pytest.approx(0.26)    # from the search run
    assert gas["metrics"]["depth"]["mean"] == 6 and gas["architectures"][0]["downsampling"] == [0, 2, 4]
    claims = {c["id"]: c for c in summary["claims"]}

    # independent (0.42 ± 0.02) vs shared (0.31 ± 0.01): +0.11 > 2 se = 0.026; same latency -> held
    c = claims["cell_independent"]
    assert c["verdict"] == "held" and "0.420 ± 0.020" in c["statement"] and "0.310 ± 0.010" in c["statement"]
    # GCN γ=0.5 (0.52) vs off (0.42): +0.10 > 2 se = 0.033 -> held; γ sweep 0, 0.5, 1.0 peaks at 0.5
    c = claims["gcn"]
    assert c["verdict"] == "held"
    (sweep,) = c["gamma_sweep"]
    assert sweep["gamma"] == [0.0, 0.5, 1.0] and sweep["best_gamma"] == 0.5
    assert [m["mean"] for m in sweep["miou"]] == pytest.approx([0.42, 0.52, 0.46])
    # fusion 0.52 ± 0.01 vs 0.52 ± 0.02: difference 0 -> within noise -> inconclusive
    assert claims["fusion"]["verdict"] == "inconclusive"
    # λ 0 -> 1: latency 21 -> 6 ms (held); searched (11 ms, 0.52) not dominated by fpn (16 ms, 0.31)
    c = claims["lambda_frontier"]
    assert c["verdict"] == "held"
    names = {p["name"]: p for p in c["frontier"]}
    assert names["baseline fpn_mobilenet_v2"]["pareto"] is False
    assert names["fixed, indep, gcn γ=0.5, λ=0"]["pareto"] is True
    assert all({"params_m", "gflops"} <= set(row) for row in c["rows"])  # searched arms beside the baselines
    # AutoRTNet: LUT latency 31 -> 11 ms as λ grows (held), depth 5.67 -> 3.33; vs the fixed chain at λ=0.1:
    # mIoU 0.36 vs 0.42 (worse), latency 11 vs 11 (within noise) -> did not hold; together: mixed
    c = claims["autortnet"]
    assert c["verdict"] == "mixed"
    depth = {row["latency_weight"]: row for row in c["depth_vs_lambda"]}
    assert depth[0.0]["depth"]["mean"] == pytest.approx(17 / 3) and depth[1.0]["depth"]["mean"] == pytest.approx(10 / 3)
    assert depth[1.0]["downsampling"] == [{"layers": [0, 1, 2], "seeds": 3}]
    assert depth[0.1]["mean_down_layer"]["mean"] == pytest.approx(4 / 3)
    # OVS: 11 vs 2.5 fps (held), J&F 0.62 vs 0.65 within the 0.05 tolerance (held), attention +0.10 (held)
    c = claims["ovs"]
    assert c["verdict"] == "held" and "x4.4" in c["statement"]
    md = (study / "ablations.md").read_text()
    assert "| Cell-independent vs cell-sharing search space | **held** |" in md
    assert "0.520 ± 0.020 [0.500, 0.540]" in md


def test_hyper_cells_meet_the_fixed_chain_with_the_same_head(tmp_path):
    """Hyper-cells with their aggregation cell are compared with the fixed chain with its fusion cell,
    without it with the chain without one: else a head's gain would be read as the hyper-cells'."""
    r = tmp_path / "abl"
    lat = [10.0, 11.0, 12.0]
    nas_arm(r, "chain-fusion", [0.50, 0.51, 0.52], lat, gcn=False, fusion=True)
    nas_arm(r, "chain", [0.40, 0.41, 0.42], lat, gcn=False)
    hyper = dict(space="hyper", gcn=False, depths=[4, 4, 4], downs=[[3, 4, 5]] * 3)
    nas_arm(r, "art-agg", [0.45, 0.46, 0.47], lat, aggregation=True, **hyper)
    nas_arm(r, "art-noagg", [0.40, 0.41, 0.42], [7.0, 8.0, 9.0], aggregation=False, **hyper)
    summary = lab_study.summarize_study(r)
    names = {a["name"] for a in summary["arms"]}
    assert {"hyper-cells, indep, aggregation, λ=0.1", "hyper-cells, indep, no aggregation, λ=0.1"} <= names
    c = {c["id"]: c for c in summary["claims"]}["autortnet"]
    # aggregation: 0.46 vs the fusion chain's 0.51 (worse); no aggregation: 0.41 vs the plain chain's 0.41
    # (equivalent) at 8 vs 11 ms (lower beyond 2 SE and the 10 % margin)
    said = c["statement"].split("; ")
    assert len(said) == 2 and all(s.startswith("hyper-cells vs fixed at λ=0.1") for s in said)
    assert "0.460 ± 0.010 (n=3) vs 0.510" in c["statement"] and "0.410 ± 0.010 (n=3) vs 0.410" in c["statement"]
    assert c["verdict"] == "mixed"  # did not hold with the heads (worse), held without (as accurate, faster)


def test_hyper_cells_against_a_chain_with_another_head_say_so(tmp_path):
    """Without a fixed chain of the same head at that λ, the comparison still runs, and its sentence
    names the difference (else a head's gain reads as the hyper-cells')."""
    r = tmp_path / "abl"
    nas_arm(r, "chain-fusion", [0.50, 0.51, 0.52], [10.0, 11.0, 12.0], gcn=False, fusion=True)
    nas_arm(r, "art-noagg", [0.40, 0.41, 0.42], [7.0, 8.0, 9.0], aggregation=False, space="hyper", gcn=False,
            depths=[4, 4, 4], downs=[[3, 4, 5]] * 3)
    c = {c["id"]: c for c in lab_study.summarize_study(r)["claims"]}["autortnet"]
    assert "vs 0.510" in c["statement"]
    assert ("(heads differ: the fixed chain has a fusion cell, the hyper-cells lack an aggregation cell)"
            in c["statement"])
    r2 = tmp_path / "abl2"  # with the matching chain present, no such note
    nas_arm(r2, "chain", [0.40, 0.41, 0.42], [10.0, 11.0, 12.0], gcn=False)
    nas_arm(r2, "art-noagg", [0.40, 0.41, 0.42], [7.0, 8.0, 9.0], aggregation=False, space="hyper", gcn=False,
            depths=[4, 4, 4], downs=[[3, 4, 5]] * 3)
    c2 = {c["id"]: c for c in lab_study.summarize_study(r2)["claims"]}["autortnet"]
    assert "vs 0.410" in c2["statement"] and "heads differ" not in c2["statement"]


def test_budget_mismatch_and_missing_arms_give_no_verdict(tmp_path):
    r = tmp_path / "abl"
    nas_arm(r, "a", [0.50, 0.52, 0.54], [10, 11, 12], gcn=False)
    nas_arm(r, "b", [0.30, 0.31, 0.32], [10, 11, 12], gcn=False, cell_sharing=True,
            search_budget={**SEARCH_BUDGET, "epochs": 12})
    summary = lab_study.summarize_study(r)
    claims = {c["id"]: c for c in summary["claims"]}
    assert claims["cell_independent"]["verdict"] == "inconclusive"
    assert "different budgets" in claims["cell_independent"]["notes"][0]
    for cid in ("gcn", "fusion", "lambda_frontier", "autortnet", "ovs"):
        assert claims[cid]["verdict"] == "not measured"
        assert "not yet measured" in claims[cid]["statement"]


def test_repeated_seed_counts_once_and_unfinished_runs_are_listed(tmp_path):
    r = tmp_path / "abl"
    nas_arm(r, "a", [0.5, 0.6], [10, 12], gcn=False)
    nas_arm(r, "z-again", [0.7], [14], gcn=False)            # seed 0 again, finished later
    failed = RunDir(r / "broken" / "search")
    failed.write_config({"seed": 0})
    failed.start("search")
    failed.finish("failed", error="boom")
    summary = lab_study.summarize_study(r, json_out=tmp_path / "x.json", markdown_out=tmp_path / "x.md")
    (arm,) = summary["arms"]
    assert arm["n"] == 2 and sorted(arm["metrics"]["miou"]["values"]) == [0.6, 0.7]
    assert summary["unfinished"][0]["status"] == "failed" and (tmp_path / "x.md").is_file()


def test_cli_summarize_and_errors(study, tmp_path, capsys):
    from workbench.cli import main

    assert main(["ablations", "summarize", str(study), "--json", str(tmp_path / "s.json")]) == 0
    out = capsys.readouterr().out
    assert "held  Cell-independent vs cell-sharing search space" in out
    assert json.loads((tmp_path / "s.json").read_text())["claims"][0]["id"] == "cell_independent"
    with pytest.raises(ConfigError, match="no such folder"):
        lab_study.summarize_study(tmp_path / "missing")


@pytest.mark.parametrize("name", ["ablations.yaml", "ablations_smoke.yaml"])
def test_study_files_plan_against_the_notebooks(name, monkeypatch, capsys):
    """Every run of the study validates against the notebooks' parameters cells; every arm has the
    same budget and (full study) at least 3 seeds."""
    from workbench.lab import params, sweep

    # the plan reads each notebook's parameters cell once per run: read each once here
    monkeypatch.setattr(sweep, "parse_parameters", functools.lru_cache(params.parse_parameters))
    monkeypatch.chdir(REPO)
    study = lab_study.load_study(REPO / "benchmarks" / name)
    arms: dict[str, set] = {}
    budgets = set()
    for entry in study["sweeps"]:
        body = {k: v for k, v in entry.items() if k != "id"}
        for item in sweep.plan_sweep(body, REPO):
            params = dict(item["parameters"])
            if item["stage"] == "search":  # the config the search notebook builds must validate too
                from workbench.nas.search import resolve_config

                keys = ("preset", "dataset", "data_root", "epochs", "latency_weight", "input_size", "crop_size",
                        "batch_size", "steps_per_epoch", "seed", "device")
                resolve_config({**{k: params[k] for k in keys if k in params}, **params.get("overrides", {})})
            seed = params.pop("seed", None)
            params.pop("output_dir", None)
            budget = {k: v for k, v in params.items() if k in ("epochs", "steps_per_epoch", "iters_per_epoch", "crop",
                                                                "crop_size", "input_size", "batch_size", "lr",
                                                                "data_root", "eval_size", "bench_size")}
            budget.update({k: v for k, v in params.get("overrides", {}).items()  # search budget, not switches
                           if k not in ("gcn", "gamma", "cell_sharing", "fusion",  # and the chain's own layout:
                                        "reductions", "fusion_channels",  # and the latency target's switches
                                        "target_baseline", "target_fraction", "latency_control",
                                        "target_derive")})
            budgets.add((item["stage"], repr(budget)))
            key = repr({k: v for k, v in sorted(params.items()) if k not in ("genotype",)})
            arms.setdefault(f"{item['stage']}:{key}", set()).add(seed)
    stages = {b[0] for b in budgets}
    budget_by_stage = {s: {b for st, b in budgets if st == s} for s in stages}
    assert all(len(b) == 1 for b in budget_by_stage.values()), budget_by_stage
    minimum = 3 if name == "ablations.yaml" else 1
    assert min(len(s) for s in arms.values()) >= minimum
    with pytest.raises(ConfigError, match="unknown key"):
        monkeypatch.setattr(lab_study, "STUDY_KEYS", set())
        lab_study.load_study(REPO / "benchmarks" / name)


TINY_SEARCH = dict(dataset="cityscapes", epochs=2, steps_per_epoch=1, batch_size=2, input_size=(32, 64),
                   crop_size=(32, 64), channels=4, nodes=1, num_cells=2, reductions=[0], stem_channels=4,
                   head_channels=8, max_val_images=1, warmup_epochs=0, lut_warmup=0, lut_repeats=1, lut_calibrate=0,
                   threads=1, device="cpu")


def test_summarize_records_written_by_real_tiny_steps(tiny_cityscapes, tiny_davis, tmp_path):
    """Real search -> retrain -> benchmark, a real baseline and a real VOS run, laid out as a sweep writes
    them: the summary joins each retrain to its search settings and its benchmark latency."""
    from workbench import steps

    root = tmp_path / "abl"
    retrain = dict(dataset="cityscapes", data_root=str(tiny_cityscapes), epochs=1, crop_size=(32, 64), batch_size=2,
                   eval_size=(64, 128), device="cpu", threads=1)
    for gcn in (True, False):
        point = root / "gcn" / f"gas-gcn{gcn}-s0"
        steps.search(dict(TINY_SEARCH, preset="gas", gcn=gcn, data_root=str(tiny_cityscapes),
                          lut_cache_dir=str(tmp_path / "lut")), point / "search")
        steps.retrain(dict(retrain, genotype=str(point / "search" / "genotype.json")), point / "retrain")
        steps.benchmark(dict(run=str(point / "retrain"), size=(64, 128), warmup=0, repeats=1, memory=False,
                             device="cpu", threads=1), point / "retrain" / "benchmark")
    base = root / "baselines" / "fpn-s0" / "retrain"
    steps.retrain(dict(retrain, baseline="fpn_mobilenet_v2"), base)
    steps.benchmark(dict(run=str(base), size=(64, 128), warmup=0, repeats=1, memory=False, device="cpu", threads=1),
                    base / "benchmark")
    video = root / "vos" / "attention-on-s0" / "video"
    steps.train_vos(dict(data_root=str(tiny_davis), epochs=1, steps_per_epoch=1, batch_size=1, crop_size=(64, 112),
                         device="cpu", threads=1), video / "train")
    steps.segment_video(dict(data_root=str(tiny_davis), model=str(video / "train"), method="all", device="cpu",
                             threads=1), video)

    summary = lab_study.summarize_study(root)
    arms = {a["name"]: a for a in summary["arms"]}
    assert set(arms) == {"fixed, indep, gcn γ=0.5, λ=0.1", "fixed, indep, no gcn, λ=0.1",
                         "baseline fpn_mobilenet_v2", "OVS-Net attention on"}
    on = arms["fixed, indep, gcn γ=0.5, λ=0.1"]
    rec = RunDir(root / "gcn" / "gas-gcnTrue-s0" / "retrain").record()
    bench = RunDir(root / "gcn" / "gas-gcnTrue-s0" / "retrain" / "benchmark").record()
    assert on["metrics"]["miou"]["values"] == [rec["metrics"]["miou"]]
    assert on["metrics"]["latency_ms"]["values"] == [bench["metrics"]["latency_ms"]]
    assert on["metrics"]["depth"]["values"] == [2] and on["architectures"][0]["downsampling"] == [0]
    vos = arms["OVS-Net attention on"]["metrics"]
    seg = RunDir(video).record()["metrics"]
    assert vos["onepass_jf"]["mean"] == pytest.approx(seg["onepass_jf"])
    assert vos["offline_fps"]["mean"] == pytest.approx(seg["offline_fps"]) and "copy_jf" in vos
    claims = {c["id"]: c for c in summary["claims"]}
    # one seed per arm: the comparisons are made but no verdict beyond "inconclusive"
    assert claims["gcn"]["verdict"] == "inconclusive" and "too few seeds" in claims["gcn"]["statement"]
    assert claims["ovs"]["verdict"] == "inconclusive"
    assert claims["cell_independent"]["verdict"] == "not measured"
    assert [p["kind"] for p in claims["lambda_frontier"]["frontier"]] == []  # a single λ is no sweep
    from widgets.ablations import figures

    figs = figures(summary)
    assert figs and all(len(fig.data) >= 1 for _, fig in figs)


def test_notebook_on_a_fake_study(study, tmp_path):
    """The committed notebook has no outputs, and runs through the workbench's papermill front door."""
    import nbformat

    from workbench.lab.execute import run_notebook
    from workbench.lab.params import parse_parameters

    committed = nbformat.read(REPO / "notebooks" / "ablations.ipynb", as_version=4)
    assert not [o for c in committed.cells if c.cell_type == "code" for o in c.outputs]
    params = parse_parameters("ablations")
    assert params["k"].low == 0 and all(p.help for p in params.values())
    out = run_notebook("ablations", {"root": str(study), "html_out": str(tmp_path / "r.html")}, tmp_path / "nb")
    nb = nbformat.read(out, as_version=4)
    text = json.dumps([c.get("outputs", []) for c in nb.cells])
    assert "Cell-independent vs cell-sharing search space" in text and "application/vnd.plotly.v1+json" in text
    html = (tmp_path / "r.html").read_text()
    # offline: no external script, plotly.js inlined exactly once, one plot per figure
    from plotly.offline import get_plotlyjs

    assert "<script src=" not in html and html.count(get_plotlyjs()[:2000]) == 1 and html.count("Plotly.newPlot") >= 10
    assert "did not hold" not in html.split("AutoRTNet")[0] and "mixed" in html


def test_run_study_drives_the_batch_runner(tmp_path, monkeypatch, capsys):
    """`workbench ablations run`: data generated once, every sweep's runs in one pool, each into
    OUTPUT_ROOT/<id>, a failed run does not stop the rest, then frontier and summary. The notebooks
    are replaced by a stand-in that writes the records a real run writes (the real ones are covered
    by the notebook tests and by the tiny-steps test above)."""
    import yaml

    from workbench.lab import params

    calls = []

    def fake_run_notebook(notebook, parameters, output_dir, **_):
        calls.append((Path(notebook).stem, dict(parameters)))
        out, p = Path(output_dir), dict(parameters)
        if Path(notebook).stem == "search":
            if p["overrides"].get("gcn") is False and p["seed"] == 1:
                raise params.NotebookError("search.ipynb: cell 3 failed: boom")
            run = RunDir(out)
            run.write_config({"preset": p["preset"], "seed": p["seed"], "latency_weight": 0.1, "gamma": 0.5,
                              **p["overrides"]})
            atomic_write_json(run.genotype_path, {"cells": [], "expected_latency_ms": 5.0})
            run.start("search")
            run.finish()
        else:
            run = RunDir(out)
            run.write_config({"genotype": p["genotype"], "seed": p["seed"]})
            run.start("retrain", genotype_source=p["genotype"], seed=p["seed"])
            run.update(metrics={"miou": 0.5 + 0.01 * p["seed"], "latency_ms": 10.0})
            run.finish()
        return out / "x.ipynb"

    from workbench.lab import execute

    monkeypatch.setattr(execute, "run_notebook", fake_run_notebook)
    monkeypatch.setattr(execute, "notebook_status", lambda d: RunDir(d).record().get("status", "missing"))
    from workbench.nas import target as target_mod

    pretimed = []  # tables and targets are timed alone before the pool: once per distinct search config
    monkeypatch.setattr(target_mod, "pretime_search", lambda values, threads: pretimed.append(values))
    data = tmp_path / "data"
    study = {"output_root": str(tmp_path / "out"),
             "data": [{"kind": "cityscapes", "out": str(data), "count": 1, "val_count": 1, "size": [32, 64]}],
             "budget": {"search": {"epochs": 1}},
             "sweeps": [{"id": "gcn", "name": "gas-gcn{gcn}-s{seed}", "grid": {"gcn": [True, False], "seed": [0, 1]},
                         "stages": [{"name": "search", "notebook": "search",
                                     "parameters": {"preset": "gas", "synth_data": False, "overrides": {"gcn": "{gcn}"}}},
                                    {"name": "retrain", "notebook": "retrain",
                                     "parameters": {"genotype": "{search}/genotype.json", "benchmark": False}}]},
                        {"id": "shared", "name": "gas-gcnTrue-s{seed}", "grid": {"seed": [0]},
                         "stages": [{"name": "search", "notebook": "search",
                                     "parameters": {"preset": "gas", "synth_data": False,
                                                    "overrides": {"gcn": True, "cell_sharing": True}}},
                                    {"name": "retrain", "notebook": "retrain",
                                     "parameters": {"genotype": "{search}/genotype.json", "benchmark": False}}]}]}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    result = lab_study.run_study(path)
    assert (data / "synth.json").is_file()
    assert result["runs"]["failed"] == [str(tmp_path / "out" / "gcn" / "gas-gcnFalse-s1" / "search")]
    assert len(calls) == 9  # 5 searches, 4 retrains (the failed point's retrain is not run)
    assert sorted((v["gcn"], v.get("cell_sharing", False)) for v in pretimed) == [(False, False), (True, False),
                                                                                   (True, True)]
    assert all(v["preset"] == "gas" and tuple(v["input_size"]) == (128, 256) and "seed" not in v for v in pretimed)
    # the second sweep's point has the same name as one of the first: pooled, each keeps its own chain
    shared = [c for c in calls if c[0] == "retrain" and "shared" in c[1]["genotype"]]
    assert [c[1]["genotype"] for c in shared] == [str(tmp_path / "out" / "shared" / "gas-gcnTrue-s0" / "search" / "genotype.json")]
    assert (tmp_path / "out" / "frontier" / "frontier.json").is_file()
    arms = {a["name"]: a for a in result["summary"]["arms"]}
    assert arms["fixed, indep, gcn γ=0.5, λ=0.1"]["n"] == 2 and arms["fixed, indep, no gcn, λ=0.1"]["n"] == 1
    assert (tmp_path / "out" / "ablations.html").is_file()
    # finished runs are skipped on a re-run: only the failed point runs again
    calls.clear()
    lab_study.run_study(path, only=["gcn"])
    assert [c[0] for c in calls] == ["search"]
    with pytest.raises(ConfigError, match="unknown sweep nope"):
        lab_study.run_study(path, only=["nope"])
    path.write_text(yaml.safe_dump({**study, "sweeps": [{"grid": {}}]}))
    with pytest.raises(ConfigError, match="each with an `id`"):
        lab_study.load_study(path)


def test_equal_latency_headline_by_hand(tmp_path):
    """Three hand-designed arms, two searched ones: the searched arms beat the two faster baselines
    at no more latency, and nothing searched is as accurate as the slowest baseline."""
    r = tmp_path / "study"
    baseline_arm(r, "fast_net", [0.40, 0.41, 0.42], [10.0, 10.5, 11.0])
    baseline_arm(r, "mid_net", [0.50, 0.51, 0.52], [20.0, 20.5, 21.0])
    baseline_arm(r, "slow_net", [0.60, 0.61, 0.62], [40.0, 40.5, 41.0])
    baseline_arm(r, "dominated_net", [0.30, 0.31, 0.32], [30.0, 30.5, 31.0])  # not on the hand-designed front
    nas_arm(r, "fastsearch", [0.45, 0.46, 0.47], [9.0, 9.5, 10.0], latency_weight=1.0)
    nas_arm(r, "midsearch", [0.55, 0.56, 0.57], [19.0, 19.5, 20.0], latency_weight=0.5)
    summary = lab_study.summarize_study(r)
    head = summary["equal_latency"]
    assert head["levels"] == 3 and head["wins"] == 2 and head["verdict"] == "held"
    rows = {row["baseline"]: row for row in head["rows"]}
    assert rows["baseline fast_net"]["searched"].endswith("λ=1") and rows["baseline fast_net"]["outcome"] == "better"
    assert rows["baseline fast_net"]["diff"] == pytest.approx(0.05)
    assert rows["baseline mid_net"]["outcome"] == "better" and rows["baseline slow_net"]["outcome"] == "worse"
    md = (r / "ablations.md").read_text()
    assert "Searched vs hand-designed networks at equal latency: held" in md and "2 of 3 levels" in md
    # equal or lower latency only: take away the fast searched arm and the fastest level has no rival
    for seed in range(3):
        for stage in ("search", "retrain"):
            RunDir(r / f"fastsearch-s{seed}" / stage).finish(status="failed")
    again = lab_study.summarize_study(r)["equal_latency"]
    assert again["wins"] == 1 and again["verdict"] == "inconclusive"
    assert {row["baseline"]: row for row in again["rows"]}["baseline fast_net"]["searched"] is None


def test_frontier_groups_seeds_into_arms_with_both_fronts(tmp_path):
    from workbench.frontier import run_frontier

    r = tmp_path / "runs"
    baseline_arm(r, "fast_net", [0.40, 0.42], [10.0, 12.0])
    baseline_arm(r, "slow_net", [0.60, 0.62], [40.0, 42.0])
    nas_arm(r, "searched", [0.50, 0.52], [15.0, 17.0])
    run_frontier({"roots": [str(r)]}, tmp_path / "frontier")
    front = json.loads((tmp_path / "frontier" / "frontier.json").read_text())
    arms = {a["name"]: a for a in front["arms"]}
    assert set(arms) == {"fast_net", "slow_net", "searched"}
    assert arms["fast_net"]["miou"]["values"] == [0.40, 0.42] and arms["fast_net"]["latency_ms"]["mean"] == 11.0
    assert arms["searched"]["kind"] == "searched" and arms["searched"]["seeds"] == [0, 1]
    assert arms["slow_net"]["miou"]["se"] == pytest.approx(0.01)
    assert front["pareto_arms"] == {"searched": ["searched"], "baseline": ["fast_net", "slow_net"]}
