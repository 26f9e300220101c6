"""Shared helpers of the seg tests (no tests here): tiny genotypes written by hand to the schema."""

from __future__ import annotations

import copy
import json
from pathlib import Path

TINY_GENOTYPE = {
    "schema": "workbench.genotype", "version": 1, "preset": "gas", "num_classes": 19,
    "input_size": [64, 128], "stem_channels": 8, "head_channels": 8,
    "ops": ["none", "skip_connect", "max_pool_3x3", "conv_3x3", "sep_conv_3x3", "dil_sep_conv_3x3_d2"],
    "cells": [
        {"index": 0, "kind": "normal", "stride": 4, "channels": 8, "nodes": 2,
         "edges": [{"from": 0, "to": 2, "op": "sep_conv_3x3"}, {"from": 1, "to": 2, "op": "skip_connect"},
                   {"from": 0, "to": 3, "op": "conv_3x3"}, {"from": 2, "to": 3, "op": "dil_sep_conv_3x3_d2"}],
         "concat": [2, 3]},
        {"index": 1, "kind": "reduction", "stride": 8, "channels": 16, "nodes": 2,
         "edges": [{"from": 0, "to": 2, "op": "max_pool_3x3"}, {"from": 1, "to": 2, "op": "sep_conv_3x3"},
                   {"from": 1, "to": 3, "op": "skip_connect"}, {"from": 2, "to": 3, "op": "conv_3x3"}],
         "concat": [2, 3]}],
    "fusion": None, "hyper": None, "aggregation": None, "expected_latency_ms": 1.5,
}


def tiny_genotype(**changes) -> dict:
    g = copy.deepcopy(TINY_GENOTYPE)
    g.update(changes)
    return g


def other_genotype() -> dict:
    """Same shapes as TINY_GENOTYPE, one op swapped: a different architecture."""
    g = tiny_genotype()
    g["cells"][1]["edges"][3]["op"] = "sep_conv_3x3"
    return g


def write_genotype(path: Path, genotype: dict | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(genotype or tiny_genotype()))
    return path


def tiny_lut_values(cache: Path) -> dict:
    """`lut build` values for a genotype's table timed as briefly as possible (one call per piece)."""
    return {"preset": "gas", "input_size": [32, 64], "device": "cpu", "threads": 1, "lut_warmup": 0,
            "lut_repeats": 1, "lut_rounds": 1, "lut_calibrate": 0, "lut_cache_dir": str(cache)}


def retrain_config(genotype: Path | None, data_root: Path, **changes) -> dict:
    cfg = {"genotype": str(genotype) if genotype else None, "data_root": str(data_root),
           "dataset": "cityscapes", "epochs": 2, "crop_size": [64, 128], "batch_size": 2, "lr": 0.05,
           "device": "cpu", "threads": 1, "seed": 3, "scale_range": [0.75, 1.5]}
    cfg.update(changes)
    return cfg


def interrupted_then_resumed(monkeypatch, cfg: dict, run_dir: Path, at_step: int = 6) -> dict:
    """Run a retrain that a KeyboardInterrupt stops inside its `at_step`-th optimizer step (the
    default is inside epoch 1 of the tiny runs, after the epoch-0 checkpoint), then resume it;
    returns the resumed run's record."""
    import pytest

    from workbench.seg import retrain

    calls = {"n": 0}
    step = retrain._train_step

    def failing_step(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == at_step:
            raise KeyboardInterrupt
        return step(*args, **kwargs)

    monkeypatch.setattr(retrain, "_train_step", failing_step)
    with pytest.raises(KeyboardInterrupt):
        retrain.run_retrain(cfg, run_dir)
    monkeypatch.setattr(retrain, "_train_step", step)
    return retrain.run_retrain({**cfg, "resume": True}, run_dir)
