"""Latency at the dtype a network ships in: the dtype is part of the table's fingerprint and cache,
pieces and networks are timed with weights and input cast to it, and a table timed in another dtype
is refused where one is named."""

from __future__ import annotations

import json
import subprocess

import pytest
import torch
from test_seg_helpers import tiny_genotype, tiny_lut_values, write_genotype

from workbench import cli, steps
from workbench.device import device_fingerprint, fingerprint_key, latency_dtype
from workbench.errors import ConfigError
from workbench.nas.latency.runtimes import check_runtime
from workbench.nas.latency.table import check_lut_setting, lut_dtype
from workbench.nas.latency.timing import cache_file, measure_networks


def test_dtype_keys_the_fingerprint_and_cache():
    fp32 = device_fingerprint("cpu", 1)
    bf16 = device_fingerprint("cpu", 1, latency_dtype("bfloat16"))
    assert fp32["dtype"] == "float32" and bf16["dtype"] == "bfloat16"
    assert fingerprint_key(bf16) != fingerprint_key(fp32) and cache_file(bf16) != cache_file(fp32)
    with pytest.raises(ConfigError, match="^lut_dtype: unknown dtype 'int8'"):
        latency_dtype("int8", "lut_dtype")
    # ONNX Runtime's CPU provider is timed in float32 only: refused before anything is exported
    with pytest.raises(ConfigError, match="^runtime: onnxruntime is timed in float32 here, not float16"):
        check_runtime("onnxruntime", "cpu", "float16")


def test_networks_are_timed_in_the_dtype():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4))
    timed = measure_networks({"m": model}, (16, 32), "cpu", warmup=0, repeats=1, rounds=2, dtype="bfloat16")
    assert len(timed["m"]) == 2 and all(t > 0 for t in timed["m"])
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}


def test_lut_and_bench_per_dtype_and_refusal(tmp_path, capsys):
    g = write_genotype(tmp_path / "g" / "genotype.json")
    base = tiny_lut_values(tmp_path / "cache")
    bf16 = steps.build_lut({**base, "lut_dtype": "bfloat16"}, tmp_path / "bf16.json", genotype=g)
    fp32 = steps.build_lut(base, tmp_path / "fp32.json", genotype=g)
    assert lut_dtype(bf16) == "bfloat16" and lut_dtype(fp32) == "float32"
    assert set(bf16["entries"]) == set(fp32["entries"]) and all(v > 0 for v in bf16["entries"].values())
    assert cache_file(bf16["fingerprint"], tmp_path) != cache_file(fp32["fingerprint"], tmp_path)  # kept apart
    bench = {"genotype": str(g), "size": [32, 64], "device": "cpu", "threads": 1, "warmup": 1, "repeats": 2,
             "rounds": 1}
    res = steps.benchmark({**bench, "dtype": "bfloat16", "lut": str(tmp_path / "bf16.json")})
    assert res["dtype"] == "bfloat16" and res["device"]["dtype"] == "bfloat16"
    assert res["latency_ms"]["median"] > 0 and res["lut"]["predicted_ms"] > 0
    assert res["memory"]["weights_mb"] < 0.75 * steps.benchmark({**bench, "lut": str(tmp_path / "fp32.json")}
                                                                )["memory"]["weights_mb"]  # 2 bytes a weight, not 4
    # the float32 table beside the genotype: noted, not used, for a bfloat16 benchmark
    (g.parent / "latency_lut.json").write_text((tmp_path / "fp32.json").read_text())
    note = steps.benchmark({**bench, "dtype": "bfloat16", "memory": False})["lut"]
    assert note["predicted_ms"] is None and "dtype float32" in note["note"]
    # a table named explicitly for another dtype: one error line, exit 2, the table untouched
    assert cli.main(["bench", "--genotype", str(g), "--size", "32x64", "--threads", "1", "--repeats", "1",
                     "--no-memory", "--dtype", "bfloat16", "--lut", str(tmp_path / "fp32.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("error: lut: the latency table was timed in float32, but bfloat16 is asked for; build one "
                   "with `workbench lut build --dtype bfloat16`")
    assert json.loads((tmp_path / "fp32.json").read_text())["fingerprint"]["dtype"] == "float32"


def test_search_refuses_a_table_of_another_dtype():
    lut = {"fingerprint": device_fingerprint("cpu", 1, torch.bfloat16)}
    check_lut_setting(lut, "eager", "lut_path", "bfloat16")
    with pytest.raises(ConfigError, match="^lut_path: the latency table was timed in bfloat16, but float32"):
        check_lut_setting(lut, "eager", "lut_path")
    check_lut_setting({"fingerprint": {"name": "old table"}}, "eager", "lut_path")  # before dtypes: float32


def test_the_measured_gate_times_in_the_tables_dtype(monkeypatch):
    """`baseline_ratio_timer` (target_measure, sample_measure) sends the table's runtime and dtype to
    its fresh process, which times network and baseline in them."""
    from workbench.nas.genotypes import genotype_from_dict
    from workbench.nas.search import resolve_config
    from workbench.nas.target import baseline_ratio_timer

    cfg = resolve_config({"preset": "gas", "input_size": [32, 64], "lut_dtype": "bfloat16",
                          "target_measure_rounds": 3})
    sent, real_run = [], subprocess.run

    def spy(cmd, input, **kw):
        sent.append(json.loads(input))
        return real_run(cmd, input=input, **kw)

    monkeypatch.setattr(subprocess, "run", spy)
    timer = baseline_ratio_timer(cfg, "pspnet_lcnet_035", 19, "cpu")
    ratio, record = timer(genotype_from_dict(tiny_genotype()))
    assert sent[0]["dtype"] == "bfloat16" and sent[0]["runtime"] == "eager" and sent[0]["size"] == [32, 64]
    assert sent[0]["protocol"][2] == 3 and ratio > 0 and record["process"] == "fresh"
