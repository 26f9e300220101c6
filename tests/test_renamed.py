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


def test_retrain_old_names(tmp_path, tiny_camvid):
    """RetrainConfig's crop and workers (0.1) map to crop_size and num_workers, in the config, the
    CLI's hidden old flags and the retrain notebook's parameters."""
    import argparse

    from workbench.cli import seg as cli_seg
    from workbench.cli.args import explicit
    from workbench.seg.retrain import RetrainConfig
    from workbench.seg.teacher import teacher_key

    with pytest.warns(FutureWarning, match="'crop' is now called 'crop_size'"):
        cfg = from_dict(RetrainConfig, {"baseline": "fpn_mobilenet_v2", "crop": "32x64", "workers": 2})
    assert tuple(cfg.crop_size) == (32, 64) and cfg.num_workers == 2
    parser = argparse.ArgumentParser()
    cli_seg.register(parser.add_subparsers())
    for flags in (["--crop", "32x64", "--workers", "2"], ["--crop-size", "32x64", "--num-workers", "2"]):
        args = parser.parse_args(["retrain", "--baseline", "b", "--run-dir", str(tmp_path), *flags])
        assert explicit(args, ("crop_size", "num_workers")) == {"crop_size": "32x64", "num_workers": 2}
    with pytest.warns(FutureWarning, match="'crop' is now called 'crop_size'"):
        assert validate_parameters("retrain", {"crop": "32x64"}) == {"crop_size": [32, 64]}
    # a teacher cached under the 0.1 name is found again: the key hashes crop_size as "crop"
    base = {"baseline": "b", "dataset": "camvid", "data_root": str(tiny_camvid), "train_split": "train"}
    key, keyed = teacher_key({**base, "crop_size": [32, 64], "num_workers": 3})
    assert keyed["crop"] == [32, 64] and "crop_size" not in keyed and "num_workers" not in keyed
