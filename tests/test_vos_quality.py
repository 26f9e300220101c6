"""OVS-Net learns to track: briefly trained on two synth-davis videos, it segments those videos far
better than copying the first-frame mask, which a broken detector, mask head, re-ID head or
tracker cannot do.

The threshold comes from a measured spread (benchmarks/vos_quality_spread.py, results in
benchmarks/results/vos_quality_spread.json; AMD EPYC, 1 thread, 2026-12-01): over seeds 0-4 the
trained network scored J&F 0.811-0.875 (mean 0.846, std 0.027), the untrained one (lr 0) at most
0.143, the first-frame copy 0.117. The threshold 0.5 is 13 standard deviations below the trained
mean and far above both controls, so another CPU's float differences (which perturb training
like another seed does) cannot flip it, while a model that does not learn fails it.
Generalization to unseen videos is measured in benchmarks/vos.py, not asserted here.
"""

from __future__ import annotations

from workbench.data.synth import generate
from workbench.vos.segment import run_segment
from workbench.vos.train import run_train

THRESHOLD = 0.5


def test_trained_onepass_tracks_far_better_than_copy(tmp_path):
    root = generate("davis", tmp_path / "data", count=4, val_count=2, size=(120, 212), frames=8, seed=0)
    run_train({"data_root": str(root), "split": "val", "epochs": 10, "steps_per_epoch": 25, "batch_size": 4,
               "crop_size": [120, 212], "input_scale": 1.0, "threads": 1, "device": "cpu", "seed": 0},
              tmp_path / "model")
    jf = {}
    for method in ("onepass", "copy"):
        rec = run_segment({"model": str(tmp_path / "model"), "data_root": str(root), "split": "val",
                           "method": method, "threads": 1, "device": "cpu"}, tmp_path / method)
        jf[method] = rec["metrics"]["jf"]
    assert jf["copy"] < 0.2, jf  # the objects move: copying the first mask is a weak baseline here
    assert jf["onepass"] > THRESHOLD, jf
