"""Reading run directories for the views. Widgets and reports take a run directory, never live objects."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from workbench.errors import DataError
from workbench.jsonio import read_json_object, read_jsonl
from workbench.runs import RunDir
from workbench.runs import measured as measured_latency

log = logging.getLogger(__name__)


@dataclass
class Run:
    """Everything a view needs from one run directory (missing files are empty, not errors)."""

    path: Path
    record: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    metrics: list[dict] = field(default_factory=list)
    alphas: list[dict] = field(default_factory=list)
    genotype: dict | None = None
    measured: dict = field(default_factory=dict)  # latency etc. of its benchmark (workbench.runs.measured)

    @property
    def kind(self) -> str:
        return self.record.get("kind", "unknown")

    @property
    def name(self) -> str:
        """The run's name; a stage folder ('search', 'retrain') is named with its sweep point above
        it ('lgcnet-lw0.5-s1/retrain'), so runs of a sweep are told apart."""
        name = self.record.get("name") or self.path.name
        if name == self.path.name and name in ("search", "retrain", "train", "benchmark", "baseline", "video") \
                and self.path.parent.name:
            return f"{self.path.parent.name}/{name}"
        return name

    @property
    def status(self) -> str:
        return self.record.get("status", "missing")


def _well_formed_alphas(rec: dict) -> bool:
    cells = rec.get("cells")
    return isinstance(rec.get("epoch"), int) and isinstance(cells, list) and all(
        isinstance(c, dict) and {"index", "kind", "edges", "ops", "weights"} <= set(c) for c in cells)


def load_run(path: str | Path) -> Run:
    """The run's records; an unreadable genotype or a malformed alphas line is left out (and
    logged), so one damaged file does not take the whole view down. An unreadable run record
    raises DataError naming it."""
    run = RunDir(path)
    record = run.record()
    genotype = None
    artifacts = record.get("artifacts") if isinstance(record.get("artifacts"), dict) else {}
    geno_rel = artifacts.get("genotype")
    for candidate in ([run.path / geno_rel] if isinstance(geno_rel, str) else []) + [run.genotype_path]:
        if candidate.is_file():
            try:
                genotype = read_json_object(candidate)
            except DataError as exc:
                log.warning("%s", exc)
            break
    alphas = read_jsonl(run.alphas_path)
    good = [a for a in alphas if _well_formed_alphas(a)]
    if len(good) < len(alphas):
        log.warning("%s: %d malformed lines left out", run.alphas_path, len(alphas) - len(good))
    try:
        config = run.read_config()
    except DataError as exc:
        log.warning("%s", exc)
        config = {}
    try:
        meas = measured_latency(run, record) if record.get("kind") in ("retrain", "baseline", "benchmark") else {}
    except DataError as exc:
        log.warning("%s", exc)
        meas = {}
    return Run(path=run.path, record=record, config=config, metrics=run.metrics(), alphas=good,
               genotype=genotype, measured=meas)


def epochs(alphas: list[dict]) -> list[int]:
    """Epochs present in alphas.jsonl, in file order (-1 is the initial state if recorded)."""
    return [rec["epoch"] for rec in alphas]


def alphas_at(alphas: list[dict], epoch: int) -> dict:
    for rec in alphas:
        if rec["epoch"] == epoch:
            return rec
    raise KeyError(f"no alphas recorded for epoch {epoch} (have {epochs(alphas)})")


def cell_at(alphas_record: dict, index: int) -> dict:
    for cell in alphas_record["cells"]:
        if cell["index"] == index:
            return cell
    raise KeyError(f"no cell {index} in alphas record")


def cell_label(cell: dict) -> str:
    return f"cell {cell['index']} ({cell['kind']}, stride {cell.get('stride', '?')})"
