"""`workbench demo`: the main job end to end on the built-in synthetic data.

Every stage runs the same notebooks a user runs (through papermill, as `workbench notebook run`
and `workbench batch` do), so the demo exercises exactly the user-facing path:
synthetic data -> trivial baselines -> latency-weight sweep of LGCNet and AutoRTNet searches,
each retrained, beside a hand-designed baseline -> frontier -> one-pass video segmentation
against its baselines -> offline HTML reports.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from pathlib import Path

import yaml

from workbench.config import load_yaml

log = logging.getLogger("workbench.demo")

SWEEP = Path(__file__).resolve().parents[1] / "notebooks" / "demo_sweep.yaml"

DATA = {
    "cityscapes": dict(count=160, size=(256, 512), val_count=40),
    "camvid": dict(count=40, size=(240, 320), val_count=12),
    "davis": dict(count=8, size=(480, 854), frames=20, val_count=4),
}


def ensure_data(data_root: Path, seed: int = 0) -> dict[str, Path]:
    """Generate the three synthetic datasets unless the same ones are already there.

    A marker records the generation options, so a tree made with other options (another size
    or count) is regenerated rather than silently reused.
    """
    from workbench.steps import synth_data

    roots = {}
    for kind, options in DATA.items():
        root = data_root / f"synth-{kind}"
        marker = root / ".complete"
        wanted = json.dumps({"seed": seed, **options}, sort_keys=True)
        if not (marker.exists() and marker.read_text() == wanted):
            if (root / "synth.json").exists():  # an earlier synthetic tree: replace it whole
                shutil.rmtree(root)
            t0 = time.time()
            synth_data(kind, root, seed=seed, **options)
            marker.write_text(wanted)
            print(f"generated synth-{kind} in {root} ({time.time() - t0:.0f} s)", flush=True)
        roots[kind] = root
    return roots


def trivial_baselines(roots: dict[str, Path], out: Path) -> dict:
    """Most-frequent-class segmentation and first-frame-copy VOS: the floor for every number."""
    from workbench.metrics.baselines import copy_first_frame, most_frequent_class
    from workbench.metrics.davis import evaluate_vos
    from workbench.metrics.segmentation import evaluate_predictions

    pred = out / "most_frequent_cityscapes"
    most_frequent_class("cityscapes", roots["cityscapes"], "val", pred)
    seg = evaluate_predictions("cityscapes", roots["cityscapes"], "val", pred)
    vos_out = out / "copy_first_frame_davis"
    copy_first_frame(roots["davis"], "val", vos_out)
    vos = evaluate_vos(roots["davis"], "val", vos_out)
    print(f"trivial baselines: most-frequent class mIoU {seg['miou']:.3f} (synth-cityscapes val); "
          f"first-frame copy J&F {vos['global']['J&F']:.3f} (synth-davis val)", flush=True)
    return {"most_frequent_miou": seg["miou"], "copy_first_frame_jf": vos["global"]["J&F"]}


def _sweep_file(out: Path, data_root: Path) -> Path:
    """The demo sweep with its output root and data root pointed at this demo's folders."""
    sweep = load_yaml(SWEEP.read_text())
    sweep["output_root"] = str((out / "sweep").resolve())
    city = str((data_root / "synth-cityscapes").resolve())
    for stage in sweep["stages"] + sweep.get("extra", []):
        stage["parameters"]["data_root"] = city
    path = out / "demo_sweep.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


def print_searches(sweep_root: Path) -> None:
    from workbench.nas.genotypes import load_genotype

    for genotype in sorted(sweep_root.glob("*/search/genotype.json")):
        print(f"\n{genotype.parent}:\n{load_genotype(genotype)}")


def run_demo(out: Path, data_root: Path, seed: int = 0, device: str = "auto") -> dict:
    from workbench.notebooks import format_table, list_runs, run_batch, run_notebook
    from workbench.report import build_report

    t0 = time.time()
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    roots = ensure_data(data_root, seed)
    summary = {"baselines": trivial_baselines(roots, out / "trivial_baselines")}

    print("\n== architecture search + retrain sweep (LGCNet, AutoRTNet x latency weights)", flush=True)
    batch = run_batch(_sweep_file(out, data_root))
    print_searches(out / "sweep")

    print("\n== one-pass video object segmentation (OVS-Net) vs offline and copy baselines", flush=True)
    video_dir = out / "video"
    try:
        run_notebook("video_segmentation", {
            "data_root": str(roots["davis"].resolve()), "synth_data": False, "method": "all",
            "epochs": 6, "iters_per_epoch": 20, "batch_size": 4, "crop": [240, 432],
            "device": device, "seed": seed}, video_dir)
    except Exception as exc:  # keep going: the reports of the other runs are still useful
        print(f"video segmentation failed: {exc}")
    _print_video(video_dir)

    print("\n== reports", flush=True)
    reports = []
    targets = sorted((out / "sweep").glob("*/search")) + [out / "sweep" / "frontier", video_dir]
    for target in targets:
        if (target / "run_record.json").exists():
            try:
                reports.append(build_report(target))
            except Exception as exc:
                print(f"report for {target} failed: {exc}")
    for report in reports:
        print(f"report: {report}")
    print("\n" + format_table(list_runs(out)))
    summary.update(batch=batch, reports=[str(r) for r in reports])
    print(f"\ndemo finished in {(time.time() - t0) / 60:.1f} min; runs under {out}")
    return summary


def _print_video(video_dir: Path) -> None:
    from workbench.runs import RunDir

    rec = RunDir(video_dir).record()
    methods = rec.get("methods_results") or {}
    if not methods:
        return
    print(f"{'method':10s} {'J&F':>6s} {'J':>6s} {'F':>6s} {'fps':>7s}")
    def num(value, width: int, digits: int) -> str:
        return f"{value:{width}.{digits}f}" if isinstance(value, (int, float)) else f"{'-':>{width}s}"

    for name, m in methods.items():
        print(f"{name:10s} {num(m.get('jf'), 6, 3)} {num(m.get('j_mean'), 6, 3)} "
              f"{num(m.get('f_mean'), 6, 3)} {num(m.get('fps'), 7, 1)}")


def _cmd(args: argparse.Namespace) -> int:
    run_demo(Path(args.out), Path(args.data_root), seed=args.seed, device=args.device)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the main job end to end on the synthetic data")
    p.add_argument("--out", default="demo_runs", help="where the demo's run directories go")
    p.add_argument("--data-root", default="datasets", help="where synthetic datasets are generated")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=_cmd)
