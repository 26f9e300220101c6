"""`make demo`'s sweep files: they plan, their search settings validate, and the targeted search's
baseline is retrained beside it (so the demo can time the two in one run)."""

from __future__ import annotations

from workbench.lab.demo import SWEEP, TARGETED, demo_sweep
from workbench.lab.sweep import load_sweep, plan_sweep
from workbench.nas.search import resolve_config
from workbench.seg.recipes import get_recipe


def search_settings(parameters: dict) -> dict:
    """A search stage's notebook parameters as the search notebook hands them to the step."""
    values = {k: v for k, v in parameters.items() if k not in ("overrides", "synth_data")}
    return {**values, **parameters.get("overrides", {})}


def test_demo_sweeps_plan_and_validate(tmp_path):
    plans = {path.name: plan_sweep(demo_sweep(tmp_path / "demo", tmp_path / "data", path), tmp_path)
             for path in (SWEEP, TARGETED)}
    targeted = plans[TARGETED.name]
    assert [item["stage"] for item in targeted] == ["search", "retrain"]
    assert all(str(item["output_dir"]).startswith(str(tmp_path / "demo" / "sweep")) for plan in plans.values()
               for item in plan)
    search = resolve_config(search_settings(targeted[0]["parameters"]))
    assert search.strategy == "sample" and search.sample_measure and search.target_fraction == 0.9
    baselines = {item["parameters"].get("baseline") for item in plans[SWEEP.name]} - {None}
    assert search.target_baseline in baselines, baselines
    for plan in plans.values():
        for item in plan:
            if item["stage"] == "search":
                resolve_config(search_settings(item["parameters"]))
            else:
                assert get_recipe(item["parameters"]["recipe"]).name == "fast-v3"
    # the main sweep's own frontier is drawn by the demo after the joint timing, not by the sweep
    assert load_sweep(SWEEP)["frontier"] is True and load_sweep(TARGETED)["frontier"] is False


def test_warn_noisy_names_each_noisy_network_once_and_says_why(tmp_path, capsys):
    from workbench.jsonio import atomic_write_json
    from workbench.lab.demo import warn_noisy
    from workbench.runs import RunDir

    def finished(path, kind: str, noisy: bool) -> RunDir:
        run = RunDir(path)
        run.write_config({"run": str(path.parent)} if kind == "benchmark" else {})
        run.start(kind)
        run.update(metrics={"latency_ms": 10.0} if kind == "benchmark" else {"miou": 0.1}, latency_noisy=noisy)
        run.finish()
        return run

    sweep = tmp_path / "sweep"
    finished(sweep / "a" / "retrain", "retrain", False)
    finished(sweep / "a" / "retrain" / "benchmark-study", "benchmark", True)  # its newest benchmark: noisy
    finished(sweep / "b" / "retrain", "retrain", False)
    finished(sweep / "b" / "retrain" / "benchmark-study", "benchmark", False)
    atomic_write_json(sweep / "a" / "search" / "latency_lut.json", {"busy": True})
    atomic_write_json(sweep / "b" / "search" / "latency_lut.json", {"busy": False})
    assert warn_noisy(tmp_path) == ["sweep/a/retrain", "sweep/a/search"]
    printed = capsys.readouterr().out
    assert "1 latency measurements are flagged noisy" in printed and "spread more than 1.5x" in printed
    assert "1 latency tables were timed while other processes used the machine: sweep/a/search" in printed
    finished(sweep / "b" / "retrain" / "benchmark-late", "benchmark", False)
    assert warn_noisy(sweep / "b") == []


def test_print_target_scores_the_miss_per_round_against_the_baseline_of_the_same_run(tmp_path, capsys):
    from workbench.lab.demo import print_target
    from workbench.runs import RunDir

    search = RunDir(tmp_path / "point" / "search")
    search.start("search", target={"ms": 9.0, "baseline": "base", "fraction": 0.9})
    search.update(metrics={"target_miss_pct": 2.0, "target_measured_miss_pct": -1.0})
    search.finish()
    # per round the network runs 0.9, 1.0 and 1.1x the baseline: median 1.0, so +11.1 % from 0.9x
    timing = {"runs": [{"run": "point/retrain", "round_medians": [9.0, 12.0, 11.0], "latency_ms": 9.0}],
              "baselines": {"base": {"round_medians": [10.0, 12.0, 10.0], "latency_ms": 10.0}}}
    got = print_target(tmp_path / "point", timing)
    assert abs(got["miss_round_pct"] - 100 * (1.0 / 0.9 - 1)) < 1e-9
    assert got["gate_miss_pct"] == -1.0 and got["price_miss_pct"] == 2.0
    printed = capsys.readouterr().out
    assert "+11.1 % from the target (OUTSIDE ±10 %)" in printed and "measured -1.0 % by the search's gate" in printed
    # without a joint timing there is no miss to state
    assert print_target(tmp_path / "point", None)["miss_round_pct"] is None
    assert "from the target" not in capsys.readouterr().out
    assert print_target(tmp_path / "missing", None) == {}
