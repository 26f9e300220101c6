"""Ablation of OVS-Net's boundary-aware attention: J, F and J&F on held-out videos, over seeds.

Both arms train the same OVS-Net on the same synth-davis train videos with the same budget; one
has `boundary=True` (boundary band in each scale's attention, boundary branch and loss), the
other the plain mask-guided attention. Each trained model segments the held-out val videos
one-pass, scored with the DAVIS measures. A difference counts when it exceeds 2 standard errors
of the difference over the seeds (the study's rule, `workbench.study.stats.compare`).

    .venv/bin/python benchmarks/vos_boundary.py --seeds 0 1 2 --out-dir /tmp/vos_boundary \
        --json benchmarks/results/vos_boundary.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import time
from pathlib import Path

from workbench.data.synth import generate
from workbench.device import cpu_model
from workbench.runs import RunDir
from workbench.study.stats import compare, describe
from workbench.vos.segment import run_segment
from workbench.vos.train import run_train

DATA = dict(count=8, val_count=4, size=(120, 212), frames=10, seed=0)
TRAIN = {"split": "train", "epochs": 10, "steps_per_epoch": 25, "batch_size": 4, "crop_size": [120, 212],
         "input_scale": 1.0, "threads": 1, "device": "cpu"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out-dir", required=True, help="data, models and segmentations (kept for a re-run)")
    p.add_argument("--json", default="benchmarks/results/vos_boundary.json")
    args = p.parse_args()
    out = Path(args.out_dir)
    root = out / "data"
    if not (root / "synth.json").exists():
        generate("davis", root, **DATA)
    rows = []
    for seed in args.seeds:
        for boundary in (False, True):
            name = f"{'boundary' if boundary else 'plain'}-s{seed}"
            t0 = time.time()
            rec = RunDir(out / name).record()
            if rec.get("status") != "finished":  # a re-run skips finished trainings, resumes the rest
                rec = run_train(dict(TRAIN, seed=seed, boundary=boundary, data_root=str(root)), out / name,
                                resume=(out / name / "checkpoints").exists())
            train_s = rec.get("duration_s") or time.time() - t0
            seg = run_segment({"model": str(out / name), "data_root": str(root), "split": "val", "method": "onepass",
                               "threads": 1, "device": "cpu", "overwrite": True}, out / f"{name}-seg")
            m = seg["metrics"]
            row = {"seed": seed, "boundary": boundary, "train_s": round(train_s, 1), "jf": m["jf"],
                   "J_mean": m["j_mean"], "F_mean": m["f_mean"], "final_loss": rec.get("metrics", {}).get("loss")}
            rows.append(row)
            print(json.dumps(row), flush=True)

    def arm(boundary: bool, key: str) -> dict:
        return describe([r[key] for r in rows if r["boundary"] is boundary and r[key] is not None])

    summary = {}
    for key, label in (("jf", "J&F"), ("J_mean", "J_mean"), ("F_mean", "F_mean")):
        on, off = arm(True, key), arm(False, key)
        summary[label] = {"boundary": on, "plain": off, "compare": compare(on, off, True)}
    result = {"machine": cpu_model(), "cores": os.cpu_count(), "date": datetime.date.today().isoformat(),
              "command": "python benchmarks/vos_boundary.py --seeds " + " ".join(map(str, args.seeds)),
              "setting": {"data": {**DATA, "size": list(DATA["size"])}, "train": TRAIN, "eval": "val split, one-pass"},
              "summary": summary, "runs": rows}
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    for label, s in summary.items():
        print(f"{label}: boundary {s['boundary']['mean']:.4f} ± {s['boundary']['std']:.4f}, plain "
              f"{s['plain']['mean']:.4f} ± {s['plain']['std']:.4f}: {s['compare']['outcome']}")


if __name__ == "__main__":
    main()
