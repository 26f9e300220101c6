"""`workbench scale --depth` / `retrain --depth`: every layer of a genotype repeated, as DARTS's
deeper evaluation network; a repeat of a downsampling cell keeps its stride."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from workbench import cli
from workbench.errors import ConfigError, GenotypeError
from workbench.nas.genotypes import genotype_from_dict, load_genotype, scale_depth, scale_width
from workbench.nas.network import build_network
from workbench.nas.space import get_space

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
CELLS = RESULTS / "proxy_genotypes" / "lgcnet-lw0.json"      # a chain with a fusion cell
HYPER = RESULTS / "proxy_genotypes" / "autortnet-lw0.5.json"  # AutoRTNet: trellis path + aggregation


def cell(index: int, kind: str, stride: int, op: str) -> dict:
    return {"index": index, "kind": kind, "stride": stride, "channels": 8, "nodes": 1,
            "edges": [{"from": 0, "to": 2, "op": op}, {"from": 1, "to": 2, "op": "skip_connect"}], "concat": [2]}


def test_hand_written_chain_by_hand():
    body = {"ops": ["none", "skip_connect", "sep_conv_3x3", "max_pool_3x3"],
            "cells": [cell(0, "reduction", 8, "sep_conv_3x3"), cell(1, "normal", 8, "max_pool_3x3")],
            "aggregation": {"kind": "aggregation", "stride": 8, "channels": 8, "inputs": [-1, 0, 1], "nodes": 1,
                            "edges": [{"from": 0, "to": 3, "op": "sep_conv_3x3"}], "concat": [3]}}
    g = {"schema": "workbench.genotype", "version": 2, "space": "cells", "space_version": 1, "preset": "x",
         "num_classes": 5, "input_size": [32, 64], "stem": {"channels": 8}, "head": {"channels": 8}, "body": body,
         "expected_latency_ms": 3.0}
    deep = scale_depth(genotype_from_dict(g, "test"), 3).to_dict()
    cells = deep["body"]["cells"]
    assert [c["kind"] for c in cells] == ["reduction"] + ["normal"] * 5
    assert [c["stride"] for c in cells] == [8] * 6 and [c["index"] for c in cells] == list(range(6))
    assert [c["edges"][0]["op"] for c in cells] == ["sep_conv_3x3"] * 3 + ["max_pool_3x3"] * 3
    assert deep["body"]["aggregation"]["inputs"] == [-1, 2, 5]  # the last copy of each cell it read
    assert deep["depth_multiplier"] == 3 and deep["expected_latency_ms"] is None
    assert scale_depth(deep, 2).to_dict()["depth_multiplier"] == 6  # composes
    net = build_network(load_genotype(deep)).eval()
    with torch.no_grad():
        assert net(torch.randn(1, 3, 32, 64)).shape == (1, 5, 32, 64)


@pytest.mark.parametrize("path", [CELLS, HYPER])
def test_searched_genotypes_deepen_build_and_grow(path):
    base = load_genotype(path)
    deep = scale_depth(path, 2)
    b, d = base.to_dict()["body"], deep.to_dict()["body"]
    assert len(d["cells"]) == 2 * len(b["cells"])
    for k, c in enumerate(d["cells"]):  # each cell is its origin's ops at its origin's stride
        origin = b["cells"][k // 2]
        assert c["edges"] == origin["edges"] and c["stride"] == origin["stride"]
        assert c["kind"] == (origin["kind"] if k % 2 == 0 else "normal")
    space = get_space(base.space)
    before, after = space.summary(base.body), space.summary(deep.body)
    assert after["depth"] == 2 * before["depth"] and len(after["downsampling"]) == len(before["downsampling"])
    assert deep.output_stride == base.output_stride
    net, dnet = build_network(base), build_network(deep)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(dnet) > count(net)
    with torch.no_grad():
        assert dnet.eval()(torch.randn(1, 3, 64, 128)).shape == (1, base.num_classes, 64, 128)


def test_width_and_depth_together_through_the_cli(tmp_path, capsys):
    out = tmp_path / "x2d2.json"
    assert cli.main(["scale", str(HYPER), "--width", "2", "--depth", "2", "--out", str(out)]) == 0
    assert load_genotype(out).to_dict() == scale_depth(scale_width(HYPER, 2.0), 2).to_dict()
    got = json.loads(out.read_text())
    assert got["width_multiplier"] == 2.0 and got["depth_multiplier"] == 2
    capsys.readouterr()
    for args in (["--depth", "0"], ["--depth", "1"]):
        bad = tmp_path / f"bad{args[-1]}.json"
        assert cli.main(["scale", str(HYPER), *args, "--out", str(bad)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(("error: depth:", "error: width/depth:")) and not bad.exists()
    for repeats in (0, 1.5, True):
        with pytest.raises(GenotypeError, match="depth"):
            scale_depth(HYPER, repeats)
    with pytest.raises(GenotypeError, match="'mbconv' space has no deeper form"):
        get_space("mbconv").deepen({}, 2, "g.json")


def test_retrain_depth_is_recorded_and_refused_for_a_baseline(tiny_cityscapes, tmp_path):
    from test_seg_helpers import retrain_config

    from workbench.frontier import point_name
    from workbench.runs import RunDir
    from workbench.seg.model import model_spec
    from workbench.seg.retrain import run_retrain

    source = tmp_path / "search" / "genotype.json"
    source.parent.mkdir()
    source.write_text(HYPER.read_text())
    (source.parent / "run_record.json").write_text(json.dumps({"preset": "autortnet", "latency_weight": 0.5}))
    rec = run_retrain(retrain_config(source, tiny_cityscapes, epochs=1, depth=2), tmp_path / "retrain")
    assert rec["status"] == "finished" and rec["depth_multiplier"] == 2
    assert json.loads((tmp_path / "retrain" / "genotype.json").read_text()) == scale_depth(source, 2).to_dict()
    assert point_name(RunDir(tmp_path / "retrain"), rec, tmp_path) == "autortnet-lw0.5-d2-s3"
    assert model_spec(genotype=source, baseline=None, num_classes=19, depth=2).fingerprint != \
        model_spec(genotype=source, baseline=None, num_classes=19).fingerprint
    with pytest.raises(ConfigError, match="depth: deepens a searched genotype"):
        run_retrain(retrain_config(None, tiny_cityscapes, baseline="pspnet_lcnet_035", depth=2), tmp_path / "b")
