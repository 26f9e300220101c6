"""Running a study file (benchmarks/ablations.yaml): its data, every sweep, a frontier, the summary.

A study is a set of `workbench batch` sweeps, each with an `id`, that write ordinary run
directories under `output_root/<id>`; finished runs are skipped on a re-run and a failed run does
not stop the others. The summary (`workbench.study.claims.summarize`) only reads the run
directories, so the same code judges the full study, the smoke version and any hand-made set.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from workbench.config import read_yaml_mapping
from workbench.errors import ConfigError
from workbench.lab.sweep import execute_plan, plan_sweep

log = logging.getLogger(__name__)


STUDY_KEYS = {"output_root", "budget", "data", "sweeps", "estimate"}


def load_study(path: str | Path) -> dict:
    """Read and check a study file: output_root, data (generated when missing), sweeps (batch sweeps, each with an `id`)."""
    path = Path(path)
    study = read_yaml_mapping(path, "study")
    unknown = sorted(set(study) - STUDY_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown key {', '.join(unknown)} (known: {', '.join(sorted(STUDY_KEYS))})")
    sweeps = study.get("sweeps") or []
    if not sweeps or not all(isinstance(s, dict) and s.get("id") for s in sweeps):
        raise ConfigError(f"{path}: sweeps must be a list of batch sweeps, each with an `id`")
    ids = [s["id"] for s in sweeps]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{path}: sweep ids must be unique, got {ids}")
    return study


def run_study(path: str | Path, only: list[str] | None = None, dry_run: bool = False, k: float = 2.0,
              engine: str = "serial", jobs: int = 1, address: str | None = None) -> dict:
    """Generate the study's data when missing, run every sweep's notebook runs in one pool (finished
    runs are skipped, failures do not stop the rest), then one frontier and the summary over output_root."""
    from workbench import steps

    study = load_study(path)
    root = Path(study.get("output_root", "runs/ablations")).resolve()
    if only:
        bad = sorted(set(only) - {s["id"] for s in study["sweeps"]})
        if bad:
            raise ConfigError(f"--only: unknown sweep {', '.join(bad)} (known: {', '.join(s['id'] for s in study['sweeps'])})")
    for data in study.get("data") or []:
        spec = dict(data)
        kind, out = spec.pop("kind"), spec.pop("out")
        if not Path(out, "synth.json").exists() and not dry_run:
            log.info("generating %s data in %s", kind, out)
            steps.synth_data(kind, out, **{k2: tuple(v) if k2 == "size" else v for k2, v in spec.items()})
    plan, ids = [], []
    for sweep in study["sweeps"]:
        if only and sweep["id"] not in only:
            continue
        body = {key: v for key, v in sweep.items() if key != "id"}
        body["output_root"] = str(root / sweep["id"])
        # one pool for every sweep: a sweep's last odd run does not leave a worker idle
        plan += [{**item, "point": f"{sweep['id']}/{item['point']}"} for item in plan_sweep(body, Path.cwd())]
        ids.append(sweep["id"])
    print(f"== study {path}: sweeps {', '.join(ids)}, {len(plan)} notebook runs -> {root}")
    if dry_run:
        for i, item in enumerate(plan, 1):
            print(f"[{i}/{len(plan)}] {item['point']}/{item['stage']}: {item['notebook'].name} -> "
                  f"{item['output_dir']} {item['parameters']}")
        return {"runs": {}, "planned": len(plan)}
    pretime(plan, threads=max(1, (os.cpu_count() or 1) // jobs) if engine == "local" else 0)
    results = execute_plan(plan, engine, jobs, address)
    steps.frontier({"roots": [str(root)]}, root / "frontier")
    summary = summarize_study(root, k=k, html_out=root / "ablations.html")
    print(f"ablations: {root / 'ablations.md'}, {root / 'ablations.html'}")
    return {"runs": results, "summary": summary}


def pretime(plan: list[dict], threads: int) -> None:
    """Time every search's latency table and baseline target alone, into the device cache, before
    the pool runs searches side by side (each would otherwise time them under the other's load)."""
    from workbench.lab.params import parse_parameters
    from workbench.nas.target import pretime_search

    seen = set()
    for item in plan:
        if item["notebook"].stem != "search":
            continue
        declared = {name: p.default for name, p in parse_parameters(item["notebook"]).items()}
        params = {**declared, **item["parameters"]}
        # the search notebook's config: its named parameters, then `overrides` over them
        values = {k: v for k, v in params.items() if k not in ("output_dir", "overrides", "resume", "overwrite",
                                                               "synth_data", "seed", "latency_weight")}
        values.update(params.get("overrides") or {})
        key = repr(sorted(values.items()))
        if key in seen:
            continue
        seen.add(key)
        target = pretime_search(values, threads)
        print(f"timed alone: {values.get('preset')} table" + (f", target {target['ms']:.2f} ms = "
              f"{target['fraction']:g} x {target['baseline']} {target['baseline_ms']:.2f} ms" if target else ""),
              flush=True)


def summarize_study(root: str | Path, json_out: str | Path | None = None, markdown_out: str | Path | None = None,
                    k: float = 2.0, html_out: str | Path | None = None) -> dict:
    """Judge the claims from the runs under root (ablations.json), and write the markdown tables
    (default ROOT/ablations.md) and, when html_out is given, the offline HTML report."""
    from widgets.ablations import to_markdown, write_html
    from workbench import steps
    from workbench.jsonio import atomic_write_text

    summary = steps.summarize_study(root, json_out, k)
    atomic_write_text(Path(markdown_out) if markdown_out else Path(root) / "ablations.md", to_markdown(summary))
    if html_out:
        write_html(summary, html_out)
    return summary
