"""The accuracy-latency frontier: collect measured runs into frontier.json with their Pareto front.

A point is a finished retrain/baseline run with an `miou` and a measured `latency_ms`: its own,
or that of a finished benchmark run of it (a 'benchmark' record whose config.json names it as
`run`, e.g. `workbench bench --run RETRAIN_DIR` or the retrain notebook's benchmark sub-run).
Searched architectures (retrain of a genotype) and hand-designed baselines are kept apart by
`kind`. Runs that differ only in their seed form an *arm*: frontier.json also holds every arm's
mean, spread and per-seed values, and the Pareto front of arm means per kind (the hand-designed
frontier and the searched one). Published numbers from the papers are never mixed in here: they
were measured on other hardware (the widgets show them in a separate panel).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import statistics
from collections.abc import Iterator
from pathlib import Path

from workbench.config import field, from_dict, to_dict
from workbench.errors import ConfigError, WorkbenchError
from workbench.jsonio import atomic_write_json
from workbench.runs import RunDir, RunDirError, iter_runs

log = logging.getLogger(__name__)

POINT_KINDS = ("retrain", "baseline", "benchmark")


@dataclasses.dataclass
class FrontierConfig:
    roots: list[str] = field(default_factory=lambda: ["runs"], help="folders searched for run directories")
    kinds: list[str] = field(default_factory=lambda: list(POINT_KINDS), help="run kinds that become points")
    dataset: str | None = field(default=None, help="keep only runs on this dataset (None: all)")

    def validate(self) -> None:
        bad = sorted(set(self.kinds) - set(POINT_KINDS))
        if bad:
            raise ConfigError(f"kinds: unknown run kind {', '.join(bad)} (known: {', '.join(POINT_KINDS)})")
        if not self.roots:
            raise ConfigError("roots: give at least one folder to collect runs from")


def pareto_front(points: list[dict]) -> list[str]:
    """Names of the points no other point dominates (lower or equal latency and higher or equal
    mIoU, strictly better in one), ordered by latency."""
    front = []
    for p in points:
        dominated = any(q is not p and q["latency_ms"] <= p["latency_ms"] and q["miou"] >= p["miou"]
                        and (q["latency_ms"] < p["latency_ms"] or q["miou"] > p["miou"]) for q in points)
        if not dominated:
            front.append(p)
    return [p["name"] for p in sorted(front, key=lambda p: (p["latency_ms"], -p["miou"]))]


def _readable(root: Path) -> Iterator[RunDir]:
    """The runs under root whose record and config can be read; the others are logged and skipped."""
    for run in iter_runs(root):
        try:
            run.record(), run.read_config()
        except WorkbenchError as exc:
            log.warning("frontier: skipping an unreadable run: %s", exc)
            continue
        yield run


def _benchmarks(roots: list[Path]) -> dict[Path, dict]:
    """Finished benchmark records keyed by the resolved run directory they measured (latest wins)."""
    found: dict[Path, dict] = {}
    for root in roots:
        for run in _readable(root):
            rec = run.record()
            target = run.read_config().get("run") if rec.get("kind") == "benchmark" else None
            if target and rec.get("status") == "finished" and (rec.get("metrics") or {}).get("latency_ms"):
                key = (run.path / target).resolve() if not Path(target).is_absolute() else Path(target).resolve()
                if not key.exists():
                    key = Path(target).resolve()
                if key not in found or str(rec.get("finished")) >= str(found[key].get("finished")):
                    found[key] = rec
    return found


STAGE_FOLDERS = frozenset({"retrain", "baseline", "benchmark", "train", "search"})


def point_name(run: RunDir, rec: dict, root: Path) -> str:
    """A point is named by its sweep point: a sweep writes OUTPUT_ROOT/<point>/<stage>, so a run
    two or more folders below the root is named by the folders above its stage folder
    ('lgcnet-lw0.5-s1/retrain' -> 'lgcnet-lw0.5-s1'). A run right below the root keeps its folder
    name, unless that is only a stage's name ('retrain'): then it is named by its settings,
    '<preset>-lw<latency weight>[-x<width>]-s<seed>' (as the example sweeps name their points)."""
    try:
        parts = run.path.relative_to(root).parts
    except ValueError:
        parts = ()
    if len(parts) >= 2:
        return "/".join(parts[:-1])
    folder = parts[0] if parts else run.path.name
    if folder not in STAGE_FOLDERS and folder != rec.get("kind"):
        return folder
    preset = rec.get("preset") or rec.get("baseline") or rec.get("kind") or "run"
    name = str(preset)
    if rec.get("latency_weight") is not None:
        name += f"-lw{rec['latency_weight']:g}" if isinstance(rec["latency_weight"], (int, float)) \
            else f"-lw{rec['latency_weight']}"
    if isinstance(rec.get("width_multiplier"), (int, float)) and rec["width_multiplier"] != 1:
        name += f"-x{rec['width_multiplier']:g}"
    if isinstance(rec.get("depth_multiplier"), int) and rec["depth_multiplier"] != 1:
        name += f"-d{rec['depth_multiplier']}"
    if rec.get("seed") is not None:
        name += f"-s{rec['seed']}"
    return name


def _point(run: RunDir, rec: dict, root: Path, bench: dict | None = None) -> dict | None:
    metrics = dict(rec.get("metrics") or {})
    if bench is not None and metrics.get("latency_ms") is None:
        bm = bench["metrics"]
        metrics.update({k: bm[k] for k in ("latency_ms", "fps", "gflops", "params_m", "expected_latency_ms")
                        if bm.get(k) is not None})
        rec = dict(rec, device=rec.get("device") or bench.get("device"),
                   latency_noisy=rec.get("latency_noisy", bench.get("latency_noisy")))
    if rec.get("status") != "finished" or metrics.get("miou") is None or metrics.get("latency_ms") is None:
        return None
    genotype = (rec.get("artifacts") or {}).get("genotype")
    genotype_path = run.path / genotype if genotype else None
    try:
        rel = str(run.path.relative_to(root)) if run.path != root else run.path.name
    except ValueError:
        rel = run.path.name
    return {"name": point_name(run, rec, root), "path_name": rel, "run_dir": str(run.path),
            "kind": "baseline" if rec.get("kind") == "baseline" or not genotype else "searched",
            "preset": rec.get("preset") or rec.get("baseline"), "latency_weight": rec.get("latency_weight"), "seed": rec.get("seed"),
            "dataset": rec.get("dataset"), "latency_ms": float(metrics["latency_ms"]),
            "miou": float(metrics["miou"]), "params_m": metrics.get("params_m"), "gflops": metrics.get("gflops"),
            "fps": metrics.get("fps"), "expected_latency_ms": metrics.get("expected_latency_ms"),
            "genotype": str(genotype_path) if genotype_path and genotype_path.is_file() else None,
            "latency_noisy": bool(rec.get("latency_noisy")), "target_latency_ms": rec.get("target_latency_ms"),
            "device": rec.get("device")}


def collect_points(config: FrontierConfig, exclude: Path | None = None) -> list[dict]:
    points, seen = [], set()
    roots = [Path(r) for r in config.roots]
    for root in roots:
        if not root.is_dir():
            raise ConfigError(f"roots: {root} is not a folder")
    benchmarks = _benchmarks(roots)
    for root in roots:
        for run in _readable(root):
            if exclude is not None and run.path.resolve() == exclude.resolve():
                continue
            rec = run.record()
            if rec.get("kind") not in config.kinds:
                continue
            if config.dataset and rec.get("dataset") not in (None, config.dataset):
                continue
            point = _point(run, rec, root, benchmarks.get(run.path.resolve()))
            if point is None or point["run_dir"] in seen:
                continue
            seen.add(point["run_dir"])
            taken = {p["name"] for p in points}
            if point["name"] in taken:  # two points of one sweep point: their paths tell them apart
                point["name"] = point.pop("path_name") if point["path_name"] not in taken else point["run_dir"]
            point.pop("path_name", None)
            points.append(point)
    return points


# settings that make two runs the same arm although they differ (the seed, and how they ran)
_NOT_ARM = frozenset({"seed", "device", "threads", "workers", "num_workers", "resume", "overwrite", "name",
                      "genotype", "output_dir", "data_root", "lut_cache_dir", "lut_path"})


def _settings(path: Path) -> dict:
    try:
        cfg = RunDir(path).read_config()
    except WorkbenchError:
        return {}
    from workbench.config import RENAMED  # a 0.1 run's "crop" is the same setting as "crop_size"

    return {RENAMED.get(k, k): v for k, v in cfg.items() if RENAMED.get(k, k) not in _NOT_ARM}


def arm_key(point: dict) -> str:
    """Points of one arm share every setting but the seed: the retrain's config and, for a searched
    network, the config of the search that found it."""
    run = RunDir(point["run_dir"])
    source = run.record().get("genotype_source") if run.record_path.exists() else None
    search = _settings(Path(source).parent) if source else {}
    return json.dumps([point["kind"], _settings(run.path), search], sort_keys=True, default=str)


def _stats(values: list[float]) -> dict:
    mean = statistics.fmean(values)
    return {"mean": mean, "std": statistics.stdev(values) if len(values) > 1 else None,
            "se": statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else None,
            "n": len(values), "values": values}


def group_arms(points: list[dict]) -> list[dict]:
    """One entry per arm: mean, std, standard error and the per-seed values of latency and mIoU."""
    groups: dict[str, list[dict]] = {}
    for p in points:
        groups.setdefault(arm_key(p), []).append(p)
    arms = []
    for members in groups.values():
        members = sorted(members, key=lambda p: (p.get("seed") is None, p.get("seed")))
        first = members[0]
        name = first["name"].split("/")[0]
        for suffix in (f"-s{first.get('seed')}", f"_s{first.get('seed')}"):
            name = name.removesuffix(suffix)
        arms.append({"name": name, "kind": first["kind"], "preset": first.get("preset"),
                     "latency_weight": first.get("latency_weight"), "seeds": [p.get("seed") for p in members],
                     "latency_ms": _stats([p["latency_ms"] for p in members]),
                     "miou": _stats([p["miou"] for p in members]),
                     "latency_noisy": any(p.get("latency_noisy") for p in members),
                     "points": [p["name"] for p in members]})
    return sorted(arms, key=lambda a: (a["kind"], a["latency_ms"]["mean"]))


def arm_fronts(arms: list[dict]) -> dict[str, list[str]]:
    """Pareto front of arm means, per kind: the hand-designed frontier and the searched one."""
    out = {}
    for kind in ("searched", "baseline"):
        pts = [{"name": a["name"], "latency_ms": a["latency_ms"]["mean"], "miou": a["miou"]["mean"]}
               for a in arms if a["kind"] == kind]
        out[kind] = pareto_front(pts)
    return out


def run_frontier(config: FrontierConfig | dict, run_dir: str | Path) -> dict:
    """Write frontier.json (points + Pareto names) and a 'frontier' run record; return the record."""
    config = from_dict(FrontierConfig, config)
    run = RunDir(run_dir)
    with run.lock():
        kind = run.record().get("kind") if run.record_path.exists() else "frontier"
        if kind != "frontier" or (run.own_entries() and not run.record_path.exists()):
            raise RunDirError(f"{run.path}: holds {f'a {kind} run' if run.record_path.exists() else 'other files'}, "
                              "not a frontier; choose another run directory")
    with run.claim(overwrite=True):  # a frontier is recomputed from its roots: re-running replaces it
        return _frontier(config, run)


def _frontier(config: FrontierConfig, run: RunDir) -> dict:
    run.write_config(to_dict(config))
    run.start("frontier", dataset=config.dataset)
    points = collect_points(config, exclude=run.path)
    devices = [p.pop("device") for p in points]
    device = next((d for d in devices if d), None) or {}
    if len({str(d) for d in devices if d}) > 1:
        log.warning("frontier mixes latencies measured on %d different devices", len({str(d) for d in devices if d}))
        device = {"mixed": True, "devices": [d for d in devices if d]}
    arms = group_arms(points)
    frontier = {"device": device, "points": points, "pareto": pareto_front(points), "arms": arms,
                "pareto_arms": arm_fronts(arms)}
    atomic_write_json(run.path / "frontier.json", frontier)
    log.info("frontier: %d points, %d on the Pareto front -> %s", len(points), len(frontier["pareto"]),
             run.path / "frontier.json")
    run.update(metrics={}, artifacts={"frontier": "frontier.json"}, points=len(points))
    return run.finish()
