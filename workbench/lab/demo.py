"""`workbench demo` (what `make demo` runs): the whole chain on built-in synthetic data.

Generates the synthetic datasets (once), scores the trivial baselines, runs a search *to* a latency
target (AutoRTNet by selection by training, to 0.9x a hand-designed network's measured latency),
then the demo sweep (LGCNet and AutoRTNet searches at two latency weights, each retrained and
benchmarked, plus the hand-designed frontier, then the frontier over all of them), OVS-Net
one-pass against its baselines, and writes the offline reports. Every stage goes through the same
notebooks a user runs.
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
from workbench.nas.latency.timing import NOISY_SPREAD
from workbench.runs import RunDir
from workbench.study.bench import per_round_ratio

log = logging.getLogger(__name__)

SWEEP = Path(__file__).resolve().parents[2] / "notebooks" / "demo_sweep.yaml"
TARGETED = SWEEP.with_name("demo_targeted.yaml")

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


def demo_sweep(out: Path, data_root: Path, path: Path = SWEEP) -> dict:
    """A demo sweep file with its output root and data root pointed at this demo's folders."""
    sweep = load_sweep(path)
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

    print("\n== search to a latency target (AutoRTNet, selection by training) + retrain", flush=True)
    targeted = run_batch(demo_sweep(out, data_root, TARGETED))
    print("\n== architecture search + retrain sweep (LGCNet, AutoRTNet x latency weights; hand-designed "
          "frontier)", flush=True)
    batch = run_batch(demo_sweep(out, data_root) | {"frontier": False})  # its frontier follows the timing
    print_searches(out / "sweep")

    print("\n== every retrained network timed together (round-robin rounds), then the frontier", flush=True)
    point = out / "sweep" / load_sweep(TARGETED)["name"]
    baseline = (RunDir(point / "search").record().get("target") or {}).get("baseline")
    try:
        timing = steps.bench_study(out / "sweep", baselines=(baseline,) if baseline else ())
        steps.frontier({"roots": [str(out / "sweep")]}, out / "sweep" / "frontier")
    except Exception as exc:  # keep going: the runs' own benchmarks still stand
        print(f"timing the retrained networks together failed: {exc}")
        timing = None
    summary["target"] = print_target(point, timing)

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
    summary.update(batch=batch, targeted=targeted, reports=[str(r) for r in reports])
    print(f"\ndemo finished in {(time.time() - t0) / 60:.1f} min; runs under {out}")
    return summary


def print_target(point: Path, timing: dict | None) -> dict:
    """Where the targeted search landed. The miss that counts is the retrained network's latency
    against fraction x the baseline's, both from `timing` (one round-robin run: the median over
    rounds of their ratio), as `benchmarks/study_targets.py` scores a study; the search's own
    measured gate and the table's price are shown beside it."""
    search = RunDir(point / "search").record()
    target = search.get("target") or {}
    if search.get("status") != "finished" or not target:
        print(f"{point / 'search'}: the targeted search did not finish")
        return {}
    metrics = search.get("metrics") or {}
    result = {"target_ms": target["ms"], "baseline": target.get("baseline"), "fraction": target.get("fraction"),
              "price_miss_pct": metrics.get("target_miss_pct"), "gate_miss_pct": metrics.get("target_measured_miss_pct"),
              "miss_round_pct": None}
    rows = {row["run"]: row for row in (timing or {}).get("runs", [])}
    row, base = rows.get(f"{point.name}/retrain"), (timing or {}).get("baselines", {}).get(result["baseline"])
    if row and base:
        ratio = per_round_ratio(row["round_medians"], base["round_medians"])
        result.update(miss_round_pct=100 * (ratio / target["fraction"] - 1), latency_ms=row["latency_ms"],
                      baseline_ms=base["latency_ms"])
    what = f"{result['fraction']}x {result['baseline']}" if result["baseline"] else f"{result['target_ms']:.1f} ms"
    print(f"\ntarget: {what}; the kept network was priced "
          f"{result['price_miss_pct']:+.1f} % from it by the table"
          + (f", measured {result['gate_miss_pct']:+.1f} % by the search's gate" if result["gate_miss_pct"] is not None
             else ""))
    if result["miss_round_pct"] is not None:
        print(f"retrained, timed with the baseline in one run: {result['latency_ms']:.1f} ms against "
              f"{result['baseline_ms']:.1f} ms, {result['miss_round_pct']:+.1f} % from the target "
              f"({'within' if abs(result['miss_round_pct']) <= 10 else 'OUTSIDE'} ±10 %)")
    return result


def warn_noisy(out: Path) -> list[str]:
    """Say which latency numbers of the demo are flagged noisy, and why a number can be: another
    process used the machine, or its timing rounds spread more than NOISY_SPREAD (on a VM the
    machine's own speed drifts). One name per network: a retrain shows its newest benchmark."""
    noisy = [str(row["run"]) for row in steps.list_runs(out) if row.get("noisy") and row.get("kind") != "benchmark"]
    busy_tables = [str(p.parent.relative_to(out)) for p in sorted(out.rglob("latency_lut.json"))
                   if read_json_object(p).get("busy")]
    if noisy:
        print(f"WARNING: {len(noisy)} latency measurements are flagged noisy (another process used the machine, "
              f"or their rounds spread more than {NOISY_SPREAD}x); time them again on a quiet machine with "
              f"`workbench ablations bench {out / 'sweep'}`: {', '.join(noisy)}")
    if busy_tables:
        print(f"WARNING: {len(busy_tables)} latency tables were timed while other processes used the machine: "
              f"{', '.join(busy_tables)}")
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
