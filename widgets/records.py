"""Reading run directories for the views. Widgets and reports take a run directory, never live objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from workbench.runs import RunDir, read_json, read_jsonl


@dataclass
class Run:
    """Everything a view needs from one run directory (missing files are empty, not errors)."""

    path: Path
    record: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    metrics: list[dict] = field(default_factory=list)
    alphas: list[dict] = field(default_factory=list)
    genotype: dict | None = None

    @property
    def kind(self) -> str:
        return self.record.get("kind", "unknown")

    @property
    def name(self) -> str:
        return self.record.get("name") or self.path.name


def load_run(path: str | Path) -> Run:
    run = RunDir(path)
    record = run.record()
    genotype = None
    geno_rel = (record.get("artifacts") or {}).get("genotype")
    for candidate in ([run.path / geno_rel] if geno_rel else []) + [run.genotype_path]:
        if candidate.is_file():
            genotype = read_json(candidate)
            break
    return Run(path=run.path, record=record, config=run.read_config(), metrics=run.metrics(),
               alphas=read_jsonl(run.alphas_path), genotype=genotype)


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
