"""benchmarks/arch_grad_snr.py: how much signal the architecture gradient carries."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import load_benchmark

from workbench.nas.search import run_search


def test_summary_reads_zero_signal_for_noise_and_the_planted_signal_to_noise_otherwise():
    mod = load_benchmark("arch_grad_snr")
    gen = torch.Generator().manual_seed(0)
    noise = mod.summarize(torch.randn(400, 3000, generator=gen))
    assert noise["snr_batch_rms"] < 0.03
    assert noise["median_snr"] == pytest.approx(noise["noise_floor_median_snr"], rel=0.1)
    assert noise["sign_agreement_consecutive"] == pytest.approx(0.5, abs=0.01)
    # mean 0.5, spread 2 on every element: one batch's signal-to-noise is 0.25
    planted = mod.summarize(0.5 + 2.0 * torch.randn(400, 3000, generator=gen))
    assert planted["snr_batch_rms"] == pytest.approx(0.25, abs=0.02)
    assert planted["median_abs_mean"] == pytest.approx(0.5, rel=0.1)
    steady = mod.summarize(torch.ones(5, 4) + torch.linspace(0, 0.1, 5)[:, None])
    assert steady["sign_agreement_consecutive"] == 1.0 and steady["elements"] == 4


def test_weight_decay_memory_from_the_adam_state_matches_the_formula():
    mod = load_benchmark("arch_grad_snr")
    p = torch.nn.Parameter(torch.zeros(3))
    opt = torch.optim.Adam([p], lr=0.03, betas=(0.5, 0.999), weight_decay=1e-3)
    for g in (1e-3, -1e-3, 1e-3, -1e-3):
        p.grad = torch.full_like(p, g)
        opt.step()
    state = opt.state_dict()
    v = state["state"][0]["exp_avg_sq"]
    v_hat = float(v.median()) / (1 - 0.999 ** 4)
    assert mod.adam_memory_steps(state) == pytest.approx(math.sqrt(v_hat) / (0.03 * 1e-3), rel=1e-3)
    free = torch.optim.Adam([p], lr=0.03, weight_decay=0.0)
    p.grad = torch.ones_like(p)
    free.step()
    assert mod.adam_memory_steps(free.state_dict()) is None


def test_reads_a_finished_search_without_writing_into_it_and_refuses_other_folders(tmp_path, capsys):
    mod = load_benchmark("arch_grad_snr")
    tiny = dict(preset="lgcnet", dataset="random", input_size=[32, 64], crop_size=[32, 64], channels=8,
                stem_channels=8, head_channels=8, nodes=2, num_cells=3, reductions=[0, 2], fusion_channels=8,
                batch_size=2, max_val_images=2, warmup_epochs=0, lut_warmup=0, lut_repeats=1, threads=1,
                device="cpu", epochs=2, lut_cache_dir=str(tmp_path / "lut"))
    run_search(tiny, tmp_path / "search")
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "search").rglob("*")}
    assert mod.main([str(tmp_path / "search"), "--batches", "3", "--threads", "1",
                     "--json", str(tmp_path / "out" / "snr.json")]) == 0
    row = next(iter(json.loads((tmp_path / "out" / "snr.json").read_text()).values()))
    assert row["batches"] == 3 and row["elements"] > 0 and row["batch_images"] == 2
    assert row["arch_batches"] == 1 and row["decision_images"] == 2
    assert row["architecture_steps"] > 0 and row["weight_decay_memory_steps"] > 0
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "search").rglob("*")} == before
    assert mod.main([str(tmp_path), "--batches", "3"]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path}: not a finished search (no checkpoints/last.pt)"
    # a truncated checkpoint: one error line naming it, exit 2, nothing written
    (tmp_path / "search" / "checkpoints" / "last.pt").write_bytes(b"PK\x03\x04 truncated")
    assert mod.main([str(tmp_path / "search"), "--batches", "3", "--json", str(tmp_path / "bad.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {tmp_path / 'search' / 'checkpoints' / 'last.pt'}: cannot load checkpoint")
    assert not (tmp_path / "bad.json").exists()
