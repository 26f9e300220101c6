"""The search loop end to end: records, latency weight, kill-and-resume, CLI."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import kill_search_after_first_checkpoint, shared_table

from workbench import runs
from workbench.cli import main
from workbench.nas.genotypes import load_genotype
from workbench.nas.network import build_network
from workbench.nas.search import run_search

TINY = dict(dataset="random", input_size=[32, 64], crop_size=[32, 64], channels=8, stem_channels=8,
            head_channels=8, nodes=2, num_cells=3, reductions=[0, 2], fusion_channels=8, batch_size=2,
            max_val_images=2, warmup_epochs=0, lut_warmup=0, lut_repeats=1, threads=1, device="cpu")


@pytest.fixture(autouse=True)
def one_thread():
    old = torch.get_num_threads()
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def lut_cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("lutcache"))


def config(lut_cache, **kw):
    return {"preset": "lgcnet", **TINY, "lut_cache_dir": lut_cache, **kw}


def test_search_writes_the_run_directory_records(tmp_path, lut_cache):
    rec = run_search(config(lut_cache, epochs=2, relaxation="gumbel"), tmp_path / "run")
    run = runs.RunDir(tmp_path / "run")
    assert rec["status"] == "finished" and rec["kind"] == "search" and rec["preset"] == "lgcnet"
    assert rec["latency_weight"] == 0.1 and rec["seed"] == 0 and rec["dataset"] == "random"
    assert rec["metrics"]["expected_latency_ms"] > 0
    for name in ("genotype", "checkpoint", "lut"):
        assert (run.path / rec["artifacts"][name]).exists()
    metrics = run.metrics()
    assert [m["epoch"] for m in metrics] == [0, 1]
    assert set(metrics[0]) == {"epoch", "phase", "train_loss", "arch_loss", "val_miou", "expected_latency_ms", "latency_weight",
                               "temperature", "epoch_time_s"}
    assert metrics[0]["temperature"] > metrics[1]["temperature"]
    alphas = run.alphas()
    assert [a["epoch"] for a in alphas] == [-1, 0, 1]
    cells = alphas[-1]["cells"]
    assert [c["kind"] for c in cells] == ["reduction", "normal", "reduction", "fusion"]
    for c in cells:
        assert len(c["alpha"]) == len(c["edges"]) == len(c["weights"]) == len(c["alpha_gcn"])
        assert all(abs(sum(row) - 1) < 1e-5 for row in c["weights"])
    assert alphas[0]["cells"][0]["alpha"] != cells[0]["alpha"]  # the architecture moved
    g = load_genotype(run.genotype_path)
    assert g.expected_latency_ms == rec["metrics"]["expected_latency_ms"]
    assert build_network(g)(torch.randn(1, 3, 32, 64)).shape == (1, 19, 32, 64)
    state = torch.load(run.checkpoint_dir / "last.pt", weights_only=True)
    assert state["epoch"] == 1
    lut = json.loads(run.lut_path.read_text())
    assert lut["fingerprint"]["threads"] == 1 and lut["input_size"] == [32, 64]


def test_large_latency_weight_derives_a_faster_network(tmp_path, lut_cache):
    common = dict(preset="gas", epochs=2, arch_lr=0.05, seed=1)
    common["lut_path"] = shared_table(config(lut_cache, **common), tmp_path / "lut.json")  # one table for both
    free = run_search(config(lut_cache, latency_weight=0.0, **common), tmp_path / "free")
    fast = run_search(config(lut_cache, latency_weight=20.0, **common), tmp_path / "fast")
    assert fast["metrics"]["expected_latency_ms"] < free["metrics"]["expected_latency_ms"]
    free_m, fast_m = runs.RunDir(tmp_path / "free").metrics(), runs.RunDir(tmp_path / "fast").metrics()
    assert fast_m[-1]["expected_latency_ms"] < free_m[-1]["expected_latency_ms"]


def test_killed_search_resumes_to_the_same_genotype(tmp_path, lut_cache):
    cfg = config(lut_cache, epochs=4, seed=3, relaxation="gumbel")
    cfg["lut_path"] = shared_table(cfg, tmp_path / "lut.json")
    reference = tmp_path / "reference"
    run_search(cfg, reference)
    killed = tmp_path / "killed"
    ckpt = kill_search_after_first_checkpoint("lgcnet", cfg, killed)
    assert runs.RunDir(killed).record()["status"] == "running"
    assert torch.load(ckpt, weights_only=True)["epoch"] < 3
    rec = run_search(cfg, killed, resume=True)
    assert rec["status"] == "finished"
    assert json.loads((killed / "genotype.json").read_text()) == json.loads((reference / "genotype.json").read_text())
    ref_alphas, res_alphas = runs.RunDir(reference).alphas(), runs.RunDir(killed).alphas()
    assert [a["epoch"] for a in res_alphas] == [-1, 0, 1, 2, 3]
    assert res_alphas[-1]["cells"] == ref_alphas[-1]["cells"]
    assert [m["epoch"] for m in runs.RunDir(killed).metrics()] == [0, 1, 2, 3]


def test_cli_lut_search_derive(tmp_path, lut_cache, capsys):
    sets = ["input_size=32x64", "crop_size=32x64", "channels=8", "stem_channels=8", "head_channels=8",
            "nodes=2", "num_cells=2", "reductions=[0]", "batch_size=2", "max_val_images=0",
            "warmup_epochs=0", "lut_repeats=1", "lut_warmup=0", f"lut_cache_dir={lut_cache}"]
    lut_out = tmp_path / "lut.json"
    assert main(["lut", "build", "--preset", "gas", "--size", "32x64", "--threads", "1", "--out", str(lut_out),
                 "--cache-dir", lut_cache, "--repeats", "1", "--set", *sets[2:8]]) == 0
    assert json.loads(lut_out.read_text())["schema"] == "workbench.latency_lut"
    run_dir = tmp_path / "run"
    assert main(["search", "--preset", "gas", "--dataset", "random", "--run-dir", str(run_dir), "--epochs", "1",
                 "--latency-weight", "0.5", "--target-latency-ms", "1.0", "--threads", "1", "--seed", "2",
                 "--set", *sets]) == 0
    out = capsys.readouterr().out
    assert "expected latency" in out and str(run_dir.resolve()) in out
    rec = runs.RunDir(run_dir).record()
    assert rec["latency_weight"] == 0.5 and rec["target_latency_ms"] == 1.0 and rec["seed"] == 2
    first = (run_dir / "genotype.json").read_text()
    (run_dir / "genotype.json").unlink()
    assert main(["derive", "--run-dir", str(run_dir)]) == 0
    assert json.loads((run_dir / "genotype.json").read_text()) == json.loads(first)
    assert main(["search", "--run-dir", str(tmp_path / "x"), "--set", "nodes=0"]) == 2
    assert "nodes: must be >= 1" in capsys.readouterr().err
    assert main(["derive", "--run-dir", str(tmp_path / "nothing")]) == 2


def test_search_on_tiny_cityscapes(tmp_path, lut_cache, tiny_cityscapes):
    rec = run_search(config(lut_cache, dataset="cityscapes", data_root=str(tiny_cityscapes), epochs=1, batch_size=2,
                            crop_size=[32, 64], max_val_images=2), tmp_path / "run")
    assert rec["status"] == "finished" and rec["num_classes"] == 19
    assert runs.RunDir(tmp_path / "run").metrics()[0]["val_miou"] is not None


def test_bf16_search_runs_and_fp16_needs_cuda(lut_cache, tmp_path, capsys):
    """precision=bf16 autocasts the forward passes of both steps (losses differ from fp32 in the
    last digits, not more); fp16 off CUDA is one error line and writes nothing."""
    from workbench.cli import main

    cfg = {**TINY, "preset": "lgcnet", "epochs": 2, "lut_cache_dir": str(lut_cache), "seed": 1}
    fp32 = run_search(cfg, tmp_path / "fp32")
    bf16 = run_search({**cfg, "precision": "bf16"}, tmp_path / "bf16")
    assert bf16["status"] == "finished"
    a = [m["train_loss"] for m in runs.RunDir(tmp_path / "fp32").metrics()]
    b = [m["train_loss"] for m in runs.RunDir(tmp_path / "bf16").metrics()]
    assert a != b and all(abs(x - y) < 0.05 * x for x, y in zip(a, b))
    assert fp32["status"] == "finished"
    assert main(["search", "--preset", "lgcnet", "--dataset", "random", "--run-dir", str(tmp_path / "fp16"),
                 "--device", "cpu", "--set", "precision=fp16"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == "error: precision: fp16 needs a CUDA device (gradient scaling); use bf16 on the CPU"
    assert not (tmp_path / "fp16").exists()
