"""`workbench demo` (what `make demo` runs): the whole chain on built-in synthetic data.

Generates the synthetic datasets (once), scores the trivial baselines, runs the demo sweep
(LGCNet and AutoRTNet searches at two latency weights, each retrained and benchmarked, plus a
hand-designed baseline, then the frontier), OVS-Net one-pass against its baselines, and writes
the offline reports. Every stage goes through the same notebooks a user runs.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

from widgets.report import build_report
from workbench import steps
from workbench.jsonio import read_json_object
from workbench.lab.execute import notebook_status, run_notebook
from workbench.lab.sweep import load_sweep, run_batch
from workbench.runs import RunDir

log = logging.getLogger(__name__)

SWEEP = Path(__file__).resolve().parents[2] / "notebooks" / "demo_sweep.yaml"

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
    roots = {}
    for kind, options in DATA.items():
        root = data_root / f"synth-{kind}"
        marker = root / ".complete"
        wanted = json.dumps({"seed": seed, **options}, sort_keys=True)
        if not (marker.exists() and marker.read_text() == wanted):
            if (root / "synth.json").exists():  # an earlier synthetic tree: replace it whole
                shutil.rmtree(root)
            t0 = time.time()
            steps.synth_data(kind, root, seed=seed, **options)
            marker.write_text(wanted)
            print(f"generated synth-{kind} in {root} ({time.time() - t0:.0f} s)", flush=True)
        roots[kind] = root
    return roots


def trivial_baselines(roots: dict[str, Path], out: Path) -> dict:
    """Most-frequent-class segmentation and first-frame-copy VOS: the floor for every number."""
    pred = out / "most_frequent_cityscapes"
    steps.most_frequent_class("cityscapes", roots["cityscapes"], "val", pred)
    seg = steps.evaluate_predictions("cityscapes", roots["cityscapes"], "val", pred)
    vos_out = out / "copy_first_frame_davis"
    steps.copy_first_frame(roots["davis"], "val", vos_out)
    vos = steps.evaluate_vos(roots["davis"], "val", vos_out)
    print(f"trivial baselines: most-frequent class mIoU {seg['miou']:.3f} (synth-cityscapes val); "
          f"first-frame copy J&F {vos['global']['J&F']:.3f} (synth-davis val)", flush=True)
    return {"most_frequent_miou": seg["miou"], "copy_first_frame_jf": vos["global"]["J&F"]}


def demo_sweep(out: Path, data_root: Path) -> dict:
    """The demo sweep with its output root and data root pointed at this demo's folders."""
    sweep = load_sweep(SWEEP)
    sweep["output_root"] = str((out / "sweep").resolve())
    city = str((data_root / "synth-cityscapes").resolve())
    for stage in sweep["stages"] + sweep.get("extra", []):
        stage["parameters"]["data_root"] = city
    return sweep


def print_searches(sweep_root: Path) -> None:
    for genotype in sorted(sweep_root.glob("*/search/genotype.json")):
        print(f"\n{genotype.parent}:\n{steps.describe_genotype(genotype)}")


def run_demo(out: Path, data_root: Path, seed: int = 0, device: str = "auto") -> dict:
    t0 = time.time()
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    roots = ensure_data(data_root, seed)
    summary = {"baselines": trivial_baselines(roots, out / "trivial_baselines")}

    print("\n== architecture search + retrain sweep (LGCNet, AutoRTNet x latency weights)", flush=True)
    batch = run_batch(demo_sweep(out, data_root))
    print_searches(out / "sweep")

    print("\n== one-pass video object segmentation (OVS-Net) vs offline and copy baselines", flush=True)
    video_dir = out / "video"
    try:
        if notebook_status(video_dir) == "finished":
            print(f"{video_dir}: already finished, skipped")
        else:
            run_notebook("video_segmentation", {
                "data_root": str(roots["davis"].resolve()), "synth_data": False, "method": "all",
                "epochs": 6, "steps_per_epoch": 20, "batch_size": 4, "crop_size": [240, 432],
                "device": device, "seed": seed, "resume": bool(RunDir(video_dir).own_entries())}, video_dir)
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
    print("\n" + steps.runs_table(out))
    warn_noisy(out)
    summary.update(batch=batch, reports=[str(r) for r in reports])
    print(f"\ndemo finished in {(time.time() - t0) / 60:.1f} min; runs under {out}")
    return summary


def warn_noisy(out: Path) -> list[str]:
    """Say which latency numbers of the demo were timed while other processes used the machine."""
    noisy = [str(row["run"]) for row in steps.list_runs(out) if row.get("noisy")]
    busy_tables = [str(p.parent.relative_to(out)) for p in sorted(out.rglob("latency_lut.json"))
                   if read_json_object(p).get("busy")]
    for what, names in (("latency measurements", noisy), ("latency tables", busy_tables)):
        if names:
            print(f"WARNING: {len(names)} {what} were timed while other processes used the machine "
                  f"(noisy; re-run on a quiet machine): {', '.join(names)}")
    return noisy + busy_tables


def _print_video(video_dir: Path) -> None:
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
