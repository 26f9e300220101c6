"""Two-process DistributedDataParallel retrain on the CPU (gloo) through torchrun."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch
from test_chain_unread import every_part
from test_seg_helpers import write_genotype

from workbench.runs import RunDir
from workbench.seg.distributed import unused_parameters
from workbench.seg.evaluate import run_evaluate
from workbench.seg.model import build_model


def _torchrun_retrain(genotype, data_root, run_dir, *extra: str) -> None:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "workbench", "retrain", "--genotype", str(genotype), "--dataset", "cityscapes",
           "--data-root", str(data_root), "--run-dir", str(run_dir), "--epochs", "2",
           "--crop-size", "64x128", "--batch-size", "2", "--device", "cpu", "--threads", "1", "--seed", "3", *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_torchrun_two_processes_on_cpu(tmp_path, tiny_cityscapes):
    genotype = write_genotype(tmp_path / "genotype.json")
    run_dir = tmp_path / "ddp"
    _torchrun_retrain(genotype, tiny_cityscapes, run_dir)
    record = RunDir(run_dir).record()
    # global batch 2 over 2 processes: the same 8 // 2 = 4 steps per epoch as one process
    assert record["status"] == "finished" and record["world_size"] == 2
    assert record["steps"] == 2 * (8 // 2) and record["max_steps"] == record["steps"]
    assert 0.0 <= record["metrics"]["miou"] <= 1.0
    rows = RunDir(run_dir).metrics()
    assert [(r["epoch"], r["phase"]) for r in rows] == [(0, "train"), (1, "train"), (1, "val")]
    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == 8 and state["world_size"] == 2
    model, _ = build_model(genotype=genotype)
    model.load_state_dict(state["model"])  # no DDP 'module.' prefix
    # the sharded evaluation (2 images per process, summed confusion matrices) equals one process's
    single = run_evaluate({"run": str(run_dir), "device": "cpu"})
    assert single["miou"] == record["metrics"]["miou"]


def test_torchrun_with_aux_heads_and_weight_average(tmp_path, tiny_cityscapes):
    """The auxiliary heads train inside the DDP wrapper (their gradients all-reduced, their BatchNorm
    buffers broadcast from rank 0 like the network's) and every rank keeps the weight average of its
    identical weights: rank 0 saves both, scores the raw weights beside the average, and reports
    the average's score."""
    genotype = write_genotype(tmp_path / "genotype.json")
    run_dir = tmp_path / "ddp_heads"
    _torchrun_retrain(genotype, tiny_cityscapes, run_dir, "--set", "aux_weight=0.4", "ema_decay=0.9")
    record = RunDir(run_dir).record()
    assert record["status"] == "finished" and record["world_size"] == 2
    assert [h["requested"] for h in record["aux_heads"]] == [16]
    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == 8 and int(state["ema_updates"]) == 8
    heads = {k: v for k, v in state["aux_heads"].items() if k.startswith("heads.")}
    assert any(k.endswith("running_mean") for k in heads)
    assert all(torch.isfinite(v.float()).all() for v in heads.values())
    # the averaged weights differ from the raw ones, and the reported score is the averaged network's
    assert any(not torch.equal(state["model_ema"][k], v) for k, v in state["model"].items() if v.is_floating_point())
    val = [r for r in RunDir(run_dir).metrics() if r["phase"] == "val"][-1]
    assert "miou_raw" in val and val["miou"] == record["metrics"]["miou"]
    assert run_evaluate({"run": str(run_dir), "device": "cpu"})["miou"] == record["metrics"]["miou"]


DEAD_CELL = Path(__file__).resolve().parents[1] / "benchmarks/results/proxy_genotypes/autortnet-lw0.5-s500-x2.json"


def test_unused_parameters_names_a_cell_no_output_reads(tmp_path, monkeypatch):
    """This AutoRTNet genotype's aggregation reads the stem and cells 0-1 only, so cell 2 (stride 32)
    reaches no output. Built with every part (as before the network dropped such parts), its
    convolutions' parameters are the unused ones, and the probe leaves the network's weights and
    BatchNorm statistics as they were."""
    with monkeypatch.context() as m:
        every_part(m)
        model, _ = build_model(genotype=DEAD_CELL)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    unused = unused_parameters(model, model.size_divisor, torch.device("cpu"))
    assert unused and all(name.startswith("body.cells.2.") for name in unused)
    assert tuple(model.body.multi.spec.inputs) == (-1, 0, 1)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    tidy, _ = build_model(genotype=write_genotype(tmp_path / "genotype.json"))
    assert unused_parameters(tidy, tidy.size_divisor, torch.device("cpu")) == []
    pruned, _ = build_model(genotype=DEAD_CELL)  # the network built today drops cell 2
    assert unused_parameters(pruned, pruned.size_divisor, torch.device("cpu")) == []


def test_torchrun_retrains_a_network_with_unused_parameters(tmp_path, tiny_cityscapes):
    """DDP fails on its second step when parameters get no gradient (found by a 2-process
    throughput run of a genotype with a cell no output reads): such cells are dropped now, and
    retrain tells DDP about any parameter still left without a gradient."""
    run_dir = tmp_path / "ddp_dead_cell"
    _torchrun_retrain(DEAD_CELL, tiny_cityscapes, run_dir)
    record = RunDir(run_dir).record()
    assert record["status"] == "finished" and record["world_size"] == 2 and record["steps"] == 8
