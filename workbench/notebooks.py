"""Parameterized notebooks as a front door: `workbench notebook run`, `batch`, `report`, `runs`.

A notebook declares its parameters in one cell tagged `parameters`, one annotated assignment a
line with a help comment (`epochs: int = 2  # search epochs [1, 1000]`). A trailing `[lo, hi]`
in the comment is an inclusive range (either side may be empty), a trailing `{a, b, c}` the
allowed values. Parameters are checked here, against that cell, before any kernel starts:
papermill itself only warns on unknown names and passes tuples, paths and numpy values through
as whatever its translator makes of them.
"""

from __future__ import annotations

import argparse
import ast
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.config import coerce, load_yaml, parse_value
from workbench.errors import ConfigError, WorkbenchError

log = logging.getLogger(__name__)

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = ("search", "retrain", "video_segmentation", "frontier", "ablations")
_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "tuple": tuple,
          "dict": dict, "None": None, "Any": Any}


class NotebookError(WorkbenchError):
    """A notebook is missing, malformed, or one of its cells failed."""


@dataclass
class Parameter:
    name: str
    annotation: str
    default: Any
    help: str
    choices: list[str] | None = None
    low: float | None = None
    high: float | None = None

    @property
    def type(self) -> Any:
        try:
            return eval(self.annotation, {"__builtins__": {}}, dict(_TYPES))  # noqa: S307 (names only)
        except Exception:
            raise NotebookError(f"parameter {self.name}: unsupported annotation {self.annotation!r}") from None


def resolve_notebook(name: str | Path) -> Path:
    """'search' -> notebooks/search.ipynb; a path to an .ipynb is taken as is."""
    path = Path(name)
    if path.suffix != ".ipynb":
        path = NOTEBOOK_DIR / f"{name}.ipynb"
    if not path.is_file():
        raise NotebookError(f"{path}: no such notebook (built-in: {', '.join(NOTEBOOKS)})")
    return path


def _parse_help(comment: str) -> tuple[str, list[str] | None, float | None, float | None]:
    text, choices, low, high = comment.strip(), None, None, None
    m = re.search(r"\{\s*([\w.\-]+(?:\s*,\s*[\w.\-]+)*)\s*\}\s*$", text)
    if m:
        choices = [c.strip() for c in m.group(1).split(",") if c.strip()]
    m = re.search(r"\[\s*([-+0-9.eE]*)\s*,\s*([-+0-9.eE]*)\s*\]\s*$", text)
    if m:
        low = float(m.group(1)) if m.group(1) else None
        high = float(m.group(2)) if m.group(2) else None
    return text, choices, low, high


def parse_parameters(notebook: str | Path) -> dict[str, Parameter]:
    """The annotated assignments of the cell tagged `parameters`, with defaults, help and bounds."""
    import nbformat

    path = resolve_notebook(notebook)
    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise NotebookError(f"{path}: expected one cell tagged 'parameters', found {len(cells)}")
    source = cells[0].source
    lines = source.splitlines()
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise NotebookError(f"{path}: parameters cell line {exc.lineno}: {exc.msg}") from None
    params = {}
    for node in tree.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value):
            continue
        name = node.target.id
        try:
            default = ast.literal_eval(node.value)
        except ValueError:
            raise NotebookError(f"{path}: parameter {name}: default must be a literal") from None
        line = lines[node.end_lineno - 1][node.end_col_offset:]
        comment = line.split("#", 1)[1] if "#" in line else ""
        text, choices, low, high = _parse_help(comment)
        params[name] = Parameter(name, ast.get_source_segment(source, node.annotation), default, text,
                                 choices, low, high)
    return params


def _plain(value: Any) -> Any:
    """Tuples -> lists, paths -> str, numpy scalars -> python: what papermill can inject faithfully."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    return value


def validate_parameters(notebook: str | Path, values: dict[str, Any]) -> dict[str, Any]:
    """Check values against the notebook's parameters cell; return them normalized for papermill."""
    params = parse_parameters(notebook)
    name = resolve_notebook(notebook).name
    unknown = sorted(set(values) - set(params))
    if unknown:
        raise ConfigError(f"{name}: unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                          f"(known: {', '.join(params)})")
    out = {}
    for key, value in values.items():
        p = params[key]
        kind = p.type
        try:
            coerced = coerce(key, value, kind)
        except ConfigError as exc:
            raise ConfigError(f"{name}: {exc}") from None
        if kind in (list, dict) and not isinstance(coerced, (list, tuple) if kind is list else dict):
            raise ConfigError(f"{name}: {key} expected a {kind.__name__}, got {value!r}")
        if p.choices and coerced is not None and str(coerced) not in p.choices:
            raise ConfigError(f"{name}: {key} must be one of {', '.join(p.choices)}, got {coerced!r}")
        if isinstance(coerced, (int, float)) and not isinstance(coerced, bool):
            if p.low is not None and coerced < p.low:
                raise ConfigError(f"{name}: {key} must be >= {p.low:g}, got {coerced}")
            if p.high is not None and coerced > p.high:
                raise ConfigError(f"{name}: {key} must be <= {p.high:g}, got {coerced}")
        out[key] = _plain(coerced)
    return out


def run_notebook(notebook: str | Path, parameters: dict[str, Any] | None, output_dir: str | Path, *,
                 output_notebook: str | Path | None = None, kernel_name: str = "python3",
                 log_output: bool = False, timeout: int | None = None) -> Path:
    """Validate, then execute through papermill (widget state not stored) into output_dir.

    Returns the executed notebook. A failing cell raises NotebookError naming the cell and the
    error; the partial notebook is kept.
    """
    import papermill as pm

    from workbench.runs import RunDir

    path = resolve_notebook(notebook)
    params = validate_parameters(path, dict(parameters or {}))
    output_dir = Path(output_dir).resolve()
    declared = parse_parameters(path)
    if "output_dir" in declared:
        params["output_dir"] = str(output_dir)
    if {"resume", "overwrite"} <= set(declared) and not (params.get("resume") or params.get("overwrite")):
        RunDir(output_dir).require_empty()  # before papermill replaces the executed notebook
    output_dir.mkdir(parents=True, exist_ok=True)
    out = Path(output_notebook) if output_notebook else output_dir / path.name
    log.info("running %s -> %s", path.name, out)
    saved_tqdm = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"  # the kernel inherits it: no progress-bar widgets in batch outputs
    try:
        pm.execute_notebook(str(path), str(out), parameters=params, kernel_name=kernel_name,
                            progress_bar=False, log_output=log_output, store_widget_state=False,
                            execution_timeout=timeout)
    except pm.PapermillExecutionError as exc:
        evalue = str(exc.evalue).strip().splitlines()[-1] if str(exc.evalue).strip() else ""
        try:  # the failing cell's first line, from the partial notebook papermill kept
            import nbformat

            failed = next(c for c in nbformat.read(out, as_version=4).cells
                          if any(o.get("output_type") == "error" for o in c.get("outputs", [])))
            first = failed.source.strip().splitlines()[0]
        except Exception:
            first = ""
        snippet = f" `{first[:60]}`" if first else ""
        raise NotebookError(f"{path.name}: cell {exc.cell_index}{snippet} (execution count {exc.exec_count}) "
                            f"failed: {exc.ename}: {evalue}; partial notebook kept at {out}") from None
    finally:
        if saved_tqdm is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = saved_tqdm
    return out


def notebook_status(output_dir: str | Path) -> str:
    """'finished' when the run record says so and no executed notebook in the folder failed."""
    import nbformat

    from workbench.runs import RunDir

    run = RunDir(output_dir)
    status = run.record().get("status", "missing")
    for nb_path in Path(output_dir).glob("*.ipynb"):
        try:
            meta = nbformat.read(nb_path, as_version=4).metadata.get("papermill", {})
        except Exception:
            return "failed"
        if meta.get("exception"):
            return "failed"
    return status


# -- batch sweeps ------------------------------------------------------------------------------------
def _substitute(value: Any, env: dict[str, Any]) -> Any:
    """'{preset}' -> the grid value itself; 'runs/{preset}-x' -> formatted text; recursive."""
    if isinstance(value, str):
        m = re.fullmatch(r"\{(\w+)\}", value)
        if m and m.group(1) in env:
            return env[m.group(1)]
        try:
            return value.format(**env) if "{" in value else value
        except KeyError as exc:
            raise ConfigError(f"sweep: unknown placeholder {{{exc.args[0]}}} in {value!r}") from None
    if isinstance(value, list):
        return [_substitute(v, env) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, env) for k, v in value.items()}
    return value


def _inside(root: Path, *parts: str) -> Path:
    """root/parts, refused when a part is absolute or climbs out of root with '..'."""
    path = root.joinpath(*parts)
    if any(Path(p).is_absolute() or ".." in Path(p).parts for p in parts) or not path.resolve().is_relative_to(root):
        raise ConfigError(f"sweep: run name {'/'.join(parts)!r} leaves output_root {root}; use a relative name "
                          "without '..'")
    return path


def _check_grid_keys(keys: list[str], stages: list[dict], sweep: dict) -> None:
    """Every grid key must reach a run: a parameter of some stage, or a {placeholder} in a stage's
    parameters. A misspelt key would otherwise be dropped silently, and the sweep would plan
    identical runs."""
    import json

    declared = set()
    for i, stage in enumerate(stages):
        declared |= set(parse_parameters(stage.get("notebook", stage.get("name") or f"stage{i}")))
    text = json.dumps(stages, default=str)  # used only in the run name, a key changes no run
    unused = [k for k in keys if k not in declared and "{" + k + "}" not in text]
    if unused:
        raise ConfigError(f"sweep: grid key{'s' if len(unused) > 1 else ''} {', '.join(unused)} is neither a "
                          f"parameter of any stage nor a {{placeholder}} in a stage's parameters (parameters: "
                          f"{', '.join(sorted(declared))})")


def plan_sweep(sweep: dict, base: Path) -> list[dict]:
    """Every notebook run of a sweep, in order, with validated parameters and its run directory.

    Each grid point runs the stages in order; a grid key goes to every stage whose notebook
    declares that parameter, and `{stage}` placeholders give an earlier stage's run directory.
    """
    import itertools

    known = {"output_root", "grid", "stages", "extra", "name", "frontier"}
    unknown = sorted(set(sweep) - known)
    if unknown:
        raise ConfigError(f"sweep: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                          f"(known: {', '.join(sorted(known))})")
    root = (base / sweep.get("output_root", "runs/sweep")).resolve()
    grid = sweep.get("grid") or {}
    stages = sweep.get("stages") or []
    if not stages and not sweep.get("extra"):
        raise ConfigError("sweep: give at least one stage (stages: [{notebook: search, ...}])")
    keys = list(grid)
    _check_grid_keys(keys, stages, sweep)
    runs, points = [], {}
    for values in itertools.product(*(grid[k] if isinstance(grid[k], list) else [grid[k]] for k in keys)):
        env = dict(zip(keys, values))
        point = str(_substitute(sweep.get("name") or "-".join(f"{k}{v}" for k, v in env.items()) or "run", env))
        if point in points:
            raise ConfigError(f"sweep: name {sweep.get('name')!r} gives the grid points {points[point]} and {env} "
                              f"the same run directory {point!r}; put every grid key in the name")
        points[point] = env
        for i, stage in enumerate(stages):
            stage_name = stage.get("name") or str(stage.get("notebook", f"stage{i}"))
            notebook = resolve_notebook(stage.get("notebook", stage_name))
            declared = parse_parameters(notebook)
            params = {k: v for k, v in env.items() if k in declared}
            params.update(_substitute(stage.get("parameters") or {}, env))
            out = _inside(root, point, stage_name)
            runs.append({"point": str(point), "stage": stage_name, "notebook": notebook, "output_dir": out,
                         "parameters": validate_parameters(notebook, params)})
            env[stage_name] = str(out)
    for extra in sweep.get("extra") or []:
        notebook = resolve_notebook(extra["notebook"])
        name = extra.get("name") or notebook.stem
        if name in points:
            raise ConfigError(f"sweep: extra run {name!r} has the name of a grid point")
        points[name] = {}
        runs.append({"point": name, "stage": notebook.stem, "notebook": notebook, "output_dir": _inside(root, name),
                     "parameters": validate_parameters(notebook, extra.get("parameters") or {})})
    return runs


def run_batch(sweep_path: str | Path, dry_run: bool = False) -> dict:
    """Run a sweep: skip finished runs, continue past failures, then a frontier over all of them."""
    import yaml

    from workbench.frontier import run_frontier
    from workbench.runs import RunDir

    sweep_path = Path(sweep_path)
    try:
        sweep = load_yaml(sweep_path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{sweep_path}: cannot read sweep ({exc.__class__.__name__})") from None
    plan = plan_sweep(sweep, Path.cwd())
    summary = {"finished": [], "skipped": [], "failed": [], "blocked": [], "frontier": None}
    failed_points: set[str] = set()
    for i, item in enumerate(plan, 1):
        label = f"[{i}/{len(plan)}] {item['point']}/{item['stage']}"
        if dry_run:
            print(f"{label}: {item['notebook'].name} -> {item['output_dir']} {item['parameters']}")
            continue
        if item["point"] in failed_points:
            print(f"{label}: not run (an earlier stage of this point failed)")
            summary["blocked"].append(str(item["output_dir"]))
            continue
        status = notebook_status(item["output_dir"])
        if status == "finished":
            print(f"{label}: already finished, skipped")
            summary["skipped"].append(str(item["output_dir"]))
            continue
        params = dict(item["parameters"])
        if RunDir(item["output_dir"]).own_entries() and "resume" in parse_parameters(item["notebook"]):
            print(f"{label}: resuming the earlier {status} run")
            params["resume"] = True
        t0 = time.time()
        try:
            run_notebook(item["notebook"], params, item["output_dir"])
        except WorkbenchError as exc:
            print(f"{label}: FAILED after {time.time() - t0:.0f} s: {exc}")
            summary["failed"].append(str(item["output_dir"]))
            failed_points.add(item["point"])
            continue
        print(f"{label}: finished in {time.time() - t0:.0f} s")
        summary["finished"].append(str(item["output_dir"]))
    root = (Path.cwd() / sweep.get("output_root", "runs/sweep")).resolve()
    if not dry_run and sweep.get("frontier", True):
        run_frontier({"roots": [str(root)]}, root / "frontier")
        summary["frontier"] = str(root / "frontier" / "frontier.json")
        print(f"frontier: {summary['frontier']}")
    print(f"batch: {len(summary['finished'])} finished, {len(summary['skipped'])} skipped, "
          f"{len(summary['failed'])} failed, {len(summary['blocked'])} not run")
    return summary


# -- runs index -------------------------------------------------------------------------------------
RUN_COLUMNS = ("run", "status", "kind", "preset", "latency_weight", "seed", "dataset", "miou", "val_miou",
               "latency_ms", "expected_ms", "jf", "duration_s", "problem")


def _alive(pid: Any) -> bool:
    import os

    try:
        os.kill(int(pid), 0)
    except (OSError, TypeError, ValueError):
        return False
    return True


def list_runs(root: str | Path) -> list[dict]:
    """One row per run directory under root (a 'running' run whose process is gone is 'stale')."""
    from workbench.runs import iter_runs

    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"{root}: no such folder")
    rows = []
    for run in iter_runs(root):
        name = str(run.path.relative_to(root)) if run.path != root else run.path.name
        try:
            rec = run.record()
        except WorkbenchError as exc:  # one unreadable run; the others are still listed
            rows.append({"run": name, "status": "unreadable", "problem": str(exc)})
            continue
        metrics = rec.get("metrics") if isinstance(rec.get("metrics"), dict) else {}
        status = rec.get("status", "?")
        if status == "running" and not _alive(rec.get("pid")):
            status = "stale"
        rows.append({"run": name, "status": status, "kind": rec.get("kind"), "preset": rec.get("preset") or rec.get("baseline"),
                     "latency_weight": rec.get("latency_weight"), "seed": rec.get("seed"),
                     "dataset": rec.get("dataset"), "miou": metrics.get("miou"), "val_miou": metrics.get("val_miou"),
                     "latency_ms": metrics.get("latency_ms"), "expected_ms": metrics.get("expected_latency_ms"),
                     "jf": metrics.get("jf"), "duration_s": rec.get("duration_s"),
                     "problem": rec.get("error") if status == "failed" else None})
    return sorted(rows, key=lambda r: tuple(r["run"].split("/")))


def format_table(rows: list[dict], columns: tuple[str, ...] = RUN_COLUMNS) -> str:
    if not rows:
        return "no runs found"

    def cell(v: Any) -> str:
        if v is None:
            return "-"
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    table = [list(columns)] + [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(columns))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in table)


# -- CLI --------------------------------------------------------------------------------------------
def _collect_params(args: argparse.Namespace) -> dict[str, Any]:
    import yaml

    values: dict[str, Any] = {}
    if args.file:
        try:
            loaded = load_yaml(Path(args.file).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{args.file}: cannot read parameters ({exc.__class__.__name__})") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{args.file}: expected a mapping of parameter: value")
        values.update(loaded)
    for key, value in args.param or []:
        values[key] = "" if value == "" else parse_value(value)  # -p baseline '' is an empty string
    return values


def _cmd_run(args: argparse.Namespace) -> int:
    out = run_notebook(args.name, _collect_params(args), args.output_dir, log_output=args.log_output)
    print(f"executed notebook: {out}")
    return 0


def _cmd_batch(args: argparse.Namespace) -> int:
    summary = run_batch(args.sweep, dry_run=args.dry_run)
    return 1 if summary["failed"] else 0


def _cmd_report(args: argparse.Namespace) -> int:
    from workbench.report import build_report

    out = build_report(args.target, args.out)
    print(f"report: {out}")
    return 0


def _cmd_runs(args: argparse.Namespace) -> int:
    print(format_table(list_runs(args.dir)))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    nb = sub.add_parser("notebook", help="run a parameterized notebook through papermill")
    nb_sub = nb.add_subparsers(dest="notebook_command", metavar="ACTION")
    run = nb_sub.add_parser("run", help="validate parameters, execute the notebook into a run directory")
    run.add_argument("name", help=f"notebook name ({', '.join(NOTEBOOKS)}) or path to an .ipynb")
    run.add_argument("-p", "--param", nargs=2, action="append", metavar=("KEY", "VALUE"),
                     help="parameter value (YAML syntax: 2, 0.1, true, [1, 2]); repeatable")
    run.add_argument("-f", "--file", help="YAML file of parameters (-p values override it)")
    run.add_argument("--output-dir", required=True, help="run directory (the notebook's output_dir)")
    run.add_argument("--log-output", action="store_true", help="echo cell output while running")
    run.set_defaults(func=_cmd_run)
    nb.set_defaults(func=lambda a: nb.print_help() or 1)

    batch = sub.add_parser("batch", help="run a grid of notebooks from a sweep YAML, then a frontier")
    batch.add_argument("sweep", help="sweep YAML (see notebooks/sweep_example.yaml)")
    batch.add_argument("--dry-run", action="store_true", help="only list the runs the sweep would make")
    batch.set_defaults(func=_cmd_batch)

    report = sub.add_parser("report", help="self-contained offline HTML report of a run or notebook")
    report.add_argument("target", help="run directory, folder of runs, or executed notebook")
    report.add_argument("-o", "--out", help="HTML file (default: report.html in the run directory)")
    report.set_defaults(func=_cmd_report)

    runs = sub.add_parser("runs", help="table of runs under a folder")
    runs.add_argument("dir", nargs="?", default="runs", help="folder to scan (default: runs)")
    runs.set_defaults(func=_cmd_runs)
