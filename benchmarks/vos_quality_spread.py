"""The spread behind tests/test_vos_quality.py: J&F of OVS-Net over seeds, beside its controls.

The test trains OVS-Net briefly on two synth-davis videos and segments the same two videos. This
script runs that exact setting for several seeds, plus the untrained network (learning rate 0)
and the first-frame copy, so the test's threshold sits between what a broken model scores and
what a working one scores, with the margin measured rather than guessed. Seeds stand in for the
float differences between CPUs (AMD vs Intel): both perturb the training trajectory.

    .venv/bin/python benchmarks/vos_quality_spread.py [--seeds 0,1,2,3,4]
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import tempfile
from pathlib import Path

from workbench.data.synth import generate
from workbench.device import cpu_model
from workbench.vos.segment import run_segment
from workbench.vos.train import run_train

RESULTS = Path(__file__).resolve().parent / "results"
# The test's setting (tests/test_vos_quality.py): keep the two in step.
DATA = dict(count=4, val_count=2, size=(120, 212), frames=8, seed=0)
TRAIN = {"split": "val", "epochs": 10, "steps_per_epoch": 25, "batch_size": 4, "crop_size": [120, 212],
         "input_scale": 1.0, "threads": 1, "device": "cpu"}


def jf(root: Path, model: Path, method: str, out: Path) -> float:
    rec = run_segment({"model": str(model), "data_root": str(root), "split": "val", "method": method,
                       "threads": 1, "device": "cpu"}, out)
    return rec["metrics"]["jf"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3,4")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = generate("davis", tmp / "data", **DATA)
        for seed in seeds:
            for arm, lr in (("trained", 3e-3), ("untrained", 0.0)):
                cfg = dict(TRAIN, seed=seed, lr=lr, data_root=str(root))
                if arm == "untrained":
                    cfg.update(epochs=1, steps_per_epoch=1)
                run_train(cfg, tmp / f"{arm}{seed}")
                rows.append({"seed": seed, "arm": arm, "jf": jf(root, tmp / f"{arm}{seed}", "onepass",
                                                               tmp / f"{arm}{seed}-seg")})
                print(json.dumps(rows[-1]), flush=True)
        copy = jf(root, tmp / f"trained{seeds[0]}", "copy", tmp / "copy")

    def stats(arm: str) -> dict:
        v = [r["jf"] for r in rows if r["arm"] == arm]
        return {"mean": statistics.mean(v), "std": statistics.stdev(v) if len(v) > 1 else 0.0,
                "min": min(v), "max": max(v)}

    out = {"setting": {"data": {**DATA, "size": list(DATA["size"])}, "train": TRAIN},
           "machine": cpu_model(), "date": datetime.date.today().isoformat(),
           "copy_jf": copy, "trained": stats("trained"), "untrained": stats("untrained"), "runs": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "vos_quality_spread.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: out[k] for k in ("copy_jf", "trained", "untrained")}, indent=2))


if __name__ == "__main__":
    main()
