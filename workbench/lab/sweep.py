"""Batch sweeps: a grid of notebook runs (e.g. presets x latency weights), each point's stages in
order, then a frontier over everything.

A sweep is a mapping (read from YAML by `load_sweep`, or built in code by a study):
`output_root`, `grid` (key -> values), `stages` (notebooks run in order per grid point; a grid key
goes to every stage whose notebook declares it, and "{stage}" placeholders give an earlier
stage's run directory), `name` (the point's folder, "{key}" placeholders), `extra` (single runs)
and `frontier`. It is validated whole before anything runs: a grid key that reaches no run, two
points with one folder, or a name that leaves `output_root` are refused.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from pathlib import Path
from typing import Any

from workbench.config import RENAMED, read_yaml_mapping
from workbench.errors import ConfigError
from workbench.lab.engines import chain_stages, output_root, run_jobs
from workbench.lab.params import declared_name, parse_parameters, resolve_notebook, validate_parameters

SWEEP_KEYS = {"output_root", "grid", "stages", "extra", "name", "frontier"}


def load_sweep(path: str | Path) -> dict:
    """A sweep mapping from a YAML file (ConfigError naming the file when unreadable)."""
    return read_yaml_mapping(path, "sweep")


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
    declared = set()
    for i, stage in enumerate(stages):
        params = parse_parameters(stage.get("notebook", stage.get("name") or f"stage{i}"))
        declared |= set(params) | {old for old, new in RENAMED.items() if new in params}
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
    unknown = sorted(set(sweep) - SWEEP_KEYS)
    if unknown:
        raise ConfigError(f"sweep: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                          f"(known: {', '.join(sorted(SWEEP_KEYS))})")
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
            params = {k: v for k, v in env.items() if declared_name(declared, k)}
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


def execute_plan(plan: list[dict], engine: str = "serial", jobs: int = 1, address: str | None = None) -> dict:
    """Run planned notebook runs on an engine, each point's stages in order; one line per finished job.
    Returns the output directories by status (finished, skipped, failed, blocked)."""
    todo = chain_stages(plan)
    counts = {"done": 0, "failed": 0}
    t0 = time.time()

    def report(res: dict) -> None:
        counts["done"] += 1
        counts["failed"] += res["status"] == "failed"
        what = {"finished": f"finished in {res.get('seconds', 0):.0f} s" + (" (resumed)" if res.get("resumed") else ""),
                "skipped": "already finished, skipped", "blocked": "not run (an earlier stage of this point failed)",
                "failed": f"FAILED after {res.get('seconds', 0):.0f} s: {res.get('error')}"}[res["status"]]
        print(f"{res['label']}: {what}")
        print(f"sweep ({engine}): {counts['done']}/{len(todo)} done, {counts['failed']} failed, "
              f"{len(todo) - counts['done']} running or waiting, {time.time() - t0:.0f} s", flush=True)

    results = run_jobs(todo, engine, jobs, address, report)
    return {key: [r["output_dir"] for r in results if r["status"] == key]
            for key in ("finished", "skipped", "failed", "blocked")}


def run_batch(sweep: dict | str | Path, dry_run: bool = False, engine: str = "serial", jobs: int = 1,
              address: str | None = None) -> dict:
    """Run a sweep (a mapping, or a YAML file of one) on an engine (`engines.py`: serial, local with
    `jobs` processes, or ray): skip finished runs, resume unfinished ones, continue past failures,
    then a frontier over all of them. Prints one line per finished job and the sweep's progress."""
    from workbench import steps

    if not isinstance(sweep, dict):
        sweep = load_sweep(sweep)
    plan = plan_sweep(sweep, Path.cwd())
    if dry_run:
        for i, item in enumerate(plan, 1):
            print(f"[{i}/{len(plan)}] {item['point']}/{item['stage']}: {item['notebook'].name} -> "
                  f"{item['output_dir']} {item['parameters']}")
        return {"finished": [], "skipped": [], "failed": [], "blocked": [], "frontier": None}
    summary = execute_plan(plan, engine, jobs, address)
    summary["frontier"] = None
    root = output_root(sweep)
    if sweep.get("frontier", True):
        steps.frontier({"roots": [str(root)]}, root / "frontier")
        summary["frontier"] = str(root / "frontier" / "frontier.json")
        print(f"frontier: {summary['frontier']}")
    print(f"batch: {len(summary['finished'])} finished, {len(summary['skipped'])} skipped, "
          f"{len(summary['failed'])} failed, {len(summary['blocked'])} not run")
    return summary
