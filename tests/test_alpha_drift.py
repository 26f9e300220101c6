"""benchmarks/alpha_drift.py: how far a search's decisions still move, epoch by epoch."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import load_benchmark

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "alpha_drift.py"
OPS = ["none", "skip_connect", "conv_3x3"]


def _line(epoch: int, edges: list[list[float]], paths: list[list[float]] | None = None) -> dict:
    line = {"epoch": epoch, "cells": [{"ops": OPS, "weights": edges}]}
    if paths is not None:
        line["space_state"] = {"weights": paths}
    return line


def _write(tmp_path: Path, lines: list[dict]) -> Path:
    path = tmp_path / "alphas.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_decisions_ignore_none_and_rows_compare_each_epoch_with_the_last(tmp_path):
    mod = load_benchmark("alpha_drift")
    lines = [
        # none is the strongest on edge 0 but is never derived: the pick is skip (0.3 of 0.6 allowed)
        _line(0, [[0.4, 0.3, 0.3], [0.2, 0.5, 0.3]], [[0.5, 0.3, 0.2]]),
        _line(1, [[0.2, 0.2, 0.6], [0.2, 0.5, 0.3]], [[0.2, 0.3, 0.5]]),
        _line(2, [[0.1, 0.3, 0.6], [0.1, 0.2, 0.7]], [[0.2, 0.2, 0.6]]),
    ]
    rows = mod.drift(_write(tmp_path, lines))
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    # last epoch picks conv on both edges and path choice 2
    assert rows[0]["ops_same_as_last"] == 0.0 and rows[0]["paths_same_as_last"] == 0.0
    assert rows[1]["ops_same_as_last"] == 0.5 and rows[1]["paths_same_as_last"] == 1.0
    assert rows[2]["ops_same_as_last"] == 1.0
    # shares among the allowed choices: epoch 0 edges 0.3/0.6 and 0.5/0.8; path 0.5
    assert rows[0]["ops_share"] == pytest.approx((0.5 + 0.625) / 2, abs=1e-4)
    assert rows[0]["paths_share"] == pytest.approx(0.5)
    assert "paths_share" not in mod.drift(_write(tmp_path, [_line(0, [[0.1, 0.2, 0.7]])]))[0]
    torn = _write(tmp_path, lines)  # a killed search's torn last line is not an epoch
    torn.write_text(torn.read_text() + '{"epoch": 3, "cel')
    assert [r["epoch"] for r in mod.drift(torn)] == [0, 1, 2]


def test_the_script_prints_and_writes_json_and_refuses_a_file_that_is_not_alphas(tmp_path):
    run = tmp_path / "search"
    run.mkdir()
    _write(run, [_line(0, [[0.2, 0.5, 0.3]]), _line(1, [[0.2, 0.3, 0.5]])])
    out = tmp_path / "drift.json"
    done = subprocess.run([sys.executable, str(SCRIPT), str(run), "--json", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())[str(run)][0]["ops_same_as_last"] == 0.0
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "alphas.jsonl").write_text("{not json\n")  # no epoch that can be read
    done = subprocess.run([sys.executable, str(SCRIPT), str(bad)], capture_output=True, text=True)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {bad / 'alphas.jsonl'}: not a search's alphas.jsonl")


def _alpha_line(epoch: int, alphas: list[float]) -> dict:
    return {"epoch": epoch, "cells": [{"ops": OPS, "alpha": [alphas], "weights": [[1 / 3] * 3]}]}


def test_persistence_is_one_for_a_steady_push_lower_when_moves_reverse_and_near_the_random_walk_reference(tmp_path):
    mod = load_benchmark("alpha_drift")
    # a warm-up epoch that does not move, then a steady push on alpha 0 and moves that reverse on alpha 1 (up, down, up)
    lines = [_alpha_line(0, [0.0, 0.0, 0.0]), _alpha_line(1, [0.0, 0.0, 0.0]), _alpha_line(2, [0.1, 0.2, 0.0]),
             _alpha_line(3, [0.3, 0.0, 0.0]), _alpha_line(4, [0.6, 0.2, 0.0])]
    got = mod.persistence(_write(tmp_path, lines))
    # alpha 0: net 0.6 over path 0.6; alpha 1: net 0.2 over path 0.6; alpha 2 never moves (left out)
    assert got["moves"] == 3 and got["random_walk"] == pytest.approx(3 ** -0.5, abs=1e-4)
    assert got["ops_persistence"] == pytest.approx((1.0 + 1 / 3) / 2, abs=1e-4)
    # independent Gaussian moves: the mean ratio is close to 1/sqrt(n) (simulated reference: 0.2906 at n = 12)
    rng = random.Random(0)
    alphas, walk = [0.0] * 3000, [_alpha_line(0, [0.0] * 3000)]
    for epoch in range(1, 13):
        alphas = [a + rng.gauss(0, 1) for a in alphas]
        walk.append(_alpha_line(epoch, alphas))
    got = mod.persistence(_write(tmp_path, walk))
    assert got["moves"] == 12 and got["ops_persistence"] == pytest.approx(12 ** -0.5, abs=0.02)
    assert mod.persistence(_write(tmp_path, [_line(0, [[0.2, 0.5, 0.3]])]))["ops_persistence"] is None
