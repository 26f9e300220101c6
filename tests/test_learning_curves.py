"""benchmarks/learning_curves.py: the proxy benchmark's learning-curve figure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import load_benchmark

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "learning_curves.py"


def _result(epochs: int, arms: dict) -> dict:
    return {"machine": {"cpu": "test CPU", "cores": 2}, "jobs": 2, "threads": 1,
            "common": {"epochs": epochs}, "arms": arms}


def _arm(points: list[tuple[float, float, float | None]], finals: list[float]) -> dict:
    return {"miou": finals, "curve": [{"epoch": 5 * (i + 1), "minutes": m, "miou_mean": v, "miou_std": s}
                                      for i, (m, v, s) in enumerate(points)]}


def test_series_keeps_each_arm_of_each_file_with_its_budget_and_drops_empty_curves():
    mod = load_benchmark("learning_curves")
    a40 = _result(40, {"fpn": _arm([(1.0, 0.3, 0.01), (2.0, 0.4, 0.02)], [0.40, 0.41, 0.39]),
                       "failed": {"miou": [], "curve": []}})
    a60 = _result(60, {"fpn": _arm([(1.5, 0.35, None), (3.0, 0.46, 0.005)], [0.46])})
    got = mod.series([a40, a60])
    assert [s["label"] for s in got] == ["fpn, 40 epochs (n=3)", "fpn, 60 epochs (n=1)"]
    assert got[0]["minutes"] == [1.0, 2.0] and got[0]["mean"] == [0.3, 0.4] and got[0]["std"] == [0.01, 0.02]
    assert got[1]["std"] == [0.0, 0.005]  # one seed at a point: no band
    assert [s["label"] for s in mod.series([a40, a60], only={"other"})] == []


def test_an_arm_two_files_hold_at_one_budget_is_drawn_once_from_the_file_with_more_seeds():
    mod = load_benchmark("learning_curves")
    first = _result(40, {"fpn": _arm([(1.0, 0.30, 0.01)], [0.40, 0.41, 0.39]),
                         "net": _arm([(1.0, 0.20, 0.01)], [0.30, 0.31])})
    rerun = _result(40, {"fpn": _arm([(1.1, 0.32, 0.02)], [0.40, 0.41, 0.39, 0.42, 0.38]),
                         "net": _arm([(1.2, 0.25, 0.01)], [0.30])})
    got = {s["arm"]: s for s in mod.series([first, rerun])}
    assert sorted(got) == ["fpn", "net"] and len(mod.series([first, rerun])) == 2
    assert got["fpn"]["label"] == "fpn, 40 epochs (n=5)" and got["fpn"]["mean"] == [0.32]
    assert got["net"]["label"] == "net, 40 epochs (n=2)" and got["net"]["mean"] == [0.20]
    tie = _result(40, {"net": _arm([(1.3, 0.27, 0.01)], [0.30, 0.29])})
    assert mod.series([first, tie])[1]["mean"] == [0.27]  # a tie: the later file


def test_the_script_draws_a_png_and_refuses_a_file_that_is_not_a_result(tmp_path):
    good = tmp_path / "r.json"
    good.write_text(json.dumps(_result(40, {"fpn": _arm([(1.0, 0.3, 0.01), (2.0, 0.4, 0.02)], [0.4, 0.4])})))
    out = tmp_path / "fig" / "curves.png"
    done = subprocess.run([sys.executable, str(SCRIPT), str(good), "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    out2 = tmp_path / "none.png"
    done = subprocess.run([sys.executable, str(SCRIPT), str(bad), "--out", str(out2)], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"error: {bad}: not a proxy_benchmark.py result (no arms)"]
    assert not out2.exists()
