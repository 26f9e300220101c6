"""`workbench scale`: a genotype with every width multiplied, the architecture otherwise unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from workbench import cli
from workbench.errors import GenotypeError
from workbench.nas.genotypes import load_genotype, scale_width
from workbench.nas.network import build_network

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
GENOTYPES = ["proxy_genotypes/autortnet-lw0.5.json", "proxy_genotypes/lgcnet-lw0.json", "gpu/gpu_autortnet_genotype.json"]


def _widths(node, path=""):
    """{path: width} of every `*channels` value in a genotype dict."""
    if isinstance(node, dict):
        return {k2: v2 for k, v in node.items() for k2, v2 in (
            {f"{path}/{k}": v}.items() if k.endswith("channels") and isinstance(v, int) else _widths(v, f"{path}/{k}").items())}
    if isinstance(node, list):
        return {k: v for i, item in enumerate(node) for k, v in _widths(item, f"{path}/{i}").items()}
    return {}


def _strip(node):
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items() if not k.endswith("channels")}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


@pytest.mark.parametrize("name", GENOTYPES)
def test_widths_multiplied_everything_else_kept(name, tmp_path):
    base = load_genotype(RESULTS / name).to_dict()
    wide = scale_width(RESULTS / name, 2.0).to_dict()
    before, after = _widths(base), _widths(wide)
    assert before.keys() == after.keys() and len(before) >= 3
    for key, width in before.items():  # multiples of 8, within 10 % of twice the width
        assert after[key] % 8 == 0 and 0.9 * 2 * width <= after[key] <= 2 * width + 4, key
    assert _strip(wide["body"]) == _strip(base["body"])  # same ops, edges, strides, cells
    assert wide["width_multiplier"] == 2.0 and wide["expected_latency_ms"] is None

    # the built network really is wider: the stem's 1/4 output (its second conv) has the scaled width
    net, wnet = build_network(load_genotype(base)), build_network(load_genotype(wide))
    second = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)][1]
    wsecond = [m for m in wnet.modules() if isinstance(m, torch.nn.Conv2d)][1]
    assert wsecond.out_channels == after["/stem/channels"] and second.out_channels == before["/stem/channels"]
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert 2.5 * count(net) < count(wnet) < 4.5 * count(net)  # dense convs grow ~4x, depthwise ~2x
    with torch.no_grad():
        out = wnet.eval()(torch.randn(1, 3, 64, 128))
    assert out.shape == (1, base["num_classes"], 64, 128)


def test_scaling_twice_composes_and_round_trips(tmp_path):
    path = RESULTS / GENOTYPES[0]
    twice = scale_width(scale_width(path, 1.5), 2.0)
    assert twice.to_dict()["width_multiplier"] == 3.0
    out = tmp_path / "x3.json"
    assert cli.main(["scale", str(path), "--width", "3", "--out", str(out)]) == 0
    assert load_genotype(out).to_dict() == scale_width(path, 3.0).to_dict()
    assert _widths(json.loads(out.read_text()))["/stem/channels"] == 48  # 16 x 3


@pytest.mark.parametrize("width", [0, -1.0, float("nan"), float("inf")])
def test_bad_width_is_one_error_line(width, tmp_path, capsys):
    with pytest.raises(GenotypeError, match="width"):
        scale_width(RESULTS / GENOTYPES[0], width)
    out = tmp_path / "x.json"
    assert cli.main(["scale", str(RESULTS / GENOTYPES[0]), "--width", str(width), "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip().startswith("error: width:") and not out.exists()


def test_bad_genotype_and_same_file(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert cli.main(["scale", str(bad), "--width", "2", "--out", str(tmp_path / "o.json")]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    copy = tmp_path / "g.json"
    copy.write_text((RESULTS / GENOTYPES[0]).read_text())
    assert cli.main(["scale", str(copy), "--width", "2", "--out", str(copy)]) == 2
    assert copy.read_text() == (RESULTS / GENOTYPES[0]).read_text()


def test_retrain_widens_records_and_names_the_point(tiny_cityscapes, tmp_path, capsys):
    """`retrain --width 2` trains the scaled network, keeps it in the run, records the width and
    names its frontier point by it; the same run from a `workbench scale` file is the same network."""
    from test_seg_helpers import retrain_config

    from workbench.frontier import point_name
    from workbench.runs import RunDir
    from workbench.seg.model import build_from_spec, count_params, model_spec
    from workbench.seg.retrain import run_retrain

    source = tmp_path / "search" / "genotype.json"
    source.parent.mkdir()
    source.write_text((RESULTS / GENOTYPES[0]).read_text())
    (source.parent / "run_record.json").write_text(json.dumps({"preset": "autortnet", "latency_weight": 0.5}))
    run_dir = tmp_path / "retrain"
    rec = run_retrain(retrain_config(source, tiny_cityscapes, epochs=1, width=2.0), run_dir)
    assert rec["status"] == "finished" and rec["width_multiplier"] == 2.0 and rec["latency_weight"] == 0.5
    kept = json.loads((run_dir / "genotype.json").read_text())
    assert kept == scale_width(source, 2.0).to_dict() and kept["width_multiplier"] == 2.0
    scaled_file = tmp_path / "x2.json"
    assert cli.main(["scale", str(source), "--width", "2", "--out", str(scaled_file)]) == 0
    n = rec["metrics"]["params_m"] * 1e6
    from_file = count_params(build_from_spec(model_spec(genotype=scaled_file, baseline=None, num_classes=19)))
    plain = count_params(build_from_spec(model_spec(genotype=source, baseline=None, num_classes=19)))
    assert round(n) == from_file and from_file > 2.5 * plain
    assert point_name(RunDir(run_dir), rec, tmp_path) == "autortnet-lw0.5-x2-s3"

    # the search's latency table covers the searched widths only: the benchmark of the widened run
    # says why it has no LUT estimate instead of failing; the source genotype still gets one
    from workbench import steps

    lut_values = {"preset": "autortnet", "input_size": [64, 128], "device": "cpu", "threads": 1,
                  "lut_warmup": 0, "lut_repeats": 1, "lut_rounds": 1, "lut_cache_dir": ""}
    steps.build_lut(lut_values, source.parent / "latency_lut.json", genotype=source)
    bench = {"size": [64, 128], "device": "cpu", "threads": 1, "warmup": 0, "repeats": 1, "memory": False}
    wide = steps.benchmark({**bench, "run": str(run_dir)})["lut"]
    assert wide["predicted_ms"] is None and "widened" in wide["note"]
    assert steps.benchmark({**bench, "genotype": str(source)})["lut"]["predicted_ms"] > 0

    # a width for a baseline, or a width that is not a positive finite number: one error line, exit 2
    capsys.readouterr()
    for args in (["--baseline", "pspnet_lcnet_035", "--width", "2"], ["--genotype", str(source), "--width", "0"],
                 ["--genotype", str(source), "--width", "nan"]):
        out = tmp_path / f"bad{len(args)}-{args[-1]}"
        assert cli.main(["retrain", *args, "--data-root", str(tiny_cityscapes), "--run-dir", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: width:") and len(err.splitlines()) == 1 and not out.exists()
