"""A briefly trained OVS-Net tracks the synth-davis objects clearly better than copying the
first-frame mask (the objects move a lot, so the copy baseline is weak)."""

from __future__ import annotations

from workbench.data.synth import generate
from workbench.vos.segment import run_segment
from workbench.vos.train import run_train


def test_trained_onepass_beats_copy_baseline(tmp_path):
    root = generate("davis", tmp_path / "data", count=4, val_count=2, size=(120, 212), frames=8,
                    seed=0)
    run_train({"data_root": str(root), "epochs": 6, "iters_per_epoch": 25, "batch_size": 4,
               "crop": [120, 212], "input_scale": 1.0, "threads": 1, "device": "cpu",
               "seed": 0}, tmp_path / "model")
    jf = {}
    for method in ("onepass", "copy"):
        rec = run_segment({"model": str(tmp_path / "model"), "data_root": str(root),
                           "split": "val", "method": method, "threads": 1, "device": "cpu"},
                          tmp_path / method)
        jf[method] = rec["metrics"]["jf"]
    assert jf["onepass"] > jf["copy"] + 0.05, jf
