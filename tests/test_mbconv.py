"""The MBConv space (ProxylessNAS / FBNet-style blocks), added as one package plus its registration:
it searches, derives, rebuilds, retrains, benchmarks and appears on the frontier like the others."""

from __future__ import annotations

import copy
import dataclasses
import json
import math

import pytest
import torch
from conftest import recomputed_one_shot_score, same_weight_gradients

from workbench import runs
from workbench.device import seed_everything
from workbench.errors import ConfigError, GenotypeError
from workbench.jsonio import atomic_write_json
from workbench.nas.genotypes import load_genotype, save_genotype
from workbench.nas.latency.table import predict_genotype_latency
from workbench.nas.network import build_network
from workbench.nas.presets import get_preset
from workbench.nas.search import build_supernet, make_genotype, run_search
from workbench.nas.space import space_names
from workbench.nas.spaces.mbconv.supernet import SKIP, MBWeights

SMALL = dict(input_size=(32, 64), crop_size=(32, 64), widths=[8, 8, 16, 16], depths=[1, 2, 2, 1],
             kernels=[3, 5], expansions=[2, 4], width_multipliers=[0.5, 1.0], stem_channels=8, head_channels=8,
             decoder_channels=8, threads=1)

pytestmark = pytest.mark.usefixtures("one_thread")


def toy_lut(model, image):
    """Every piece costs its input size, so wider, bigger and earlier layers cost more."""
    return {"schema": "workbench.latency_lut", "version": 1, "input_size": list(image),
            "entries": {p.key: sum(math.prod(s) for s in p.shapes) / 1e3 for p in model.lut_probes(image)}}


def one_hot(model, blocks: list[int], widths: list[int]) -> MBWeights:
    eye = torch.eye
    return MBWeights([eye(len(spec.choices))[b] for spec, b in zip(model.layers_spec, blocks)],
                     [eye(len(spec.out_widths))[w] for spec, w in zip(model.layers_spec, widths)])


def test_registered_with_its_config_and_preset():
    assert "mbconv" in space_names()
    cfg = get_preset("mbconv", **SMALL)
    assert cfg.space.name == "mbconv" and cfg.space.widths == [8, 8, 16, 16] and cfg.size_divisor() == 32
    with pytest.raises(ConfigError, match="depths: one depth per stage"):
        get_preset("mbconv", widths=[8, 16], depths=[1])
    with pytest.raises(ConfigError, match="unknown parameter gcn for space mbconv"):
        get_preset("mbconv", gcn=True)


def test_supernet_forward_derivation_and_rebuild(tmp_path):
    cfg = get_preset("mbconv", **SMALL)
    torch.manual_seed(0)
    model = build_supernet(cfg, 5)
    assert model(torch.randn(2, 3, 32, 64)).shape == (2, 5, 32, 64)
    assert [len(s.choices) for s in model.layers_spec] == [8, 8, 9, 8, 9, 8]  # skip after a stage's first layer
    with torch.no_grad():  # skip layer 2, pick k5 e4 SE at half width elsewhere
        for k, spec in enumerate(model.layers_spec):
            model.arch[f"block{k}"].copy_(torch.eye(len(spec.choices))[spec.choices.index(
                SKIP if k == 2 else "k5_e4_se")] * 5)
            model.arch[f"width{k}"].copy_(torch.tensor([5.0, 0.0]))
    g = make_genotype(cfg, model.derive(), 5)
    assert [len(s) for s in g.body.stages] == [1, 1, 2, 1]
    assert all(b.kernel == 5 and b.expand == 4 and b.se for s in g.body.stages for b in s)
    assert [b.channels for s in g.body.stages for b in s] == [4, 4, 8, 8, 8]
    path = save_genotype(g, tmp_path / "genotype.json")
    again = load_genotype(path)
    assert again.space == "mbconv" and again.to_dict() == g.to_dict()
    net = build_network(path)
    assert net.output_stride == 8 and net.size_divisor == 32
    assert net(torch.randn(1, 3, 64, 96)).shape == (1, 5, 64, 96)


def test_expected_latency_of_one_hot_choices_is_the_genotype_prediction():
    """Independent check: the supernet's latency model vs the derived network's own table sum."""
    cfg = get_preset("mbconv", **SMALL)
    model = build_supernet(cfg, 5)
    lut = toy_lut(model, cfg.input_size)
    latency = model.latency_model(lut)
    for blocks, widths in (([0] * 6, [0] * 6), ([7, 3, 1, 5, 2, 6], [1, 0, 1, 1, 0, 1]), ([1] * 6, [1] * 6)):
        w = one_hot(model, blocks, widths)
        with torch.no_grad():
            for k in range(6):
                model.arch[f"block{k}"].copy_(w.blocks[k] * 50)
                model.arch[f"width{k}"].copy_(w.widths[k] * 50)
        g = make_genotype(cfg, model.derive(), 5)
        assert float(latency(w)) == pytest.approx(predict_genotype_latency(g, lut), rel=1e-6)
    # wider, bigger blocks cost more; the gradient pushes probability away from them
    w = model.arch_weights()
    latency(w).backward()
    grad = model.arch["width1"].grad
    assert grad[1] > grad[0]  # full width costs more than half width
    assert float(latency.uniform()) > 0


def test_bad_bodies_are_genotype_errors(tmp_path):
    cfg = get_preset("mbconv", **SMALL)
    d = make_genotype(cfg, build_supernet(cfg, 5).derive(), 5).to_dict()
    for mutate, message in ((lambda b: b["stages"][1].update(stride=4), "stride must be 8"),
                            (lambda b: b["stages"][0].update(layers=[]), "at least its first"),
                            (lambda b: b["stages"][0]["layers"][0].update(kernel=4), "kernel must be odd"),
                            (lambda b: b.update(lateral_stage=9), "lateral_stage 9"),
                            (lambda b: b["stages"][0]["layers"][0].pop("se"), "missing field 'se'")):
        bad = {**d, "body": {**d["body"], "stages": [dict(s, layers=[dict(x) for x in s["layers"]])
                                                     for s in d["body"]["stages"]]}}
        mutate(bad["body"])
        with pytest.raises(GenotypeError, match=message):
            load_genotype(bad)


def test_search_retrain_benchmark_and_frontier(tmp_path, tiny_cityscapes):
    from workbench import steps

    lut_cache = str(tmp_path / "lut")
    rec = run_search({"preset": "mbconv", **SMALL, "dataset": "random", "epochs": 2, "batch_size": 2,
                      "max_val_images": 1, "warmup_epochs": 0, "lut_warmup": 0, "lut_repeats": 1, "lut_rounds": 1,
                      "lut_calibrate": 1, "lut_cache_dir": lut_cache, "device": "cpu"}, tmp_path / "search")
    assert rec["status"] == "finished" and rec["metrics"]["expected_latency_ms"] > 0
    assert steps.list_runs(tmp_path)[0]["kind"] == "search"  # the runs index reads it like any run
    genotype = tmp_path / "search" / "genotype.json"
    retrain = steps.retrain({"genotype": str(genotype), "data_root": str(tiny_cityscapes), "epochs": 1,
                             "crop_size": [64, 128], "batch_size": 4, "device": "cpu", "threads": 1},
                            tmp_path / "retrain")
    assert retrain["status"] == "finished" and 0 <= retrain["metrics"]["miou"] <= 1
    bench = steps.benchmark({"run": str(tmp_path / "retrain"), "size": [32, 64], "repeats": 2, "warmup": 1,
                             "memory": False, "device": "cpu", "threads": 1}, tmp_path / "retrain" / "benchmark")
    assert bench["lut"]["predicted_ms"] > 0  # the search run's table, found through the retrain's genotype source
    front = steps.frontier({"roots": [str(tmp_path)]}, tmp_path / "frontier")
    assert front["points"] == 1
    # the views draw it through its own module (widgets/spaces/mbconv.py)
    from widgets.spaces import architecture_figures

    (title, fig), = architecture_figures(load_genotype(genotype))
    assert title == "layers" and len(fig.data) == sum(len(s) for s in load_genotype(genotype).body.stages)


def test_exact_weights_run_only_the_selected_blocks_as_the_dense_one_hot_forward():
    """MBConvSupernet.exact_weights (derive's inverse, plain floats): deriving from its one-hot
    weights gives the body back; the supernet runs that network with the dense one-hot forward's
    output and weight gradients bit for bit, running one block per kept layer and none for a skipped
    one; a body of another supernet is one GenotypeError."""
    cfg = get_preset("mbconv", **SMALL)
    torch.manual_seed(0)
    model = build_supernet(cfg, 5)
    x = torch.randn(2, 3, 32, 64)
    ran: list[int] = []
    hooks = [block.register_forward_hook(lambda *_: ran.append(1)) for layer in model.layers for block in layer.blocks]
    for body in model.random_bodies(4, seed=1):
        exact = model.exact_weights(body)
        dense = MBWeights([torch.tensor(p) for p in exact.blocks], [torch.tensor(q) for q in exact.widths])
        with torch.no_grad():
            for k in range(len(model.layers_spec)):
                model.arch[f"block{k}"].copy_(dense.blocks[k] * 50)
                model.arch[f"width{k}"].copy_(dense.widths[k] * 50)
        assert model.derive().to_dict() == body.to_dict()
        model.eval()
        ran.clear()
        with torch.no_grad():
            out = model(x, exact)
            assert len(ran) == sum(len(stage) for stage in body.stages)
            assert torch.equal(out, model(x, dense))
        assert same_weight_gradients(model, x, dense, exact)
    for hook in hooks:
        hook.remove()
    body = model.random_bodies(1, seed=2)[0]
    for mutate, message in (
            (lambda b: b.stages.pop(), "stages: 3 stages for a supernet of 4"),
            (lambda b: b.stages[1].extend(b.stages[1] * 3), "stages\\[1\\]: .* layers for a stage of 1-2"),
            (lambda b: b.stages[0].__setitem__(0, dataclasses.replace(b.stages[0][0], kernel=7)),
             "stages\\[0\\].layers\\[0\\]: block k7_"),
            (lambda b: b.stages[0].__setitem__(0, dataclasses.replace(b.stages[0][0], channels=5)),
             "5 channels is not one of \\[4, 8\\]"),
            (lambda b: setattr(b, "decoder_channels", 16), "decoder: stage 1 at 16ch")):
        bad = copy.deepcopy(body)
        mutate(bad)
        with pytest.raises(GenotypeError, match=message):
            model.exact_weights(bad)


def test_single_path_search_trains_one_sampled_network_per_step(tmp_path):
    """`weight_paths: sampled` on the MBConv space: it finishes, its weight steps train only the drawn
    blocks (a block never drawn keeps its initial weights), and it is deterministic."""
    lut = tmp_path / "lut.json"
    atomic_write_json(lut, toy_lut(build_supernet(get_preset("mbconv", **SMALL), 19), SMALL["input_size"]))
    settings = {"preset": "mbconv", **SMALL, "dataset": "random", "epochs": 2, "steps_per_epoch": 2, "batch_size": 2,
                "max_val_images": 0, "warmup_epochs": 0, "lut_path": str(lut), "device": "cpu",
                "weight_paths": "sampled"}
    for name in ("a", "b"):
        assert run_search(settings, tmp_path / name)["status"] == "finished"
    a, b = (runs.RunDir(tmp_path / n).load_checkpoint()["model"] for n in ("a", "b"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    seed_everything(0)  # the search's own seed and build: its initial weights
    fresh = build_supernet(get_preset("mbconv", **SMALL), 19).state_dict()
    depthwise = [k for k in a if k.startswith("layers.") and ".blocks." in k and k.endswith("body.0.weight")]
    moved = [k for k in depthwise if not torch.equal(a[k], fresh[k])]
    assert moved and len(moved) < len(depthwise)


def test_one_shot_strategy_scores_priced_mbconv_networks_on_its_trained_supernet(tmp_path):
    """`strategy: one_shot` on the MBConv space: single-path training, then the draws priced near the
    target scored one at a time on the trained supernet; the kept genotype is the best-scored draw,
    its price within the band, and its recorded score recomputes from the checkpoint."""
    cfg = get_preset("mbconv", **SMALL)
    model = build_supernet(cfg, 19)
    lut = toy_lut(model, SMALL["input_size"])
    atomic_write_json(tmp_path / "lut.json", lut)
    prices = sorted(predict_genotype_latency(make_genotype(cfg, b, 19), lut) for b in model.random_bodies(16, 9))
    settings = {"preset": "mbconv", **SMALL, "dataset": "random", "epochs": 2, "steps_per_epoch": 2, "batch_size": 2,
                "max_val_images": 0, "warmup_epochs": 0, "lut_path": str(tmp_path / "lut.json"), "device": "cpu",
                "seed": 3, "weight_paths": "sampled", "strategy": "one_shot", "target_latency_ms": prices[8],
                "sample_band": 0.5, "sample_candidates": 3, "one_shot_calib": 4}
    run_dir = tmp_path / "one_shot"
    rec = run_search(settings, run_dir)
    assert rec["status"] == "finished" and rec["one_shot"]["candidates"] == 3
    table = json.loads((run_dir / "candidates.json").read_text())
    scores = [c["one_shot_miou"] for c in table["candidates"]]
    assert table["winner"] == scores.index(max(scores)) == rec["one_shot"]["winner"]
    assert all(abs(c["price_ms"] / prices[8] - 1) <= 0.5 for c in table["candidates"])
    winner = table["candidates"][table["winner"]]
    kept = load_genotype(run_dir / "genotype.json")
    assert kept.to_dict() == winner["genotype"]
    assert predict_genotype_latency(kept, lut) == pytest.approx(winner["price_ms"], rel=1e-6)
    # the recorded score, recomputed from the checkpoint (batch norm re-estimated on the same images)
    assert recomputed_one_shot_score(settings, run_dir, winner["genotype"], 3) == pytest.approx(winner["one_shot_miou"],
                                                                                                abs=1e-6)
