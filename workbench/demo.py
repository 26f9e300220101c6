"""`workbench demo`: the main job end to end on the built-in synthetic data.

Each stage is a call into `workbench.steps` (or a notebook run through papermill once the
notebooks exist), so the demo exercises exactly what a user runs.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

log = logging.getLogger("workbench.demo")

DATA = {
    "cityscapes": dict(count=120, size=(256, 512), val_count=30),
    "camvid": dict(count=60, size=(240, 320), val_count=20),
    "davis": dict(count=6, size=(480, 854), frames=24, val_count=4),
}


def ensure_data(data_root: Path, seed: int = 0) -> dict[str, Path]:
    """Generate the three synthetic datasets unless they are already there."""
    from workbench.steps import synth_data

    roots = {}
    for kind, options in DATA.items():
        root = data_root / f"synth-{kind}"
        if not (root / ".complete").exists():
            log.info("generating synth-%s in %s", kind, root)
            synth_data(kind, root, seed=seed, **options)
            (root / ".complete").write_text("ok\n")
        roots[kind] = root
    return roots


def trivial_baselines(roots: dict[str, Path], out: Path) -> dict:
    """Most-frequent-class segmentation and first-frame-copy VOS: the floor for every number."""
    from workbench.metrics.baselines import copy_first_frame, most_frequent_class
    from workbench.metrics.davis import evaluate_vos
    from workbench.metrics.segmentation import evaluate_predictions

    results = {}
    pred = out / "most_frequent_cityscapes"
    most_frequent_class("cityscapes", roots["cityscapes"], "val", pred)
    seg = evaluate_predictions("cityscapes", roots["cityscapes"], "val", pred)
    results["most_frequent_cityscapes_miou"] = seg["miou"]
    vos_out = out / "copy_first_frame_davis"
    copy_first_frame(roots["davis"], "val", vos_out)
    vos = evaluate_vos(roots["davis"], "val", vos_out)
    results["copy_first_frame_davis_jf"] = vos["global"]["J&F"]
    print(f"trivial baselines: most-frequent class mIoU {seg['miou']:.3f} (synth-cityscapes val); "
          f"first-frame copy J&F {vos['global']['J&F']:.3f} (synth-davis val)")
    return results


def run_demo(out: Path, data_root: Path, seed: int = 0) -> dict:
    t0 = time.time()
    out.mkdir(parents=True, exist_ok=True)
    roots = ensure_data(data_root, seed)
    summary = {"baselines": trivial_baselines(roots, out / "baselines")}
    print(f"demo finished in {time.time() - t0:.0f} s; runs under {out}")
    return summary


def _cmd(args: argparse.Namespace) -> int:
    run_demo(Path(args.out), Path(args.data_root), seed=args.seed)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the main job end to end on the synthetic data")
    p.add_argument("--out", default="demo_runs", help="where the demo's run directories go")
    p.add_argument("--data-root", default="datasets", help="where synthetic datasets are generated")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd)
