"""`workbench notebook run | batch | report | runs | ablations | demo`: the lab's commands."""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

from workbench.cli.args import size
from workbench.config import parse_value


def _collect_params(args: argparse.Namespace) -> dict[str, Any]:
    from workbench.config import read_yaml_mapping

    values: dict[str, Any] = read_yaml_mapping(args.file, "parameters") if args.file else {}
    for key, value in args.param or []:
        values[key] = "" if value == "" else parse_value(value)  # -p baseline '' is an empty string
    values.update({flag: True for flag in ("resume", "overwrite") if getattr(args, flag)})
    return values


def _cmd_run(args: argparse.Namespace) -> int:
    from workbench.lab.execute import run_notebook

    out = run_notebook(args.name, _collect_params(args), args.output_dir, log_output=args.log_output)
    print(f"executed notebook: {out}")
    return 0


def _cmd_batch(args: argparse.Namespace) -> int:
    from workbench.lab.sweep import run_batch

    summary = run_batch(args.sweep, dry_run=args.dry_run, engine=args.engine, jobs=args.jobs, address=args.address)
    return 1 if summary["failed"] else 0


def _cmd_report(args: argparse.Namespace) -> int:
    from widgets.report import build_report

    print(f"report: {build_report(args.target, args.out)}")
    return 0


def _cmd_runs(args: argparse.Namespace) -> int:
    from workbench import steps

    print(steps.runs_table(args.dir))
    return 0


def _cmd_summarize(args: argparse.Namespace) -> int:
    from workbench.lab.study import summarize_study

    summary = summarize_study(args.root, args.json, args.markdown, k=args.k,
                              html_out=None if args.no_html else args.html or Path(args.root) / "ablations.html")
    for c in summary["claims"]:
        print(f"{c['verdict']:>13}  {c['title']}")
    print(f"{summary['runs']} runs in {len(summary['arms'])} arms; "
          f"{args.markdown or Path(args.root) / 'ablations.md'}")
    return 0


def _cmd_study_bench(args: argparse.Namespace) -> int:
    from workbench import steps

    out = steps.bench_study(args.root, args.size, args.threads, args.rounds, args.repeats, args.warmup, args.device,
                            tuple(args.baseline or ()))
    for row in out["runs"]:
        print(f"{row['latency_ms']:9.2f} ms  spread {row['spread']:.2f}{'  NOISY' if row['noisy'] else ''}  {row['run']}")
    for name, b in out["baselines"].items():
        print(f"{b['latency_ms']:9.2f} ms  baseline {name} (same rounds)")
    print(f"{out['networks']} networks, {len(out['runs'])} retrains timed together on {out['cpu']} "
          f"({out['threads']} threads, other load {out['other_load']}); {Path(out['root']) / 'study_latency.json'}")
    drift = out["round_drift"]
    print(f"rounds: slowest {max(drift):.2f}x, median {statistics.median(drift):.2f}x the networks' fastest "
          f"(geometric mean over networks); {out['noisy_retrains']} of {len(out['runs'])} retrains flagged NOISY")
    return 0


def _cmd_study(args: argparse.Namespace) -> int:
    from workbench.lab.study import run_study

    result = run_study(args.study, only=args.only, dry_run=args.dry_run, k=args.k, engine=args.engine, jobs=args.jobs,
                       address=args.address)
    return 1 if (result.get("runs") or {}).get("failed") else 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from workbench.lab.demo import run_demo

    run_demo(Path(args.out), Path(args.data_root), seed=args.seed, device=args.device)
    return 0


def _engine_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", default="serial", choices=["serial", "local", "ray"],
                   help="serial (default), local (--jobs processes on this machine) or ray (tasks on a Ray cluster)")
    p.add_argument("--jobs", type=int, default=1, help="local engine: runs at once (the cores are split)")
    p.add_argument("--address", help="ray engine: join this cluster (default: start Ray on this machine)")


def register(sub: argparse._SubParsersAction) -> None:
    from workbench.lab.params import NOTEBOOKS

    nb = sub.add_parser("notebook", help="run a parameterized notebook through papermill")
    nb_sub = nb.add_subparsers(dest="notebook_command", metavar="ACTION")
    run = nb_sub.add_parser("run", help="validate parameters, execute the notebook into a run directory")
    run.add_argument("name", help=f"notebook name ({', '.join(NOTEBOOKS)}) or path to an .ipynb")
    run.add_argument("-p", "--param", nargs=2, action="append", metavar=("KEY", "VALUE"),
                     help="parameter value (YAML syntax: 2, 0.1, true, [1, 2]); repeatable")
    run.add_argument("-f", "--file", help="YAML file of parameters (-p values override it)")
    run.add_argument("--output-dir", required=True, help="run directory (the notebook's output_dir)")
    run.add_argument("--resume", action="store_true", help="continue the run in --output-dir (parameter resume)")
    run.add_argument("--overwrite", action="store_true", help="replace the run in --output-dir (parameter overwrite)")
    run.add_argument("--log-output", action="store_true", help="echo cell output while running")
    run.set_defaults(func=_cmd_run)
    nb.set_defaults(func=lambda a: nb.print_help() or 1)

    batch = sub.add_parser("batch", help="run a grid of notebooks from a sweep YAML, then a frontier")
    batch.add_argument("sweep", help="sweep YAML (see notebooks/sweep_example.yaml)")
    batch.add_argument("--dry-run", action="store_true", help="only list the runs the sweep would make")
    _engine_args(batch)
    batch.set_defaults(func=_cmd_batch)

    report = sub.add_parser("report", help="self-contained offline HTML report of a run or notebook")
    report.add_argument("target", help="run directory, folder of runs, or executed notebook")
    report.add_argument("-o", "--out", help="HTML file (default: report.html in the run directory)")
    report.set_defaults(func=_cmd_report)

    runs = sub.add_parser("runs", help="table of runs under a folder")
    runs.add_argument("dir", nargs="?", default="runs", help="folder to scan (default: runs)")
    runs.set_defaults(func=_cmd_runs)

    p = sub.add_parser("ablations", help="ablation study of the papers' claims: run the sweeps, summarize")
    p_sub = p.add_subparsers(dest="ablations_command", metavar="ACTION")
    s = p_sub.add_parser("summarize", help="aggregate seeds per arm and judge every claim (ablations.json/.md)")
    s.add_argument("root", help="folder of the study's run directories (e.g. runs/ablations)")
    s.add_argument("--json", help="summary JSON (default: ROOT/ablations.json)")
    s.add_argument("--markdown", help="markdown tables (default: ROOT/ablations.md)")
    s.add_argument("--html", help="offline HTML report (default: ROOT/ablations.html)")
    s.add_argument("--no-html", action="store_true", help="skip the HTML report")
    s.add_argument("--k", type=float, default=2.0, help="a difference counts beyond k standard errors (default 2)")
    s.set_defaults(func=_cmd_summarize)
    b = p_sub.add_parser("bench", help="time every retrained network of a study together, round-robin (quietly)")
    b.add_argument("root", help="folder of the study's run directories (e.g. runs/ablations)")
    b.add_argument("--size", type=size, help="HxW (default: the retrains' bench_size)")
    b.add_argument("--threads", type=int, help="intra-op threads (default: torch's)")
    b.add_argument("--rounds", type=int, default=7, help="rounds over all networks; each keeps its fastest (default 7)")
    b.add_argument("--repeats", type=int, default=10, help="timed runs per network and round (default 10)")
    b.add_argument("--warmup", type=int, default=3, help="untimed runs per network and round (default 3)")
    b.add_argument("--device", default="cpu")
    b.add_argument("--baseline", action="append", help="also time this hand-designed network in the same rounds "
                   "(e.g. the one a latency target is a fraction of); repeat")
    b.set_defaults(func=_cmd_study_bench)
    r = p_sub.add_parser("run", help="run a study file (benchmarks/ablations.yaml): data, sweeps, summary")
    r.add_argument("study", help="study YAML (output_root, data, sweeps)")
    r.add_argument("--only", nargs="+", metavar="ID", help="run only these sweeps")
    r.add_argument("--dry-run", action="store_true", help="list the notebook runs without running them")
    r.add_argument("--k", type=float, default=2.0, help="noise threshold in standard errors (default 2)")
    _engine_args(r)
    r.set_defaults(func=_cmd_study)
    p.set_defaults(func=lambda a: p.print_help() or 1)

    d = sub.add_parser("demo", help="run the main job end to end on the synthetic data")
    d.add_argument("--out", default="demo_runs", help="where the demo's run directories go")
    d.add_argument("--data-root", default="datasets", help="where synthetic datasets are generated")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--device", default="auto")
    d.set_defaults(func=_cmd_demo)
