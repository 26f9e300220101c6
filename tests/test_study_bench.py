"""`workbench ablations bench`: every retrained network of a study timed together, recorded as the
benchmark each view then uses."""

from __future__ import annotations

import json

import pytest

from workbench.cli import main
from workbench.errors import ConfigError
from workbench.runs import RunDir, measured
from workbench.study.bench import bench_study
from workbench.study.collect import collect_runs


def retrain_run(path, baseline: str, seed: int, busy_latency: float) -> RunDir:
    """A finished baseline retrain with the busy benchmark a study's pool leaves behind."""
    run = RunDir(path)
    run.write_config({"baseline": baseline, "seed": seed, "num_classes": 11, "bench_size": [64, 128]})
    run.start("baseline", baseline=baseline, seed=seed)
    run.update(metrics={"miou": 0.3 + 0.01 * seed})
    run.finish()
    bench = RunDir(path / "benchmark")
    bench.write_config({"run": str(run.path)})
    bench.start("benchmark")
    bench.update(metrics={"latency_ms": busy_latency}, latency_noisy=True)
    bench.finish()
    return run


def test_bench_study_times_all_retrains_together_and_wins_over_the_busy_numbers(tmp_path, capsys):
    root = tmp_path / "study"
    a0 = retrain_run(root / "baselines" / "pspnet_lcnet_035-s0" / "retrain", "pspnet_lcnet_035", 0, 999.0)
    a1 = retrain_run(root / "baselines" / "pspnet_lcnet_035-s1" / "retrain", "pspnet_lcnet_035", 1, 998.0)
    b0 = retrain_run(root / "baselines" / "fpn_mobilenetv3_small_050-s0" / "retrain", "fpn_mobilenetv3_small_050", 0,
                     997.0)
    running = RunDir(root / "baselines" / "unfinished" / "retrain")
    running.write_config({"baseline": "pspnet_lcnet_035", "bench_size": [64, 128]})
    running.start("retrain")

    out = bench_study(root, threads=1, rounds=2, repeats=2, warmup=1, baselines=("fpn_mobilenetv3_small",))
    assert out["networks"] == 3 and len(out["runs"]) == 3 and out["size"] == [64, 128]
    extra = out["baselines"]["fpn_mobilenetv3_small"]
    assert len(extra["round_medians"]) == 2 and extra["latency_ms"] == min(extra["round_medians"]) > 0
    by_run = {r["run"]: r for r in out["runs"]}
    # two seeds of one architecture are timed once and share the number
    assert by_run["baselines/pspnet_lcnet_035-s0/retrain"]["latency_ms"] == \
        by_run["baselines/pspnet_lcnet_035-s1/retrain"]["latency_ms"]
    for run in (a0, a1, b0):
        rec = RunDir(run.path / "benchmark-study").record()
        assert rec["kind"] == "benchmark" and rec["status"] == "finished"
        bench = json.loads((run.path / "benchmark-study" / "benchmark.json").read_text())
        assert len(bench["latency_ms"]["round_medians"]) == 2
        assert bench["latency_ms"]["median"] == min(bench["latency_ms"]["round_medians"])
        assert bench["params_m"] > 0 and bench["gflops"] > 0 and bench["networks_in_run"] == 3
        # the newest benchmark wins in the run views and in the study summary
        got = measured(run)
        assert got["source"] == "benchmark" and got["latency_ms"] == rec["metrics"]["latency_ms"] < 900
    rows, _ = collect_runs(root)
    assert len(rows) == 3 and all(r["metrics"]["latency_ms"] < 900 for r in rows), rows
    summary = json.loads((root / "study_latency.json").read_text())
    assert summary["rounds"] == 2 and summary["cpu"] and len(summary["runs"]) == 3
    assert all(r["round_medians"] and r["latency_ms"] == min(r["round_medians"]) for r in summary["runs"])

    # the CLI prints one line per retrain; a folder without retrains is one clear error
    assert main(["ablations", "bench", str(root), "--threads", "1", "--rounds", "1", "--repeats", "1"]) == 0
    printed = capsys.readouterr().out
    assert "3 retrains timed together" in printed and "of 3 retrains flagged NOISY" in printed
    assert len(summary["round_drift"]) == 2 and min(summary["round_drift"]) >= 1.0
    # each timing run is kept: the second (1 round) does not replace the first's rounds
    kept = sorted((root / "study_latency").glob("*.json"))
    assert len(kept) == 2, kept
    by_rounds = {json.loads(k.read_text())["rounds"]: json.loads(k.read_text()) for k in kept}
    assert by_rounds[2]["runs"] == out["runs"] and len(by_rounds[1]["runs"][0]["round_medians"]) == 1
    with pytest.raises(ConfigError, match="no finished retrain runs"):
        bench_study(tmp_path / "empty")
    other = RunDir(root / "other" / "retrain")
    other.write_config({"baseline": "pspnet_lcnet_035", "bench_size": [32, 64]})
    other.start("baseline")
    other.finish()
    with pytest.raises(ConfigError, match="give --size"):
        bench_study(root)


def test_bench_study_times_at_the_size_the_retrain_notebook_benchmarked(tmp_path):
    """The retrain notebook's `bench_size` lives in its RUN/benchmark sub-run, not in the retrain
    config: a demo retrained on 128x256 crops and benchmarked at 256x512 is timed at 256x512."""
    run = RunDir(tmp_path / "study" / "net" / "retrain")
    run.write_config({"baseline": "pspnet_lcnet_035", "num_classes": 11, "crop_size": [32, 64]})
    run.start("baseline", baseline="pspnet_lcnet_035")
    run.finish()
    bench = RunDir(run.path / "benchmark")
    bench.write_config({"run": str(run.path), "size": [64, 128]})
    bench.start("benchmark")
    bench.update(metrics={"latency_ms": 99.0, "expected_latency_ms": 3.25})
    bench.finish()
    out = bench_study(tmp_path / "study", threads=1, rounds=1, repeats=1, warmup=0)
    assert out["size"] == [64, 128]
    assert json.loads((run.path / "benchmark-study" / "benchmark.json").read_text())["size"] == [64, 128]
    # the table's price of the network (the notebook benchmark's) is kept beside the joint timing
    got = measured(run)
    assert got["latency_ms"] < 99.0 and got["expected_latency_ms"] == 3.25
    bench_study(tmp_path / "study", size=(32, 64), threads=1, rounds=1, repeats=1, warmup=0)
    assert "expected_latency_ms" not in measured(run)  # priced at another size: not carried
    # without its own benchmark, the crop it was trained on
    bench.path.joinpath("config.json").unlink()
    assert bench_study(tmp_path / "study", threads=1, rounds=1, repeats=1, warmup=0)["size"] == [32, 64]


def test_round_drift_is_the_geometric_mean_of_each_networks_slowdown_in_that_round():
    """A round in which every network ran 1.2x its fastest reads 1.2; one network's own outlier is
    diluted by the others (the case a per-network spread cannot tell from host drift)."""
    from workbench.study.bench import round_drift

    assert round_drift([[1.0, 1.2, 1.0], [2.0, 2.4, 2.0]]) == [1.0, 1.2, 1.0]
    got = round_drift([[1.0, 2.0, 1.0], [3.0, 3.0, 3.0]])  # one network doubled in round 2 only
    assert got == [1.0, pytest.approx(2 ** 0.5, abs=1e-4), 1.0]
    assert round_drift([]) == []


def test_per_round_ratio_is_the_median_of_same_round_ratios():
    from workbench.study.bench import per_round_ratio

    # a host twice as slow in round 2 moves both numbers: the ratio of that round stays 0.5
    assert per_round_ratio([5.0, 10.0, 6.0], [10.0, 20.0, 10.0]) == 0.5
    assert per_round_ratio([9.0, 12.0, 11.0], [10.0, 12.0, 10.0]) == 1.0
    with pytest.raises(ValueError, match="3 and 2 rounds"):
        per_round_ratio([1.0, 2.0, 3.0], [1.0, 2.0])
