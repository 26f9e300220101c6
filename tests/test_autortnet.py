"""AutoRTNet: hyper-cell trellis, path decoding, aggregation cell, latency over path choices, search."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math

import pytest
import torch
from conftest import kill_search_after_first_checkpoint, shared_table

from workbench import runs
from workbench.cli import main
from workbench.config import from_dict
from workbench.errors import ConfigError, GenotypeError
from workbench.jsonio import atomic_write_json
from workbench.nas import search
from workbench.nas.darts import MixedOp
from workbench.nas.genotypes import Genotype, load_genotype, save_genotype
from workbench.nas.latency.table import predict_genotype_latency
from workbench.nas.network import build_network
from workbench.nas.presets import get_preset
from workbench.nas.spaces.hyper.config import HyperConfig
from workbench.nas.spaces.hyper.decode import decode_body, decode_path, encode_body
from workbench.nas.spaces.hyper.supernet import HyperSupernet, HyperWeights
from workbench.nas.spaces.hyper.trellis import CHOICES, HyperSpace, local_probs
from workbench.nas.spaces.mbconv.supernet import MBConvSupernet
from workbench.nas.supernet import Supernet

OPS = ["none", "skip_connect", "max_pool_3x3", "sep_conv_3x3"]
SMALL = dict(channels=4, nodes=1, ops=list(OPS), aggregation_channels=4, aggregation_nodes=2)
TINY = dict(dataset="random", input_size=[32, 64], crop_size=[32, 64], channels=4, stem_channels=4,
            head_channels=4, nodes=1, num_cells=4, batch_size=2, ops=OPS, max_val_images=2,
            warmup_epochs=0, arch_lr=0.1, lut_warmup=0, lut_repeats=1, threads=1, device="cpu")


pytestmark = pytest.mark.usefixtures("one_thread")


def hs(stem_channels: int = 4, head_channels: int = 4, **settings) -> HyperSpace:
    """The trellis of a validated HyperConfig (the space's own settings)."""
    return HyperSpace(from_dict(HyperConfig, settings), stem_channels, head_channels)


def genotype_of(model: HyperSupernet, size: tuple[int, int], body=None) -> Genotype:
    """A decoded body in the genotype container, as the search loop writes it."""
    return Genotype(space="hyper", body=body or model.derive(), stem_channels=model.stem_channels,
                    head_channels=model.head_channels, num_classes=model.num_classes, input_size=size,
                    preset="autortnet")


def trellis(g: Genotype) -> dict:
    return g.body.extra["trellis"]


def toy_lut(model: HyperSupernet, image: tuple[int, int]) -> dict:
    """Deterministic table: every piece costs its input size (so work at 1/4 costs more than at 1/32)."""
    return {"schema": "workbench.latency_lut", "version": 1, "input_size": list(image),
            "entries": {p.key: sum(math.prod(s) for s in p.shapes) / 1e3 for p in model.lut_probes(image)}}


# -- decoding ---------------------------------------------------------------------------------------
def brute_force(layers: int, downs: int, w: list[list[float]]) -> tuple[int, ...]:
    """Most probable downsampling positions by enumerating every valid path (the reference)."""
    best, best_p = None, -1.0
    for pos in itertools.combinations(range(layers), downs):
        p, scale = 1.0, 0
        for layer in range(layers):
            k, d, r = w[layer]
            can_stay = downs - scale <= layers - layer - 1
            can_down = scale < downs
            total = (k + r) * can_stay + d * can_down
            p *= (d if layer in pos else k + r) / total
            scale += layer in pos
        if p > best_p:
            best, best_p = pos, p
    return best


def test_hand_made_table_decodes_to_the_expected_path():
    space = hs(layers=5, **SMALL)
    w = [[0.6, 0.3, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.1, 0.8, 0.1], [0.1, 0.8, 0.1]]
    # downs at 1, 3, 4: 0.9 * 0.8 * 0.8 * 1 * 1 (layers 3, 4 must go down) beats every other placement;
    # layer 0 keeps (0.6 > 0.1), layer 2 is pruned (0.6 / 0.8 > 0.5)
    path = decode_path(space, w)
    assert [s["choice"] for s in path] == ["keep", "down", "prune", "down", "down"]
    assert [s["stride"] for s in path] == [4, 8, 8, 16, 32]
    assert [s["layer"] for s in path] == list(range(5))
    # the threshold only decides keep vs prune on the layers that stay
    assert [s["choice"] for s in decode_path(space, w, prune_threshold=0.8)][2] == "keep"
    assert [s["choice"] for s in decode_path(space, w, prune_threshold=0.0)][:3] == ["prune", "down", "prune"]


@pytest.mark.parametrize("layers,stride", [(4, 32), (6, 32), (5, 16), (3, 8)])
def test_decoding_is_valid_deterministic_and_matches_enumeration(layers, stride):
    space = hs(layers=layers, output_stride=stride, **{**SMALL, "aggregation_strides": [8]})
    g = torch.Generator().manual_seed(layers * 100 + stride)
    for _ in range(20):
        w = torch.rand(layers, 3, generator=g, dtype=torch.float64) + 1e-3
        w = w / w.sum(1, keepdim=True)
        path = decode_path(space, w)
        assert path == decode_path(space, w.clone())
        downs = tuple(s["layer"] for s in path if s["choice"] == "down")
        assert downs == brute_force(layers, space.downs, w.tolist())
        strides = [4] + [s["stride"] for s in path]
        assert strides[-1] == stride
        assert all(b == a * (2 if s["choice"] == "down" else 1) for a, b, s in zip(strides, strides[1:], path))
        for s in path:
            if s["choice"] != "down":
                row = w[s["layer"]].tolist()
                assert (s["choice"] == "prune") == (row[2] / (row[0] + row[2]) > 0.5)


def test_decoded_genotype_rebuilds_a_working_network(tmp_path):
    torch.manual_seed(0)
    space = hs(layers=5, aggregation_strides=[8, 16], **SMALL)
    model = HyperSupernet(space, num_classes=5)
    with torch.no_grad():  # make the decision clear: prune layer 0, then the 8-stride aggregation
        model.arch.alphas["hyper"].copy_(torch.tensor([[0, 0, 3.0], [3.0, 0, 0], [0, 3.0, 0], [0, 3.0, 0], [0, 3.0, 0]]))
        model.arch.alphas["aggregation_scale"].copy_(torch.tensor([2.0, 0.0]))
    g = genotype_of(model, (64, 128))
    assert [s["choice"] for s in trellis(g)["path"]] == ["prune", "keep", "down", "down", "down"]
    assert trellis(g)["depth"] == len(g.body.cells) == 4 and trellis(g)["scales"] == [4, 8, 16, 32]
    assert [(c.kind, c.stride, c.channels) for c in g.body.cells] == [
        ("normal", 4, 4), ("reduction", 8, 4), ("reduction", 16, 8), ("reduction", 32, 16)]
    agg = g.body.aggregation
    assert agg.kind == "aggregation" and agg.stride == 8
    # inputs: the last cell at each scale (cells 0..3 at 1/4 ... 1/32), only those a kept edge reads
    assert set(agg.inputs) <= {0, 1, 2, 3} and len(agg.inputs) == len({e.src for e in agg.edges if e.src < len(agg.inputs)})
    save_genotype(g, tmp_path / "genotype.json")
    net = build_network(tmp_path / "genotype.json")
    assert net.output_stride == 8
    assert net(torch.randn(1, 3, 64, 128)).shape == (1, 5, 64, 128)
    assert trellis(load_genotype(tmp_path / "genotype.json")) == trellis(g)


def test_space_errors_are_one_line_config_errors():
    with pytest.raises(ConfigError, match="layers: 2 hyper-cell layers cannot reach output stride 32"):
        hs(layers=2, output_stride=32)
    with pytest.raises(ConfigError, match="aggregation_strides"):
        hs(layers=4, output_stride=16, aggregation_strides=[32])


# -- relaxed network and latency ------------------------------------------------------------------------
def test_relaxed_supernet_forward_gradients_and_path_distribution():
    torch.manual_seed(0)
    space = hs(layers=4, **SMALL)
    model = HyperSupernet(space, num_classes=3)
    out = model(torch.randn(2, 3, 32, 64))
    assert out.shape == (2, 3, 32, 64)
    out.square().mean().backward()
    for name in ("hyper", "aggregation_scale"):
        grad = model.arch.alphas[name].grad
        assert grad is not None and grad.abs().sum() > 0
    ids = {id(p) for p in model.arch_parameters()}
    assert id(model.arch.alphas["hyper"]) in ids
    assert not ids & {id(p) for p in model.weight_parameters()}
    state = model.space_state()
    assert state["choices"] == list(CHOICES) and len(state["weights"]) == 4
    assert all(abs(sum(r) - 1) < 1e-5 for r in state["weights"] + state["scale_probs"])
    assert state["scale_probs"][-1] == [0, 0, 0, 1.0]  # every valid path ends at 1/32
    # masked, renormalized choices: no downsampling at 1/32, forced downsampling when layers run out
    probs = local_probs(space, torch.full((4, 3), 1 / 3))
    assert probs[1, 0].tolist() == [0.0, 1.0, 0.0] and probs[3, 2].tolist() == [0.0, 1.0, 0.0]
    assert set(probs) == {(0, 0), (1, 0), (1, 1), (2, 1), (2, 2), (3, 2), (3, 3)}


def one_hot_weights(model: HyperSupernet, path: list[int], op: str) -> HyperWeights:
    cells = [torch.nn.functional.one_hot(torch.full((len(s.edges()),), model.ops.index(op)), len(model.ops)).float()
             for s in model.specs]
    return HyperWeights(cells, torch.nn.functional.one_hot(torch.tensor(path), 3).float(), None)


def test_expected_latency_of_a_one_hot_path_equals_the_genotype_prediction():
    """Independent check: the trellis latency model vs the genotype's own LUT sum (latency.py)."""
    space = hs(layers=5, aggregation=False, **SMALL)
    model = HyperSupernet(space, num_classes=3)
    lut = toy_lut(model, (64, 128))
    latency = model.latency_model(lut)
    for path in ([0, 1, 2, 1, 1], [1, 1, 1, 2, 0], [2, 2, 1, 1, 1]):
        w = one_hot_weights(model, path, "sep_conv_3x3")
        g = genotype_of(model, (64, 128), decode_body(model, w))
        assert [CHOICES.index(s["choice"]) for s in trellis(g)["path"]] == path
        assert float(latency(w)) == pytest.approx(predict_genotype_latency(g, lut), rel=1e-6)
    lut["calibration"] = {"scale": 1.7}  # a calibrated table scales both the same way
    latency = model.latency_model(lut)
    assert float(latency(w)) == pytest.approx(predict_genotype_latency(g, lut), rel=1e-6)
    # a pruned layer costs nothing; the same work at 1/4 costs more than after downsampling
    costs = [float(latency(one_hot_weights(model, p, "sep_conv_3x3"))) for p in
             ([2, 1, 1, 1, 2], [0, 1, 1, 1, 2], [2, 1, 1, 1, 0])]
    assert costs[0] < costs[2] < costs[1]


def test_latency_term_favours_pruning_and_early_downsampling():
    torch.manual_seed(0)
    model = HyperSupernet(hs(layers=5, **SMALL), num_classes=3)
    latency = model.latency_model(toy_lut(model, (64, 128)))
    with torch.no_grad():
        assert float(latency(model.arch_weights())) == pytest.approx(float(latency.uniform()), rel=1e-2)
    latency(model.arch_weights()).backward()
    grad = model.arch.alphas["hyper"].grad
    assert (grad[:, 0] > 0).all()          # more "keep" costs more everywhere
    assert (grad[:3, 2] < 0).all()         # more "prune" saves where a layer can stay
    assert grad[0, 1] < 0                  # downsampling at the first layer saves


# -- the search --------------------------------------------------------------------------------------
def autortnet(**kw) -> dict:
    """Config dict of the `autortnet` preset at test size."""
    return {"preset": "autortnet", **TINY, **kw}


def write_toy_lut(cfg: dict, path) -> str:
    model = search.build_supernet(search.resolve_config(cfg), 19)
    atomic_write_json(path, toy_lut(model, tuple(cfg["input_size"])))
    return str(path)


def expected_depth(hyper: dict) -> float:
    """E[number of non-pruned cells] under the recorded path distribution."""
    w, mass, total = hyper["weights"], [1.0] + [0.0] * (len(hyper["scales"]) - 1), 0.0
    for layer, row in enumerate(w):
        after = hyper["scale_probs"][layer]
        for i, m in enumerate(mass):
            down = after[i + 1] > 0 if i + 1 < len(after) else False
            stay = after[i] > 0
            norm = (row[0] + row[2]) * stay + row[1] * down
            if m:
                total += m * (row[0] * stay + row[1] * down) / norm
        mass = after
    return total


def test_larger_latency_weight_prunes_more_or_downsamples_earlier(tmp_path):
    lut = write_toy_lut(autortnet(), tmp_path / "lut.json")
    common = dict(epochs=2, seed=1, max_val_images=0, lut_path=lut)
    free = search.run_search(autortnet(latency_weight=0.0, **common), tmp_path / "free")
    fast = search.run_search(autortnet(latency_weight=20.0, **common), tmp_path / "fast")
    assert fast["metrics"]["expected_latency_ms"] < free["metrics"]["expected_latency_ms"]
    g_free, g_fast = (load_genotype(tmp_path / n / "genotype.json") for n in ("free", "fast"))
    downs = [[s["layer"] for s in trellis(g)["path"] if s["choice"] == "down"] for g in (g_free, g_fast)]
    # the derived networks may coincide after two tiny epochs; the fast one is never deeper or later
    assert len(g_fast.body.cells) <= len(g_free.body.cells) and sum(downs[1]) <= sum(downs[0])
    h_free, h_fast = (runs.RunDir(tmp_path / n).alphas()[-1]["space_state"] for n in ("free", "fast"))
    assert expected_depth(h_fast) < expected_depth(h_free)


def test_autortnet_search_records_and_resume(tmp_path):
    cfg = autortnet(epochs=3, seed=3, relaxation="gumbel", lut_cache_dir=str(tmp_path / "lutcache"))
    cfg["lut_path"] = shared_table(cfg, tmp_path / "lut.json")
    reference = tmp_path / "reference"
    rec = search.run_search(cfg, reference)
    run = runs.RunDir(reference)
    assert rec["status"] == "finished" and rec["kind"] == "search" and rec["preset"] == "autortnet"
    alphas = run.alphas()
    assert [a["epoch"] for a in alphas] == [-1, 0, 1, 2]
    hyper = alphas[-1]["space_state"]
    assert hyper["choices"] == ["keep", "down", "prune"] and hyper["scales"] == [4, 8, 16, 32]
    assert len(hyper["weights"]) == 4 and all(len(r) == 3 for r in hyper["weights"])
    kinds = [c["kind"] for c in alphas[-1]["cells"]]
    assert set(kinds) == {"normal", "reduction", "aggregation"} and kinds.count("aggregation") == 2
    assert alphas[0]["space_state"]["weights"] != hyper["weights"]  # the path weights were searched
    assert all(a["space_state"]["path"][-1]["stride"] == 32 for a in alphas)
    g = load_genotype(run.genotype_path)
    assert trellis(g)["path"] and g.body.aggregation is not None and g.body.fusion is None
    assert trellis(g)["depth"] == len(g.body.cells) == sum(s["choice"] != "prune" for s in trellis(g)["path"])
    assert build_network(g)(torch.randn(1, 3, 32, 64)).shape == (1, 19, 32, 64)
    assert g.expected_latency_ms == rec["metrics"]["expected_latency_ms"]
    assert [m["epoch"] for m in run.metrics()] == [0, 1, 2]

    # kill a CLI run after its first checkpoint, resume, and end with the same genotype and alphas
    killed = tmp_path / "killed"
    ckpt = kill_search_after_first_checkpoint("autortnet", cfg, killed)
    assert torch.load(ckpt, weights_only=True)["epoch"] < 2
    assert search.run_search(cfg, killed, resume=True)["status"] == "finished"
    assert json.loads((killed / "genotype.json").read_text()) == json.loads(run.genotype_path.read_text())
    resumed = runs.RunDir(killed).alphas()
    assert [a["epoch"] for a in resumed] == [-1, 0, 1, 2]
    assert resumed[-1]["space_state"] == hyper and resumed[-1]["cells"] == alphas[-1]["cells"]


def test_bad_hyper_settings_are_config_errors(tmp_path, capsys):
    with pytest.raises(ConfigError, match="gcn"):
        get_preset("autortnet", gcn=True)
    with pytest.raises(ConfigError, match="fusion"):
        get_preset("autortnet", fusion=True)
    with pytest.raises(ConfigError, match="layers: 2 hyper-cell layers"):
        get_preset("autortnet", num_cells=2)  # the 0.1 name of `layers`, accepted for one version
    assert main(["search", "--preset", "autortnet", "--run-dir", str(tmp_path / "x"),
                 "--set", "aggregation_strides=[64]"]) == 2
    assert "aggregation_strides" in capsys.readouterr().err


def test_genotype_with_a_path_that_disagrees_with_its_cells_is_rejected():
    model = HyperSupernet(hs(layers=4, **SMALL), num_classes=3)
    d = genotype_of(model, (32, 64)).to_dict()
    load_genotype(d)  # the decoded genotype itself is consistent
    next(s for s in d["body"]["trellis"]["path"] if s["choice"] == "down")["choice"] = "keep"
    with pytest.raises(GenotypeError, match="trellis.path does not match"):
        load_genotype(d)


def test_encode_body_inverts_decoding_and_runs_only_the_selected_network():
    """encode_body: decoding its one-hot weights gives the body back, and the supernet run with them
    reads only the selected ops (an unselected op's weights change nothing, a selected one's do)."""
    torch.manual_seed(0)
    ops = ["none", "skip_connect", "sep_conv_3x3", "conv_3x3"]
    model = HyperSupernet(hs(layers=5, **{**SMALL, "ops": ops}), num_classes=3).eval()
    bodies = model.random_bodies(8, seed=3)
    assert len({json.dumps(b.to_dict(), sort_keys=True) for b in bodies}) > 1
    for body in bodies:
        w = encode_body(model, body)
        assert decode_body(model, w).to_dict() == body.to_dict()
        assert w.path.sum(1).tolist() == [1.0] * 5 and float(w.scale.sum()) == 1.0
    # a selected edge whose op is one of the two parametric ones, and the other one on that edge
    body, k, e, sel = next((b, k, e, int(cw[e].argmax())) for b in bodies for k, cw in enumerate(encode_body(model, b))
                           for e in range(cw.shape[0]) if cw[e].sum() == 1 and ops[int(cw[e].argmax())].endswith("3x3"))
    w = encode_body(model, body)
    unsel = ops.index("conv_3x3" if ops[sel] == "sep_conv_3x3" else "sep_conv_3x3")
    mixed = model.cells[k].edge_ops[e]
    x = torch.randn(1, 3, 32, 64)
    ref = model(x, w)
    with torch.no_grad():
        params = list(mixed.ops[mixed.active.index(unsel)].parameters())
        assert params
        for p in params:
            p.add_(1.0)
        assert torch.equal(model(x, w), ref)
        for p in mixed.ops[mixed.active.index(sel)].parameters():
            p.mul_(-2.0)
        assert not torch.allclose(model(x, w), ref)


@pytest.mark.parametrize("aggregation", [True, False])
def test_exact_weights_run_the_selected_network_alone_with_the_dense_forwards_numbers(aggregation):
    """exact_weights skips every op, cell and aggregation cell its one-hot weights leave out: the
    output and every weight gradient equal the dense one-hot forward's bit for bit, and no unselected
    op runs (what makes a single-path training step cost about one network)."""
    torch.manual_seed(0)
    ops = ["none", "skip_connect", "sep_conv_3x3", "conv_3x3", "max_pool_3x3"]
    model = HyperSupernet(hs(layers=5, **{**SMALL, "ops": ops, "aggregation": aggregation}), num_classes=3)
    x = torch.randn(2, 3, 32, 64)
    calls = []
    for mixed in (m for m in model.modules() if isinstance(m, MixedOp)):
        for op in mixed.ops:
            op.register_forward_hook(lambda mod, inp, out: calls.append(mod))
    for body in model.random_bodies(4, seed=2):
        dense, exact = encode_body(model, body), model.exact_weights(body)
        assert decode_body(model, exact).to_dict() == body.to_dict()
        model.eval()
        with torch.no_grad():
            assert torch.equal(model(x, exact), model(x, dense))
        grads = []
        model.train()
        for w in (dense, exact):
            model.zero_grad(set_to_none=True)
            calls.clear()
            model(x, w).square().mean().backward()
            grads.append([torch.zeros_like(p) if p.grad is None else p.grad for p in model.weight_parameters()])
            ran = len(calls)
        assert all(torch.equal(a, b) for a, b in zip(*grads))
        selected = sum(int((cw[:, 1:] > 0).sum()) for cw in dense)  # selected non-`none` ops
        assert ran == selected < sum(len(m.ops) for m in model.modules() if isinstance(m, MixedOp))


def test_sampled_weight_paths_train_one_drawn_network_per_step(tmp_path, monkeypatch):
    """weight_paths: sampled: every weight step runs one exact network drawn from the space (the
    same draws in a second run of the same seed), the search still finishes and derives; a space
    that cannot run one network alone refuses it in one line."""
    lut = write_toy_lut(autortnet(), tmp_path / "lut.json")
    drawn = []
    original = search.Search.weight_step_weights

    def spy(self):
        w = original(self)
        drawn.append(json.dumps(decode_body(self.model, w).to_dict(), sort_keys=True))
        assert w.exact and all(float(row.sum()) in (0.0, 1.0) for cw in w for row in cw)
        return w

    relaxed = []
    monkeypatch.setattr(search.Search, "weight_step_weights",
                        lambda self: relaxed.append(original(self)) or relaxed[-1])
    search.run_search(autortnet(epochs=1, seed=4, max_val_images=0, lut_path=lut), tmp_path / "relaxed")
    # the relaxed weight step trains the weights alone: its relaxed weights carry no alpha gradient
    assert relaxed and not any(w.requires_grad for ws in relaxed for w in [*ws, ws.path, ws.scale])
    monkeypatch.setattr(search.Search, "weight_step_weights", spy)
    cfg = autortnet(epochs=2, seed=4, max_val_images=0, lut_path=lut, weight_paths="sampled")
    runs_drawn = []
    for name in ("a", "b"):
        drawn.clear()
        assert search.run_search(cfg, tmp_path / name)["status"] == "finished"
        runs_drawn.append(list(drawn))
    first, second = runs_drawn
    assert len(first) >= 4 and first == second and len(set(first)) > 1
    assert load_genotype(tmp_path / "a" / "genotype.json").body.cells
    a, b = (runs.RunDir(tmp_path / n).load_checkpoint()["model"] for n in ("a", "b"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    monkeypatch.setattr(MBConvSupernet, "exact_weights", Supernet.exact_weights)  # a space without it
    with pytest.raises(ConfigError, match="weight_paths: 'sampled' runs one network at a time"):
        search.run_search({"preset": "mbconv", "dataset": "random", "input_size": [32, 64], "crop_size": [32, 64],
                           "epochs": 1, "batch_size": 2, "max_val_images": 0, "lut_warmup": 0, "lut_repeats": 1,
                           "threads": 1, "device": "cpu", "weight_paths": "sampled", "stem_channels": 4,
                           "head_channels": 4, "widths": [8, 8, 16, 16]}, tmp_path / "mbconv")


def test_encode_body_rejects_a_body_of_another_trellis():
    small = HyperSupernet(hs(layers=4, **SMALL), num_classes=3)
    body = HyperSupernet(hs(layers=5, **SMALL), num_classes=3).random_bodies(1, seed=0)[0]
    with pytest.raises(GenotypeError, match="trellis path: expected 4 layers for this supernet, got 5"):
        encode_body(small, body)
    five = HyperSupernet(hs(layers=5, **SMALL), num_classes=3)
    kept = len(body.cells)
    with pytest.raises(GenotypeError, match=f"cells: {kept - 1} cells for a path with {kept} layers"):
        encode_body(five, dataclasses.replace(body, cells=body.cells[:-1]))
    with pytest.raises(GenotypeError, match=f"cells: {kept + 1} cells for a path with {kept} layers"):
        encode_body(five, dataclasses.replace(body, cells=body.cells + body.cells[-1:]))
    with pytest.raises(GenotypeError, match="has no matching cell"):  # a normal cell where the path goes down
        swapped = [dataclasses.replace(c, kind="normal") if c.kind == "reduction" else c for c in body.cells]
        encode_body(five, dataclasses.replace(body, cells=swapped))
    plain = HyperSupernet(hs(layers=5, **{**SMALL, "aggregation": False}), num_classes=3)
    with pytest.raises(GenotypeError, match="this supernet has no aggregation cell"):
        encode_body(plain, body)
    with pytest.raises(GenotypeError, match="aggregation: inputs"):
        encode_body(five, dataclasses.replace(body, aggregation=dataclasses.replace(body.aggregation, inputs=[7])))
