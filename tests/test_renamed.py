"""0.1 names keep working for one version: config fields, CLI flags, notebook parameters, sweeps, stored runs."""

from __future__ import annotations

import warnings

import pytest

from workbench.config import from_dict
from workbench.errors import ConfigError
from workbench.lab.params import validate_parameters
from workbench.lab.sweep import plan_sweep
from workbench.study.collect import VOS_BUDGET, _budget
from workbench.vos.train import VosTrainConfig


def test_config_old_name_warns_and_maps(tmp_path):
    with pytest.warns(FutureWarning, match="'iters_per_epoch' is now called 'steps_per_epoch'"):
        cfg = from_dict(VosTrainConfig, {"data_root": str(tmp_path), "iters_per_epoch": 7, "crop": [64, 96]})
    assert cfg.steps_per_epoch == 7 and tuple(cfg.crop_size) == (64, 96)


def test_config_old_and_new_name_refused(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        with pytest.raises(ConfigError, match="steps_per_epoch"):
            from_dict(VosTrainConfig, {"data_root": str(tmp_path), "iters_per_epoch": 7, "steps_per_epoch": 8})


def test_notebook_parameter_old_name():
    with pytest.warns(FutureWarning, match="'crop' is now called 'crop_size'"):
        values = validate_parameters("video_segmentation", {"crop": "64x112", "iters_per_epoch": 3})
    assert values == {"crop_size": [64, 112], "steps_per_epoch": 3}
    with pytest.warns(FutureWarning), pytest.raises(ConfigError, match="give only steps_per_epoch"):
        validate_parameters("video_segmentation", {"iters_per_epoch": 3, "steps_per_epoch": 4})
    with pytest.raises(ConfigError, match="unknown parameter crop_sise"):
        validate_parameters("video_segmentation", {"crop_sise": "64x112"})


def test_sweep_grid_key_with_old_name(tmp_path):
    sweep = {"output_root": str(tmp_path / "out"), "name": "s{iters_per_epoch}",
             "grid": {"iters_per_epoch": [1, 2]},
             "stages": [{"name": "video", "notebook": "video_segmentation", "parameters": {"epochs": 1}}]}
    with pytest.warns(FutureWarning):
        runs = plan_sweep(sweep, tmp_path)
    assert [r["parameters"]["steps_per_epoch"] for r in runs] == [1, 2]
    assert all("iters_per_epoch" not in r["parameters"] for r in runs)


def test_study_reads_stored_old_names_as_new():
    old = {"data_root": "d", "split": "train", "epochs": 2, "iters_per_epoch": 10, "batch_size": 2, "crop": [64, 112]}
    new = {"data_root": "d", "split": "train", "epochs": 2, "steps_per_epoch": 10, "batch_size": 2,
           "crop_size": [64, 112]}
    assert _budget(old, VOS_BUDGET) == _budget(new, VOS_BUDGET) == new
