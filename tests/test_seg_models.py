"""Seg model sources: baselines, genotype networks, size/name/genotype errors, benchmark figures."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

import numpy as np
import pytest
import torch
from test_seg_helpers import other_genotype, tiny_genotype, write_genotype

from workbench.errors import ConfigError, DataError, GenotypeError
from workbench.jsonio import atomic_write_json
from workbench.seg.baselines import BASELINES, build_baseline
from workbench.seg.benchmark import _percentile, count_flops, run_benchmark
from workbench.seg.evaluate import infer
from workbench.seg.model import build_model, genotype_fingerprint


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_baselines_build_without_download_and_predict_at_input_size(name, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = build_baseline(name, num_classes=11).eval()
    assert model.output_stride in (16, 32)
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 96))
    assert out.shape == (1, 11, 64, 96)


@pytest.mark.parametrize("name, dropped", [("pspnet_lcnet_035", ["encoder.model.blocks.5."]),
                                           ("pspnet_mobilenetv3_small_050", ["encoder.model.blocks.4.", "encoder.model.blocks.5."]),
                                           ("fpn_efficientnet_lite0", ["encoder.conv_head.", "encoder.bn2."]),
                                           ("fpn_mobilenetv3_small_050", [])])
def test_baseline_encoder_parts_no_decoder_reads_are_dropped(name, dropped):
    """The PSP decoder reads the 1/16 features, but timm's feature extractor runs the 1/32 blocks too;
    the parameters the unused-parameter probe finds in the full build are exactly the dropped ones,
    and the network computes the same with the same initial weights and loads older checkpoints."""
    from workbench.seg.distributed import unused_parameters

    torch.manual_seed(0)
    full = build_baseline(name, 11, drop_unread=False).eval()
    torch.manual_seed(0)
    model = build_baseline(name, 11).eval()
    assert model.unread == dropped and full.unread == []
    unused = unused_parameters(full, 32, torch.device("cpu"))
    assert {k for k in full.state_dict() if k.startswith(tuple(dropped))} >= set(unused)
    assert all(any(k.startswith(d) for k in unused) for d in dropped)
    assert unused_parameters(model, 32, torch.device("cpu")) == []
    assert all(torch.equal(v, full.state_dict()[k]) for k, v in model.state_dict().items())
    x = torch.randn(1, 3, 64, 128)
    with torch.no_grad():
        assert torch.equal(model(x), full(x))
    model.load_state_dict(full.state_dict())  # strict: only the dropped parts' tensors are ignored
    kept = sum(p.numel() for k, p in full.named_parameters() if not k.startswith(tuple(dropped)))
    assert sum(p.numel() for p in model.parameters()) == kept


def test_unknown_baseline_names_the_known_ones():
    with pytest.raises(ConfigError, match="unknown baseline 'mobilenet_v9'.*fpn_mobilenet_v2"):
        build_model(baseline="mobilenet_v9", num_classes=19)


def test_genotype_network_and_size_divisor(tmp_path):
    model, spec = build_model(genotype=write_genotype(tmp_path / "g.json"))
    assert spec.kind == "genotype" and spec.num_classes == 19
    assert model.output_stride == 8 and model.size_divisor == 8
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 32, 64)).shape == (1, 19, 32, 64)


def test_size_divisor_is_the_deepest_stride_not_the_head_stride(tmp_path):
    # cells down to 1/16, aggregated back at 1/8 (AutoRTNet-like): inputs must be divisible by 16
    g = tiny_genotype(preset="autortnet")
    g["cells"].append({"index": 2, "kind": "reduction", "stride": 16, "channels": 16, "nodes": 1,
                       "edges": [{"from": 1, "to": 2, "op": "sep_conv_3x3"}], "concat": [2]})
    g["aggregation"] = {"kind": "aggregation", "stride": 8, "channels": 8, "inputs": [1, 2], "nodes": 1,
                        "edges": [{"from": 0, "to": 2, "op": "skip_connect"}, {"from": 1, "to": 2, "op": "conv_3x3"}],
                        "concat": [2]}
    path = write_genotype(tmp_path / "agg.json", g)
    model, _ = build_model(genotype=path)
    assert model.output_stride == 8 and model.size_divisor == 16
    with pytest.raises(ConfigError, match="72x128 is not divisible by the network's output stride 16"):
        run_benchmark({"genotype": str(path), "size": "72x128", "device": "cpu"})
    with torch.no_grad():
        assert infer(model.eval(), torch.randn(1, 3, 72, 120), model.size_divisor).shape == (1, 19, 72, 120)


def test_fingerprint_tracks_architecture_not_measurements():
    base = genotype_fingerprint(tiny_genotype(), 19)
    assert genotype_fingerprint(tiny_genotype(expected_latency_ms=99.0), 19) == base
    assert genotype_fingerprint(other_genotype(), 19) != base
    assert genotype_fingerprint(tiny_genotype(), 11) != base


@pytest.mark.parametrize("mutate, match", [
    (lambda g: g["cells"][0]["edges"].__setitem__(0, {"from": 0, "to": 2, "op": "conv_9x9"}), "unknown op"),
    (lambda g: g.__setitem__("version", 7), "unknown genotype version"),
    (lambda g: g["cells"][1].__setitem__("stride", 16), "stride"),
])
def test_bad_genotype_is_one_genotype_error(tmp_path, mutate, match):
    g = tiny_genotype()
    mutate(g)
    path = write_genotype(tmp_path / "bad.json", g)
    with pytest.raises(GenotypeError, match=match):
        build_model(genotype=path)


def test_genotype_that_does_not_build_names_the_file(tmp_path):
    # a stem without channels cannot run: one GenotypeError naming the file
    path = write_genotype(tmp_path / "g.json", tiny_genotype(stem_channels=0))
    with pytest.raises(GenotypeError, match=r"g\.json: stem and head channels must be positive"):
        build_model(genotype=path)
    path = write_genotype(tmp_path / "neg.json", tiny_genotype(head_channels=-3))
    with pytest.raises(GenotypeError, match=r"neg\.json"):
        build_model(genotype=path)


def test_cli_reports_bad_input_in_one_line(tmp_path, capsys):
    from workbench.cli import main

    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    cases = [
        (["bench", "--genotype", str(bad), "--size", "64x128"], "broken.json"),
        (["bench", "--baseline", "nope", "--size", "64x128"], "unknown baseline 'nope'"),
        (["bench", "--genotype", str(write_genotype(tmp_path / "g.json")), "--size", "60x128", "--device", "cpu"],
         "60x128 is not divisible by the network's output stride 8"),
    ]
    for argv, needle in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], err
    # and through a real process: exit status 2, no traceback
    proc = subprocess.run([sys.executable, "-m", "workbench", *cases[1][0]], capture_output=True, text=True)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and last.startswith("error: ") and "unknown baseline 'nope'" in last, proc.stderr
    assert "Traceback" not in proc.stderr


def test_size_not_divisible_is_refused_for_baselines_too():
    with pytest.raises(ConfigError, match="100x128 is not divisible by the network's output stride 16"):
        run_benchmark({"baseline": "deeplabv3plus_mobilenet_v2", "size": "100x128", "device": "cpu"})


def test_infer_pads_to_the_stride_and_returns_full_resolution(tmp_path):
    model, _ = build_model(genotype=write_genotype(tmp_path / "g.json"))
    model.eval()
    x = torch.randn(1, 3, 60, 100)
    logits = infer(model, x, model.size_divisor)
    assert logits.shape == (1, 19, 60, 100)
    # padding bottom/right leaves the top-left of a padded-size input unchanged at the stem's level:
    # predicting the exact padded input must give the same logits on the kept region
    padded = torch.nn.functional.pad(x, (0, 4, 0, 4))
    with torch.no_grad():
        direct = model(padded)[..., :60, :100]
    assert torch.allclose(logits, direct)
    assert infer(model, x, model.size_divisor, eval_size=(32, 64)).shape == (1, 19, 60, 100)


def test_flop_counter_convention_matches_hand_count():
    conv = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
    # one multiply-add = 2 FLOPs: 2 * Cin * Cout * k * k * H * W
    assert count_flops(conv, torch.randn(1, 3, 16, 20)) == 2 * 3 * 8 * 9 * 16 * 20


def test_percentiles_match_numpy():
    values = [5.0, 1.0, 3.0, 9.0, 7.0, 2.0]
    for q in (0.1, 0.5, 0.9):
        assert _percentile(values, q) == pytest.approx(np.percentile(values, 100 * q))


def test_benchmark_record_for_a_genotype(tmp_path):
    g = write_genotype(tmp_path / "search" / "genotype.json")
    result = run_benchmark({"genotype": str(g), "size": "64x128", "device": "cpu", "threads": 1,
                            "warmup": 1, "repeats": 3, "memory": True}, tmp_path / "bench")
    lat = result["latency_ms"]
    assert lat["p10"] <= lat["median"] <= lat["p90"] and lat["repeats"] == 3
    assert result["fps"] == pytest.approx(1000 / lat["median"])
    # the latency table's protocol: rounds, the fastest round's median, the spread and the machine's load
    assert lat["rounds"] == 3 and len(lat["round_medians"]) == 3
    assert lat["median"] == pytest.approx(min(lat["round_medians"]), abs=1e-4)
    assert lat["spread"] == pytest.approx(max(lat["round_medians"]) / lat["median"], rel=1e-3)
    assert set(result["machine"]) == {"other_load", "busy", "quiet", "spread"} and isinstance(result["noisy"], bool)
    assert result["machine"]["quiet"] is None  # not in a local pool: nothing was stopped (workbench.timelock)
    model, _ = build_model(genotype=g)
    assert result["params"] == sum(p.numel() for p in model.parameters())
    assert result["flops"] == count_flops(model.eval(), torch.randn(1, 3, 64, 128)) > 0
    assert result["gmacs"] == pytest.approx(result["gflops"] / 2)
    assert result["size"] == [64, 128] and result["dtype"] == "float32" and result["threads"] == 1
    assert result["device"]["device_type"] == "cpu" and result["torch"] == torch.__version__
    mem = result["memory"]
    assert mem["peak_mb"] >= mem["weights_mb"] > 0
    assert result["lut"]["predicted_ms"] is None and "no latency_lut.json" in result["lut"]["note"]
    rec = json.loads((tmp_path / "bench" / "run_record.json").read_text())
    assert rec["kind"] == "benchmark" and rec["metrics"]["latency_ms"] == lat["median"]
    assert rec["latency_noisy"] == result["noisy"] and rec["machine"] == result["machine"]
    assert json.loads((tmp_path / "bench" / "benchmark.json").read_text())["flops"] == result["flops"]


def test_benchmark_puts_the_lut_prediction_beside_the_measurement(tmp_path):
    from workbench.nas.genotypes import load_genotype
    from workbench.nas.latency.table import build_lut, genotype_probes, predict_genotype_latency

    path = write_genotype(tmp_path / "search" / "genotype.json")
    lut = build_lut(genotype_probes(load_genotype(path), (64, 128)), (64, 128), device="cpu", threads=1,
                    warmup=1, repeats=2, use_cache=False)
    atomic_write_json(tmp_path / "search" / "latency_lut.json", lut)
    cfg = {"genotype": str(path), "device": "cpu", "threads": 1, "warmup": 1, "repeats": 3, "memory": False}
    result = run_benchmark({**cfg, "size": "64x128"})
    expected = predict_genotype_latency(path, tmp_path / "search" / "latency_lut.json")
    assert result["lut"]["predicted_ms"] == pytest.approx(expected)
    median = result["latency_ms"]["median"]
    assert result["lut_error_pct"] == pytest.approx(100 * (expected - median) / median)
    # a table for another size (or device/threads) is not used for the prediction
    other = run_benchmark({**cfg, "size": "32x64"})
    assert other["lut"]["predicted_ms"] is None and "size 64x128" in other["lut"]["note"]
    two = run_benchmark({**cfg, "size": "64x128", "threads": 2})
    assert two["lut"]["predicted_ms"] is None and "threads 1" in two["lut"]["note"]


def test_benchmark_prices_the_network_with_a_calibration_timed_beside_it(tmp_path):
    """--lut-same-run: the table's calibration networks are timed in the network's rounds and the
    price uses their scale (median of fastest round / piece-sum), not the table's stored one."""
    from workbench.nas.genotypes import genotype_from_dict, load_genotype
    from workbench.nas.latency.table import build_lut, calibrate, genotype_probes, lookup

    path = write_genotype(tmp_path / "search" / "genotype.json")
    genotype = load_genotype(path)
    lut = build_lut(genotype_probes(genotype, (64, 128)), (64, 128), device="cpu", threads=1,
                    warmup=1, repeats=2, use_cache=False)
    atomic_write_json(tmp_path / "search" / "latency_lut.json", lut)  # not calibrated
    cfg = {"genotype": str(path), "device": "cpu", "threads": 1, "warmup": 1, "repeats": 3, "memory": False,
           "size": "64x128", "lut_same_run": True}
    with pytest.raises(DataError, match="does not keep its networks"):
        run_benchmark(cfg)
    calibrate(lut, [genotype, genotype])
    assert [genotype_from_dict(d) for d in lut["calibration"]["genotypes"]] == [genotype, genotype]
    atomic_write_json(tmp_path / "search" / "latency_lut.json", lut)
    result = run_benchmark(cfg)
    same = result["lut"]["same_run"]
    pieces = sum(lookup(lut, p) for p in genotype_probes(genotype, (64, 128)))
    assert same["scale"] == pytest.approx(statistics.median(t / pieces for t in same["calibration_fastest_ms"]),
                                          rel=1e-4)
    assert same["predicted_ms"] == pytest.approx(same["scale"] * pieces, rel=1e-4)
    assert same["table_scale"] == lut["calibration"]["scale"] and len(same["calibration_fastest_ms"]) == 2
    assert same["error_pct"] == pytest.approx(100 * (same["predicted_ms"] - same["measured_ms"]) / same["measured_ms"])
    assert result["lut"]["predicted_ms"] == pytest.approx(lut["calibration"]["scale"] * pieces)
    # asked for, but nothing to price with: one clear error
    with pytest.raises(ConfigError, match="lut_same_run: no latency table"):
        run_benchmark({**cfg, "size": "32x64"})
    with pytest.raises(ConfigError, match="lut_same_run: no latency table"):
        run_benchmark({"baseline": "fpn_mobilenetv3_small", "device": "cpu", "size": "64x128", "lut_same_run": True,
                       "memory": False, "warmup": 0, "repeats": 1, "rounds": 1})
