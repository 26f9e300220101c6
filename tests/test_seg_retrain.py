"""Retrain / evaluate / predict / export on the tiny synthetic datasets."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from test_seg_helpers import other_genotype, retrain_config, write_genotype

from workbench.data.io import read_label_png
from workbench.errors import CheckpointError, ConfigError
from workbench.jsonio import atomic_write_json
from workbench.metrics.segmentation import evaluate_predictions
from workbench.runs import RunDir
from workbench.seg.evaluate import run_evaluate
from workbench.seg.export import run_export
from workbench.seg.model import build_model
from workbench.seg.predict import run_predict
from workbench.seg.retrain import RetrainConfig, poly_lr, run_retrain


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_cityscapes):
    """A 2-epoch retrain of the tiny genotype, with its search-run record beside the genotype."""
    root = tmp_path_factory.mktemp("seg")
    genotype = write_genotype(root / "search" / "genotype.json")
    atomic_write_json(root / "search" / "run_record.json", {"kind": "search", "preset": "gas",
                                                            "latency_weight": 0.3})
    run_dir = root / "retrain"
    record = run_retrain(retrain_config(genotype, tiny_cityscapes), run_dir)
    return run_dir, record, genotype


def test_retrain_writes_the_run_directory(trained):
    run_dir, record, genotype = trained
    assert record["kind"] == "retrain" and record["status"] == "finished"
    assert record["preset"] == "gas" and record["latency_weight"] == 0.3 and record["dataset"] == "cityscapes"
    m = record["metrics"]
    assert 0.0 <= m["miou"] <= 1.0 and 0.0 <= m["pixel_acc"] <= 1.0
    model, _ = build_model(genotype=genotype)
    assert m["params_m"] == pytest.approx(sum(p.numel() for p in model.parameters()) / 1e6)
    assert record["steps"] == 2 * (8 // 2) and record["artifacts"]["genotype"] == "genotype.json"
    assert json.loads((run_dir / "genotype.json").read_text()) == json.loads(genotype.read_text())
    rows = RunDir(run_dir).metrics()
    train = [r for r in rows if r["phase"] == "train"]
    val = [r for r in rows if r["phase"] == "val"]
    assert [r["epoch"] for r in train] == [0, 1] and [r["epoch"] for r in val] == [1]
    assert val[0]["miou"] == m["miou"] and all(np.isfinite(r["loss"]) for r in train)
    assert train[1]["lr"] < train[0]["lr"] < 0.05  # poly decay, per iteration
    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert state["epoch"] == 1 and state["step"] == 8 and state["fingerprint"].startswith("genotype:")
    model.load_state_dict(state["model"])


def test_poly_lr_by_hand():
    assert poly_lr(0.1, 0, 100, 0.9) == 0.1
    assert poly_lr(0.1, 50, 100, 0.9) == pytest.approx(0.1 * 0.5 ** 0.9)
    assert poly_lr(0.1, 100, 100, 0.9) == 0.0


def test_evaluate_and_predictions_agree_with_the_file_evaluator(trained, tiny_cityscapes, tmp_path):
    run_dir, record, _ = trained
    result = run_evaluate({"run": str(run_dir), "split": "val", "device": "cpu"})
    assert result["miou"] == pytest.approx(record["metrics"]["miou"], abs=1e-12)
    assert (run_dir / "evaluation_val.json").exists() and result["images"] == 4
    out = tmp_path / "pred"
    run_predict({"run": str(run_dir), "out": str(out), "split": "val", "device": "cpu"})
    files = sorted(out.glob("*.png"))
    assert len(files) == 4 and all(f.name.endswith("_leftImg8bit.png") for f in files)
    ids = np.unique(np.concatenate([np.unique(read_label_png(f)) for f in files]))
    assert set(ids.tolist()) <= {7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33}
    scored = evaluate_predictions("cityscapes", tiny_cityscapes, "val", out)
    assert scored["miou"] == pytest.approx(result["miou"], abs=1e-9)
    assert scored["pixel_acc"] == pytest.approx(result["pixel_acc"], abs=1e-9)


def test_cli_predict_then_eval_seg(trained, tiny_cityscapes, tmp_path, capsys):
    from workbench.cli import main

    run_dir, record, _ = trained
    out = tmp_path / "cli_pred"
    assert main(["predict", "--run-dir", str(run_dir), "--data-root", str(tiny_cityscapes), "--split", "val",
                 "--out", str(out), "--device", "cpu"]) == 0
    assert main(["eval", "seg", "--dataset", "cityscapes", "--root", str(tiny_cityscapes), "--split", "val",
                 "--pred", str(out), "--json", str(tmp_path / "scores.json")]) == 0
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert scores["miou"] == pytest.approx(record["metrics"]["miou"], abs=1e-9)


def test_checkpoint_of_another_genotype_is_refused(trained, tmp_path, tiny_cityscapes):
    run_dir, _, _ = trained
    other = tmp_path / "other"
    shutil.copytree(run_dir, other)
    atomic_write_json(other / "genotype.json", other_genotype())
    with pytest.raises(CheckpointError, match="last.pt: checkpoint belongs to another architecture"):
        run_evaluate({"run": str(other), "device": "cpu"})
    # resuming a run dir with a different genotype is refused before anything is loaded
    g2 = write_genotype(tmp_path / "g2.json", other_genotype())
    with pytest.raises(ConfigError, match="stored configuration differs in genotype"):
        run_retrain(retrain_config(g2, tiny_cityscapes, resume=True), other)


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_export_reloads_with_the_same_output(trained, tmp_path, fmt):
    run_dir, _, _ = trained
    out = tmp_path / f"model.{'pt' if fmt == 'torchscript' else 'onnx'}"
    result = run_export({"run": str(run_dir), "format": fmt, "out": str(out), "size": "64x128"})
    assert out.exists() and result["max_abs_diff"] is not None and result["max_abs_diff"] < 1e-4
    model, _ = build_model(genotype=run_dir / "genotype.json")
    model.load_state_dict(torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["model"])
    x = torch.randn(1, 3, 64, 128)
    with torch.no_grad():
        ref = model.eval()(x).numpy()
    if fmt == "torchscript":
        got = torch.jit.load(str(out))(x).detach().numpy()
    else:
        ort = pytest.importorskip("onnxruntime")
        session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        got = session.run(None, {"image": x.numpy()})[0]
    assert np.abs(got - ref).max() < 1e-4


def test_baseline_retrain_on_camvid_and_class_index_predictions(tiny_camvid, tmp_path):
    run_dir = tmp_path / "fpn"
    record = run_retrain(retrain_config(None, tiny_camvid, baseline="fpn_mobilenet_v2", dataset="camvid",
                                        epochs=1, batch_size=4), run_dir)
    assert record["kind"] == "baseline" and record["baseline"] == "fpn_mobilenet_v2"
    assert record["steps"] == 2 and 0 <= record["metrics"]["miou"] <= 1
    out = tmp_path / "pred"
    run_predict({"run": str(run_dir), "out": str(out), "device": "cpu"})
    annots = sorted((tiny_camvid / "valannot").glob("*.png"))
    assert sorted(p.name for p in out.glob("*.png")) == [p.name for p in annots]
    assert max(read_label_png(p).max() for p in out.glob("*.png")) <= 10
    scored = evaluate_predictions("camvid", tiny_camvid, "val", out)
    assert scored["miou"] == pytest.approx(record["metrics"]["miou"], abs=1e-9)


def test_config_errors_are_one_line(tiny_cityscapes, tmp_path):
    g = write_genotype(tmp_path / "g.json")
    with pytest.raises(ConfigError, match="crop_size: 60x128 is not divisible by the network's output stride 8"):
        run_retrain(retrain_config(g, tiny_cityscapes, crop_size="60x128"), tmp_path / "a")
    with pytest.raises(ConfigError, match="batch_size: 16 is larger than the 8 training images"):
        run_retrain(retrain_config(g, tiny_cityscapes, batch_size=16), tmp_path / "b")
    with pytest.raises(ConfigError, match="exactly one"):
        RetrainConfig(genotype=str(g), baseline="fpn_mobilenet_v2").validate()
    with pytest.raises(ConfigError, match="unknown parameter"):
        run_retrain({"genotype": str(g), "epochz": 3}, tmp_path / "c")


def test_genotype_derived_by_the_nas_engine_retrains(tiny_cityscapes, tmp_path):
    """A genotype written by the NAS code (an LGCNet supernet with a fusion cell, derived untrained)
    goes through retrain and evaluate unchanged."""
    from workbench.nas.genotypes import save_genotype
    from workbench.nas.presets import get_preset
    from workbench.nas.search import build_supernet, make_genotype

    cfg = get_preset("lgcnet", num_cells=3, reductions=[0, 2], channels=8, nodes=2, stem_channels=8,
                     head_channels=8, fusion_channels=8, input_size=(64, 128))
    torch.manual_seed(0)
    genotype = make_genotype(cfg, build_supernet(cfg, 19).derive(), 19)
    path = save_genotype(genotype, tmp_path / "search" / "genotype.json")
    record = run_retrain(retrain_config(path, tiny_cityscapes, epochs=1, batch_size=4), tmp_path / "run")
    assert record["kind"] == "retrain" and record["preset"] == "lgcnet" and record["steps"] == 2
    assert run_evaluate({"run": str(tmp_path / "run"), "device": "cpu"})["miou"] == record["metrics"]["miou"]


def test_bench_of_a_retrain_run_finds_its_search_runs_lut(trained, tmp_path):
    from workbench.nas.genotypes import load_genotype
    from workbench.nas.latency.table import build_lut, genotype_probes, predict_genotype_latency
    from workbench.seg.benchmark import run_benchmark

    run_dir, _, genotype = trained
    lut_path = genotype.parent / "latency_lut.json"
    atomic_write_json(lut_path, build_lut(genotype_probes(load_genotype(genotype), (64, 128)), (64, 128),
                                          device="cpu", threads=1, warmup=0, repeats=1, use_cache=False))
    try:
        expected = predict_genotype_latency(genotype, lut_path)
        result = run_benchmark({"run": str(run_dir), "size": "64x128", "device": "cpu", "threads": 1,
                                "warmup": 0, "repeats": 2, "memory": False}, tmp_path / "bench")
    finally:
        lut_path.unlink()
    assert result["lut"]["path"] == str(lut_path)
    assert result["lut"]["predicted_ms"] == pytest.approx(expected)
    assert RunDir(tmp_path / "bench").read_config()["run"] == str(run_dir)  # how the frontier links them
