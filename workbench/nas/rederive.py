"""`workbench derive`: write a search run's genotype.json again from its config and last checkpoint.

Useful after a derivation rule changes, or when a search was stopped before it derived: the
architecture parameters of the checkpoint are decoded as the search itself would at its end
(`Search.final_genotype`, with a target landed on as configured). Selections (`strategy: sample`,
`one_shot`) keep the winner of their candidates instead; they have nothing to re-derive.
"""

from __future__ import annotations

from pathlib import Path

import torch

from workbench.errors import CheckpointError, ConfigError
from workbench.nas.genotypes import Genotype, save_genotype
from workbench.nas.latency.table import load_lut
from workbench.nas.presets import upgrade_stored
from workbench.nas.search import Search, lut_for, resolve_config
from workbench.nas.search_data import NUM_CLASSES
from workbench.runs import RunDir


def rederive(run_dir: str | Path) -> Genotype:
    """Re-derive genotype.json from a run directory's config and last checkpoint."""
    run = RunDir(run_dir)
    kind = run.record().get("kind") if run.record_path.exists() else None
    if not run.config_path.exists() or kind not in (None, "search"):
        raise ConfigError(f"{run.path}: not a search run directory ({f'a {kind} run' if kind else 'no config.json'}); "
                          "derive needs the run directory of `workbench search`")
    cfg = resolve_config(upgrade_stored(run.read_config()))
    if cfg.strategy in ("sample", "one_shot"):
        raise ConfigError(f"{run.path}: a {cfg.strategy!r} run's genotype is the winner of its selection "
                          "(candidates.json), not derived from architecture parameters; there is nothing to re-derive")
    state = run.load_checkpoint()
    if state is None:
        raise CheckpointError(f"{run.checkpoint_dir / 'last.pt'}: no checkpoint to derive from")
    num_classes = int(run.record().get("num_classes") or NUM_CLASSES[cfg.dataset])
    lut = load_lut(run.lut_path) if run.lut_path.exists() else lut_for(cfg, num_classes, "cpu")
    search = Search(cfg, run, lut, num_classes, torch.device("cpu"), run.record().get("target"))
    search.load(state)
    genotype, targeted = search.final_genotype()
    with run.lock():
        save_genotype(genotype, run.genotype_path)
        run.update(metrics={"expected_latency_ms": genotype.expected_latency_ms},
                   artifacts={"genotype": "genotype.json"}, **({"target_derive": targeted} if targeted else {}))
    return genotype
