"""Proxy benchmark: learning curves (val mIoU against training minutes) of a few arms x seeds.

Picks the synthetic setting of the NAS-vs-hand-designed study: is the best network good enough
(val mIoU), are the seeds of one arm close enough (std), and what does one retrain cost? Each arm
is a retrain config (a genotype or a baseline plus any RetrainConfig field); every arm runs with
every seed, `--jobs` retrains at a time with `--threads` threads each. Runs are ordinary retrain
run directories under --out-dir: finished ones are read back, so a killed benchmark continues.

    python benchmarks/proxy_benchmark.py --kind camvid --size 128x256 --count 400 --val-count 80 \\
        --arm lgcnet=genotype:runs/search/genotype.json --arm fpn=baseline:fpn_mobilenetv3_small \\
        --set recipe=fast-v1 --set epochs=40 --set eval_every=5 --seeds 0 1 2 --jobs 2 --threads 1 \\
        --out-dir runs/proxy --json benchmarks/results/proxy_benchmark.json

The markdown summary (`--md`) states the machine, date, command and the per-arm numbers; it is
written between `<!-- measured:start -->` and `<!-- measured:end -->` markers, so the hand-written
text around them survives a re-run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import datetime, timezone
from pathlib import Path

from tqdm.auto import tqdm

from workbench.config import parse_overrides
from workbench.device import cpu_model
from workbench.runs import RunDir


def _retrain(cfg: dict, run_dir: str) -> dict:
    import logging

    from workbench.seg.retrain import run_retrain

    logging.basicConfig(level=logging.WARNING)
    rec = RunDir(run_dir).record() if Path(run_dir, "run_record.json").exists() else {}
    return run_retrain({**cfg, "resume": bool(rec)}, run_dir)


def curve(run_dir: Path) -> list[dict]:
    """[{"epoch", "minutes" (cumulative training time), "miou"}] of a run's val evaluations."""
    minutes, out = 0.0, []
    for row in RunDir(run_dir).metrics():
        if row.get("phase") == "train":
            minutes += row.get("epoch_time_s", 0.0) / 60
        elif row.get("phase") == "val":
            out.append({"epoch": row["epoch"], "minutes": round(minutes, 3), "miou": row["miou"]})
    return out


def summarize(arms: dict, seeds: list[int], out_dir: Path) -> dict:
    result = {}
    for name in arms:
        runs = [out_dir / f"{name}-s{seed}" for seed in seeds]
        recs = [RunDir(r).record() for r in runs]
        done = [(r, rec) for r, rec in zip(runs, recs) if rec.get("status") == "finished"]
        finals = [rec["metrics"]["miou"] for _, rec in done]
        curves = [curve(r) for r, _ in done]
        points = []
        for i in range(min((len(c) for c in curves), default=0)):
            vals = [c[i]["miou"] for c in curves]
            points.append({"epoch": curves[0][i]["epoch"],
                           "minutes": round(statistics.mean(c[i]["minutes"] for c in curves), 3),
                           "miou_mean": statistics.mean(vals),
                           "miou_std": statistics.stdev(vals) if len(vals) > 1 else None})
        result[name] = {
            "config": arms[name], "seeds": [rec.get("seed") for _, rec in done], "miou": finals,
            "miou_mean": statistics.mean(finals) if finals else None,
            "miou_std": statistics.stdev(finals) if len(finals) > 1 else None,
            "params_m": done[0][1]["metrics"].get("params_m") if done else None,
            "train_minutes": [round(c[-1]["minutes"], 2) for c in curves if c],
            "run_minutes": [round(rec.get("duration_s", 0) / 60, 2) for _, rec in done],
            "throughput": [rec.get("throughput") for _, rec in done], "curve": points,
            "recipe": done[0][1].get("recipe") if done else None,
            "teacher": done[0][1].get("teacher") if done else None}
        raw = [rec["metrics"].get("miou_raw") for _, rec in done]
        if raw and None not in raw:  # a weight-averaged arm: the raw weights' scores of the same runs
            result[name].update(miou_raw=raw, miou_raw_mean=statistics.mean(raw),
                                miou_raw_std=statistics.stdev(raw) if len(raw) > 1 else None)
    return result


def markdown(res: dict) -> str:
    lines = [f"### Measured {res['date']}", "",
             f"Machine: {res['machine']['cpu']}, {res['machine']['cores']} cores; {res['jobs']} retrains at a "
             f"time with {res['threads']} thread(s) each; load average before/after "
             f"{res['loadavg_before']} / {res['loadavg_after']}.", "",
             f"Command: `{res['command']}`", "",
             f"Data: synth-{res['data']['kind']} {res['data']['count']} train / {res['data']['val_count']} val "
             f"at {res['data']['size'][0]}x{res['data']['size'][1]}. Common settings: `{json.dumps(res['common'])}`. "
             f"Wall clock {res['wall_minutes']:.1f} min.", "",
             "| arm | params (M) | val mIoU mean | std over seeds | per seed | train min / retrain | run min / retrain |",
             "|---|---:|---:|---:|---|---:|---:|"]
    for name, a in res["arms"].items():
        if a["miou_mean"] is None:
            continue
        std = f"{a['miou_std']:.4f}" if a["miou_std"] is not None else "-"
        lines.append(f"| {name} | {a['params_m']:.3f} | {a['miou_mean']:.4f} | {std} | "
                     f"{', '.join(f'{v:.3f}' for v in a['miou'])} | "
                     f"{statistics.mean(a['train_minutes']):.2f} | {statistics.mean(a['run_minutes']):.2f} |")
        if a.get("miou_raw"):
            raw_std = f"{a['miou_raw_std']:.4f}" if a["miou_raw_std"] is not None else "-"
            lines.append(f"| {name}, raw weights | | {a['miou_raw_mean']:.4f} | {raw_std} | "
                         f"{', '.join(f'{v:.3f}' for v in a['miou_raw'])} | | |")
    lines += ["", "Learning curves (mean val mIoU over seeds against cumulative training minutes):", ""]
    for name, a in res["arms"].items():
        pts = ", ".join(f"{p['minutes']:.1f} min {p['miou_mean']:.3f}" for p in a["curve"])
        lines.append(f"- {name}: {pts}")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kind", default="camvid", choices=["camvid", "cityscapes"])
    p.add_argument("--size", default="128x256")
    p.add_argument("--count", type=int, default=400)
    p.add_argument("--val-count", type=int, default=80)
    p.add_argument("--data-root", default=None, help="default datasets/proxy-<kind>-<size>-<count>")
    p.add_argument("--arm", action="append", required=True,
                   help="NAME=genotype:PATH or NAME=baseline:NAME, optionally +key=value,key=value")
    p.add_argument("--set", action="append", default=[], help="RetrainConfig field for every arm")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out-dir", default="runs/proxy")
    p.add_argument("--json", default="benchmarks/results/proxy_benchmark.json")
    p.add_argument("--md", default=None, help="markdown summary (default: --json with .md)")
    args = p.parse_args()
    from workbench.data.synth import generate

    size = tuple(int(v) for v in args.size.split("x"))
    root = Path(args.data_root or f"datasets/proxy-{args.kind}-{args.size}-{args.count}")
    if not (root / "synth.json").exists():
        generate(args.kind, root, count=args.count, val_count=args.val_count, size=size, seed=0)
    common = {"dataset": args.kind, "data_root": str(root), "crop_size": list(size), "device": "cpu",
              "threads": args.threads, **parse_overrides(args.set)}
    arms = {}
    for spec in args.arm:
        name, rest = spec.split("=", 1)
        source, _, extra = rest.partition("+")
        kind, value = source.split(":", 1)
        arms[name] = {kind: value, **parse_overrides([e for e in extra.split(",") if e])}
    out_dir = Path(args.out_dir)
    t0, load_before = time.time(), os.getloadavg()
    tasks = [({**common, **arm, "seed": seed}, str(out_dir / f"{name}-s{seed}"))
             for seed in args.seeds for name, arm in arms.items()]
    tasks = [t for t in tasks if RunDir(t[1]).record().get("status") != "finished"]
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(_retrain, cfg, run_dir): run_dir for cfg, run_dir in tasks}
        for fut in tqdm(as_completed(futures), total=len(futures), desc="retrains"):
            try:
                fut.result()
            except Exception as exc:  # one failed run does not stop the others
                print(f"{futures[fut]}: {exc.__class__.__name__}: {exc}", file=sys.stderr)
    res = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "machine": {"cpu": cpu_model(), "cores": os.cpu_count()}, "jobs": args.jobs, "threads": args.threads,
           "command": "python " + " ".join(sys.argv), "loadavg_before": [round(v, 2) for v in load_before],
           "loadavg_after": [round(v, 2) for v in os.getloadavg()], "wall_minutes": (time.time() - t0) / 60,
           "data": {"kind": args.kind, "root": str(root), "size": list(size), "count": args.count,
                    "val_count": args.val_count},
           "common": common, "arms": summarize(arms, args.seeds, out_dir)}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(res, indent=1) + "\n")
    md = Path(args.md or Path(args.json).with_suffix(".md"))
    write_measured(md, markdown(res))
    print(markdown(res))


START, END = "<!-- measured:start -->", "<!-- measured:end -->"


def write_measured(path: Path, text: str) -> None:
    """Put `text` between the measured-section markers of `path`; hand-written text outside the
    markers (the setting and its justification) is kept."""
    block = f"{START}\n{text}{END}\n"
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    if START in old and END in old:
        head, rest = old.split(START, 1)
        new = head + block + rest.split(END, 1)[1].lstrip("\n")
    else:
        new = old + ("\n" if old else "") + block
    path.write_text(new, encoding="utf-8")


if __name__ == "__main__":
    main()
