"""Latency in the runtime a network ships in: the runtime is part of the device fingerprint, a
table of another runtime is refused, and ONNX Runtime timing runs the same computation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_seg_helpers import tiny_lut_values, write_genotype

from workbench import cli, steps
from workbench.device import device_fingerprint, fingerprint_key
from workbench.errors import ConfigError
from workbench.nas.latency.runtimes import bind, check_runtime
from workbench.nas.latency.timing import cache_file

pytest.importorskip("onnxruntime")


def test_runtime_in_fingerprint_and_eager_keys_unchanged():
    eager = device_fingerprint("cpu", 1)
    ort = device_fingerprint("cpu", 1, runtime="onnxruntime")
    assert eager["runtime"] == "eager" and ort["runtime"] == "onnxruntime"
    assert fingerprint_key(eager) == fingerprint_key({k: v for k, v in eager.items() if k != "runtime"})
    assert fingerprint_key(ort) != fingerprint_key(eager) and cache_file(ort) != cache_file(eager)
    with pytest.raises(ConfigError, match="^runtime: unknown runtime 'tensorrt'"):
        check_runtime("tensorrt", "cpu")
    with pytest.raises(ConfigError, match="^runtime: cudagraphs needs a CUDA device"):
        check_runtime("cudagraphs", "cpu")


def test_onnxruntime_call_computes_what_eager_does():
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU()).eval()
    x = torch.randn(1, 3, 16, 32)
    ref = bind(m, [x], "eager")()
    got = bind(m, [x], "onnxruntime", threads=1)()
    assert np.allclose(got[0], ref.numpy(), atol=1e-5)


def test_lut_and_bench_per_runtime_and_refusal(tmp_path, capsys):
    g = write_genotype(tmp_path / "g" / "genotype.json")
    base = tiny_lut_values(tmp_path / "cache")
    ort = steps.build_lut({**base, "lut_runtime": "onnxruntime"}, tmp_path / "ort.json", genotype=g)
    eager = steps.build_lut(base, tmp_path / "eager.json", genotype=g)
    assert ort["fingerprint"]["runtime"] == "onnxruntime" and eager["fingerprint"]["runtime"] == "eager"
    assert set(ort["entries"]) == set(eager["entries"]) and all(v > 0 for v in ort["entries"].values())
    assert cache_file(ort["fingerprint"], tmp_path) != cache_file(eager["fingerprint"], tmp_path)  # kept apart
    bench = {"genotype": str(g), "size": [32, 64], "device": "cpu", "threads": 1, "warmup": 1, "repeats": 2,
             "rounds": 1, "memory": False}
    res = steps.benchmark({**bench, "runtime": "onnxruntime", "lut": str(tmp_path / "ort.json")})
    assert res["runtime"] == "onnxruntime" and res["device"]["runtime"] == "onnxruntime"
    assert res["latency_ms"]["median"] > 0 and res["lut"]["predicted_ms"] > 0
    # the table beside the genotype was timed eager: noted, not used, for an onnxruntime benchmark
    (g.parent / "latency_lut.json").write_text((tmp_path / "eager.json").read_text())
    note = steps.benchmark({**bench, "runtime": "onnxruntime"})["lut"]
    assert note["predicted_ms"] is None and "runtime eager" in note["note"]
    # a table named explicitly for another runtime: one error line, exit 2
    assert cli.main(["bench", "--genotype", str(g), "--size", "32x64", "--threads", "1", "--repeats", "1",
                     "--no-memory", "--lut", str(tmp_path / "ort.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: lut: the latency table was timed in runtime 'onnxruntime', but 'eager'")
    assert json.loads((tmp_path / "ort.json").read_text())["fingerprint"]["runtime"] == "onnxruntime"


def test_search_refuses_a_table_of_another_runtime(tmp_path):
    from workbench.nas.latency.table import check_lut_setting

    lut = {"fingerprint": device_fingerprint("cpu", 1, runtime="onnxruntime")}
    check_lut_setting(lut, "onnxruntime", "lut_path")
    with pytest.raises(ConfigError, match="^lut_path: the latency table was timed in runtime 'onnxruntime'"):
        check_lut_setting(lut, "eager", "lut_path")
    check_lut_setting({"fingerprint": {"name": "old table"}}, "eager", "lut_path")  # before runtimes: eager
