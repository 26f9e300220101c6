"""NAS building blocks: ops, alphas, GCN guidance, relaxation, latency table, derivation, genotypes."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import same_weight_gradients

from workbench.errors import ConfigError, GenotypeError
from workbench.nas.cells import feature_size
from workbench.nas.darts import derive_cell
from workbench.nas.genotypes import GENOTYPE_VERSION, load_genotype, save_genotype
from workbench.nas.latency import table as lat
from workbench.nas.latency import timing
from workbench.nas.latency.expected import latency_term
from workbench.nas.network import build_network
from workbench.nas.operations import OPS, build_op
from workbench.nas.presets import get_preset
from workbench.nas.search import build_supernet, make_genotype, temperature
from workbench.nas.spaces.cells.supernet import supernet_specs

TINY = dict(input_size=(32, 64), crop_size=(32, 64), channels=8, stem_channels=8, head_channels=8, nodes=2,
            num_cells=3, reductions=[0, 2], fusion_channels=8, threads=1)


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(preset="lgcnet", **kw):
    return get_preset(preset, **{**TINY, **kw})


class _Load:
    """Stands in for workbench.loadcheck.OtherLoad with a fixed share of the machine used by others."""

    def __init__(self, share: float):
        self.share = share

    def __call__(self):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    @property
    def busy(self) -> bool:
        return self.share > 0.15


@pytest.mark.parametrize("name", list(OPS))
def test_ops_keep_channels_and_halve_with_stride(name):
    x = torch.randn(2, 6, 15, 22)
    assert build_op(name, 6, 1)(x).shape == (2, 6, 15, 22)
    assert build_op(name, 6, 2)(x).shape == (2, 6, 8, 11)  # ceil(n / 2), odd sizes included


def test_unknown_preset_and_op_are_config_errors():
    with pytest.raises(ConfigError, match="unknown preset"):
        get_preset("nope")
    with pytest.raises(ConfigError, match="unknown op 'conv_9x9'"):
        get_preset("gas", ops=["none", "conv_9x9"])
    with pytest.raises(ConfigError, match="reductions"):
        get_preset("gas", num_cells=2, reductions=[0, 5])


@pytest.mark.parametrize("name", ["gas-paper", "lgcnet-paper", "autortnet-paper"])
def test_paper_presets_validate_build_and_name_their_sources(name):
    """A paper preset is a valid config at the papers' scale whose supernet runs, and every value
    in paper_presets.py says where it comes from (a paper, FasterSeg's code, or 'our choice')."""
    import re
    from pathlib import Path

    from workbench.nas import paper_presets

    cfg = get_preset(name)
    assert cfg.epochs == 50 and cfg.warmup_epochs == 20 and cfg.arch_lr == 3e-4 and cfg.batch_size == 2
    assert cfg.input_size == ((768, 1536) if name == "autortnet-paper" else (1024, 2048))
    model = build_supernet(cfg, num_classes=19)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 128)).shape == (1, 19, 64, 128)
    assert sum(p.numel() for p in model.weight_parameters()) > 4 * sum(
        p.numel() for p in build_supernet(get_preset(name.removesuffix("-paper")), 19).weight_parameters())
    source = Path(paper_presets.__file__).read_text()
    body = source[source.index("_SCHEDULE = {"):]
    valued = [ln for ln in body.splitlines() if re.search(r'"\w+":\s*[^{\s]', ln) and not ln.strip().startswith("#")]
    assert valued and all("#" in ln for ln in valued), [ln for ln in valued if "#" not in ln]
    assert all(re.search("our choice|our reading|FasterSeg|abstract|issue 13", ln)
               for ln in valued), [ln for ln in valued if not re.search("our choice|our reading|FasterSeg|abstract|issue 13", ln)]


def test_paper_retrain_presets_validate_and_yield_to_the_command_line(monkeypatch, capsys):
    from workbench import cli, steps
    from workbench.config import from_dict
    from workbench.nas.paper_presets import PAPER_RETRAIN
    from workbench.seg.recipes import resolve
    from workbench.seg.retrain import RetrainConfig

    assert set(PAPER_RETRAIN) == {"gas-paper", "lgcnet-paper", "autortnet-paper"}
    cfg = from_dict(RetrainConfig, {"genotype": "g.json", **PAPER_RETRAIN["gas-paper"]})
    values, record = resolve(cfg)
    assert record["name"] == "fasterseg-v1" and values["loss"] == "ohem" and cfg.crop_size == (512, 1024)
    seen = []
    monkeypatch.setattr(steps, "retrain", lambda c, run_dir: seen.append(c) or {})
    assert cli.main(["retrain", "--genotype", "g.json", "--preset", "autortnet-paper", "--epochs", "3",
                     "--run-dir", "r"]) == 0
    assert seen[0]["epochs"] == 3 and seen[0]["batch_size"] == 12 and seen[0]["recipe"] == "fasterseg-v1"
    assert cli.main(["retrain", "--genotype", "g.json", "--preset", "nope", "--run-dir", "r"]) == 2
    assert capsys.readouterr().err.strip().startswith("error: preset: unknown retrain preset 'nope'")


def test_supernet_forward_shapes_and_strides():
    model = build_supernet(tiny(), num_classes=5)
    assert [s.stride for s in model.specs] == [8, 8, 16, 8]  # three cells, then the fusion cell at 1/8
    assert model.specs[-1].kind == "fusion" and model.specs[-1].inputs == (0, 1, 2)
    out = model(torch.randn(2, 3, 30, 62))
    assert out.shape == (2, 5, 30, 62)


@pytest.mark.parametrize("preset", ["gas", "lgcnet"])
def test_exact_weights_of_a_cell_chain_run_one_network_as_the_dense_one_hot_forward(preset):
    """ChainSupernet.exact_weights (derive's inverse, plain floats): deriving from its one-hot
    weights gives the body back, and the supernet runs that network with the dense one-hot forward's
    output and weight gradients, bit for bit; a body of another chain is one GenotypeError."""
    torch.manual_seed(0)
    model = build_supernet(tiny(preset), num_classes=5)
    x = torch.randn(2, 3, 32, 64)
    for body in model.random_bodies(3, seed=1):
        exact = model.exact_weights(body)
        dense = [torch.tensor(w) for w in exact]
        cells = [derive_cell(spec, w, model.ops) for spec, w in zip(model.specs, dense)]
        assert [c.to_dict() for c in cells] == [c.to_dict() for c in body.cells + ([body.fusion] if body.fusion else [])]
        model.eval()
        with torch.no_grad():
            assert torch.equal(model(x, exact), model(x, dense))
        assert same_weight_gradients(model, x, dense, exact)
    other = build_supernet(tiny(preset, num_cells=4, reductions=[0, 2]), num_classes=5).random_bodies(1, seed=0)[0]
    with pytest.raises(GenotypeError, match="cells: 4 cells"):
        model.exact_weights(other)


def test_cell_sharing_ties_alphas():
    shared = build_supernet(tiny("gas", num_cells=4, reductions=[0, 2], cell_sharing=True), 5)
    raw = shared.arch.per_cell()
    assert raw[1] is raw[3] and raw[0] is raw[2] and raw[0] is not raw[1]  # normal / reduction pairs
    assert len(shared.arch.alphas) == 2
    sep = build_supernet(tiny("gas", num_cells=4, cell_sharing=False), 5)
    assert len(sep.arch.alphas) == 4 and not torch.equal(sep.arch.per_cell()[1], sep.arch.per_cell()[3])
    shared_cfg = tiny("darts", num_cells=4)
    assert build_supernet(shared_cfg, 5).gcn is None and len(build_supernet(shared_cfg, 5).arch.alphas) == 2


def test_gcn_changes_alpha_by_the_published_rule_and_gets_gradients():
    model = build_supernet(tiny("gas", gamma=0.7), 5)
    raw, guided = model.arch.per_cell(), model.guided_alphas()
    assert torch.equal(guided[0], raw[0])
    # independent reference: alpha'_k = alpha_k + gamma * W_o(M relu(A X W)), A = rowsoftmax(XQ (XK)^T / sqrt(d))
    g = model.gcn[0]
    x = torch.softmax(guided[0], -1)
    adj = torch.softmax((x @ g.query.weight.T) @ (x @ g.key.weight.T).T / math.sqrt(g.query.out_features), -1)
    h = torch.relu(adj @ (x @ g.weight.weight.T + g.weight.bias))
    ref = raw[1] + 0.7 * ((g.edge_map @ h) @ g.out.weight.T + g.out.bias)
    assert torch.allclose(guided[1], ref, atol=1e-6)
    assert not torch.allclose(guided[1], raw[1])
    loss = model(torch.randn(1, 3, 32, 64)).logsumexp(1).mean()
    loss.backward()
    for p in list(model.gcn.parameters()) + list(model.arch.parameters()):
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_gumbel_temperature_anneals_and_samples_sharpen():
    cfg = tiny("gas", relaxation="gumbel", tau_start=2.0, tau_end=0.1, epochs=5)
    taus = [temperature(cfg, e) for e in range(5)]
    assert taus[0] == pytest.approx(2.0) and taus[-1] == pytest.approx(0.1)
    assert all(a > b for a, b in zip(taus, taus[1:]))
    assert temperature(tiny("gas"), 3) is None  # softmax relaxation has no temperature
    model = build_supernet(cfg, 5)
    alpha = torch.zeros(200, 8)
    model.tau = 2.0
    a, b = model.relax(alpha, sample=True), model.relax(alpha, sample=True)
    assert torch.allclose(a.sum(-1), torch.ones(200)) and not torch.equal(a, b)
    hot_at_2 = a.max(-1).values.mean()
    model.tau = 0.1
    hot_at_01 = model.relax(alpha, sample=True).max(-1).values.mean()
    assert hot_at_01 > 0.9 > hot_at_2


def toy_lut(model, image, value=None):
    """Every probe of the supernet gets a made-up latency (distinct per key unless value is given)."""
    keys = sorted({p.key for p in model.lut_probes(image)})
    entries = {k: (value if value is not None else 0.5 + (i % 7) * 0.25) for i, k in enumerate(keys)}
    return {"schema": lat.LUT_SCHEMA, "version": lat.LUT_VERSION, "input_size": list(image), "entries": entries}


def test_expected_latency_is_the_hand_computed_sum_and_differentiable():
    torch.manual_seed(0)  # the alphas' random start: independent of the tests run before this one
    cfg = tiny("lgcnet")
    model = build_supernet(cfg, 5)
    lut = toy_lut(model, cfg.input_size)
    e = lut["entries"]
    weights = model.arch_weights()
    expected = model.latency_model(lut)(weights)
    # by hand, from the table's keys: stem + head + per cell (preprocess + one add per node + output conv)
    # + sum over edges of keep * sum_ops p * LUT, keep = 2 / in-degree
    stem, (h, w) = e["stem/c8/32x64"], cfg.input_size
    head = e["head/c8-8-k5/4x8-32x64"]  # fusion output at 1/8 -> head
    total = stem + head
    none = cfg.space.ops.index("none")
    for spec, wk in zip(model.specs, [w.detach() for w in weights]):
        wk = wk.clone()
        wk[:, none] = 0
        wk = wk / wk.sum(dim=1, keepdim=True)  # p(op) among the ops derivation can pick
        size = feature_size((h, w), spec.stride)
        for cin, sin in zip(spec.input_channels, spec.input_strides):
            fs, ts = feature_size((h, w), sin), feature_size((h, w), spec.in_stride)
            total += e[f"pre/c{cin}-{spec.channels}/s{sin}-{spec.in_stride}/{fs[0]}x{fs[1]}-{ts[0]}x{ts[1]}"]
        total += spec.nodes * e[f"add/c{spec.channels}/{size[0]}x{size[1]}"]
        total += e[f"cat/n{spec.nodes}/c{spec.channels}/{size[0]}x{size[1]}"]
        for k, (src, dst) in enumerate(spec.edges()):
            indeg = dst  # node `dst` has an edge from every earlier node
            stride = spec.edge_stride if src < spec.n_inputs else 1
            fs = feature_size((h, w), spec.in_stride if src < spec.n_inputs else spec.stride)
            for o, op in enumerate(cfg.space.ops):
                if op != "none":
                    total += 2 / indeg * float(wk[k, o]) * e[f"op/{op}/c{spec.channels}/s{stride}/{fs[0]}x{fs[1]}"]
    assert float(expected.detach()) == pytest.approx(total, rel=1e-5)
    expected.backward()
    assert all(p.grad is not None for p in model.arch.parameters())
    grad = model.arch.per_cell()[0].grad
    # no latency credit for `none`, which derivation never picks (zero up to float round-off)
    # (float32 round-off of terms ~0.1 that cancel: one full-suite run left 1.04e-4 of the largest)
    assert float(grad[:, none].abs().max()) < 1e-3 * float(grad.abs().max())


def test_predicted_genotype_latency_counts_every_piece():
    cfg = tiny("lgcnet")
    model = build_supernet(cfg, 5)
    g = make_genotype(cfg, model.derive(), 5)
    lut = toy_lut(model, cfg.input_size, value=1.0)
    # stem + head + per cell: the preprocessing of the inputs an edge reads + (in-degree - 1) adds per
    # node + output conv + kept edges (every node is concatenated here, so every edge reaches the output)
    cells = g.body.cells + [g.body.fusion]
    assert all(sorted(c.concat) == list(range(c.n_inputs, c.n_inputs + c.nodes)) for c in cells)
    read = [len({e.src for e in c.edges if e.src < c.n_inputs}) for c in cells]
    pieces = 2 + sum(r + c.nodes * (2 - 1) + 1 + len(c.edges) for r, c in zip(read, cells))
    assert pieces < 2 + sum(c.n_inputs + c.nodes + 1 + len(c.edges) for c in cells)  # an input no edge reads
    assert lat.predict_genotype_latency(g, lut) == pytest.approx(pieces)
    lut["calibration"] = {"scale": 1.5}
    assert lat.predict_genotype_latency(g, lut) == pytest.approx(1.5 * pieces)
    assert float(model.latency_model(lut).uniform()) == pytest.approx(1.5 * float(model.latency_model(
        {**lut, "calibration": None}).uniform()))
    lut["entries"].pop(next(iter(lut["entries"])))
    with pytest.raises(Exception, match="no entry"):
        lat.predict_genotype_latency(g, lut)


def test_calibration_scale_is_measured_over_piece_sum(tmp_path, monkeypatch):
    monkeypatch.setattr(lat, "OtherLoad", _Load(0.0))  # a quiet machine, whatever this one runs
    cfg = tiny("gas")
    model = build_supernet(cfg, 5)
    lut = lat.build_lut(model.lut_probes(cfg.input_size), cfg.input_size, "cpu", threads=1, warmup=0,
                        repeats=1, cache_dir=tmp_path)
    refs = [make_genotype(cfg, b, 5) for b in model.random_bodies(2, 0)]
    assert refs[0].to_dict() != refs[1].to_dict()
    lat.calibrate_cached(lut, lambda: refs, "cpu", 1, tmp_path, warmup=0, repeats=1)
    scale = lut["calibration"]["scale"]
    assert scale > 0 and len(lut["calibration"]["ratios"]) == 2
    assert scale == pytest.approx(sorted(lut["calibration"]["ratios"])[0] / 2 + sorted(lut["calibration"]["ratios"])[1] / 2, rel=1e-3)
    again = {**lut, "calibration": None}
    lat.calibrate_cached(again, lambda: pytest.fail("calibration should come from the cache"), "cpu", 1, tmp_path)
    assert again["calibration"] == lut["calibration"]


def test_derivation_keeps_top2_edges_with_strongest_nonzero_op():
    cfg = tiny("gas")
    spec = supernet_specs(cfg.space, cfg.stem_channels)[1]  # normal cell, 2 inputs + 2 nodes: edges (0,2) (1,2) (0,3) (1,3) (2,3)
    ops = ["none", "skip_connect", "conv_3x3"]
    w = torch.tensor([[0.9, 0.05, 0.05],   # none dominates: its strongest real op is weak
                      [0.1, 0.2, 0.7],
                      [0.0, 0.6, 0.4],
                      [0.5, 0.1, 0.4],
                      [0.2, 0.7, 0.1]])
    cell = derive_cell(spec, w, ops)
    got = [(e.src, e.dst, e.op) for e in cell.edges]
    assert got == [(0, 2, "skip_connect"), (1, 2, "conv_3x3"), (0, 3, "skip_connect"), (2, 3, "skip_connect")]
    assert cell.concat == [2, 3]


def test_derived_genotype_rebuilds_and_round_trips(tmp_path):
    cfg = tiny("lgcnet")
    model = build_supernet(cfg, 5)
    g = make_genotype(cfg, model.derive(), 5)
    path = save_genotype(g, tmp_path / "genotype.json")
    again = load_genotype(path)
    assert again.to_dict() == g.to_dict() == json.loads(path.read_text())
    net = build_network(path)
    assert net.output_stride == 8 and net.num_classes == 5
    x = torch.randn(2, 3, 40, 72)
    feats = net.forward_features(x)
    assert feats.shape == (2, 8, 5, 9)
    assert net(x).shape == (2, 5, 40, 72)
    assert build_network(again, num_classes=3)(x).shape == (2, 3, 40, 72)
    no_fusion = tiny("gas")
    g2 = make_genotype(no_fusion, build_supernet(no_fusion, 4).derive(), 4)
    assert build_network(g2).output_stride == 16 and g2.body.fusion is None


def _genotype_dict():
    cfg = tiny("lgcnet")
    return make_genotype(cfg, build_supernet(cfg, 5).derive(), 5).to_dict()


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(version=GENOTYPE_VERSION + 1), "unknown genotype version 3"),
    (lambda d: d["body"].pop("cells"), "missing field 'cells'"),
    (lambda d: d["body"]["cells"][0]["edges"][0].update(op="conv_9x9"), "unknown op 'conv_9x9'"),
    (lambda d: d["body"]["cells"][1]["edges"][0].update(to=9), "non-existent node"),
    (lambda d: d["body"]["cells"][1]["edges"][0].pop("from"), "missing field 'from'"),
    (lambda d: d["body"]["cells"][1].update(stride=16), "expected 8"),
    (lambda d: d["body"]["fusion"].update(inputs=[0, 7]), "inputs"),
    (lambda d: d.update(schema="something.else"), "not a genotype file"),
    (lambda d: d.update(space="nowhere"), "unknown search space 'nowhere'"),
    (lambda d: d.update(space_version=9), "space cells version 9 is newer"),
    (lambda d: d["body"].update(aggregation=dict(d["body"]["fusion"], kind="aggregation")),
     "give one multi-input cell, not fusion and aggregation"),
    (lambda d: d.pop("stem"), "missing field 'stem'"),
])
def test_bad_genotype_files_raise_genotype_error_naming_the_file(tmp_path, mutate, message):
    d = _genotype_dict()
    mutate(d)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(d))
    with pytest.raises(GenotypeError, match=message) as info:
        load_genotype(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_unreadable_genotype_files(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"schema": ')
    with pytest.raises(GenotypeError, match="not valid JSON"):
        load_genotype(broken)
    with pytest.raises(GenotypeError, match="cannot read"):
        load_genotype(tmp_path / "missing.json")


def test_lut_build_measures_once_then_reuses_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(lat, "OtherLoad", _Load(0.0))  # a quiet machine, whatever this one runs
    cfg = tiny("gas")
    model = build_supernet(cfg, 5)
    probes = model.lut_probes(cfg.input_size)
    first = lat.build_lut(probes, cfg.input_size, "cpu", threads=1, warmup=0, repeats=1, cache_dir=tmp_path)
    assert first["measured"] == len(first["entries"]) > 0 and first["fingerprint"]["threads"] == 1
    assert all(v > 0 for v in first["entries"].values())
    again = lat.build_lut(probes, cfg.input_size, "cpu", threads=1, warmup=0, repeats=1, cache_dir=tmp_path)
    assert again["measured"] == 0 and again["entries"] == first["entries"]
    assert first["fingerprint"]["input_size"] == [32, 64]
    (tmp_path / "lut.json").write_text(json.dumps(first))
    assert lat.load_lut(tmp_path / "lut.json")["entries"] == first["entries"]
    (tmp_path / "other.json").write_text("{}")
    with pytest.raises(Exception, match="not a latency table"):
        lat.load_lut(tmp_path / "other.json")


def test_a_table_timed_on_a_busy_machine_is_flagged_and_not_cached(tmp_path, monkeypatch):
    cfg = tiny("gas")
    probes = build_supernet(cfg, 5).lut_probes(cfg.input_size)
    monkeypatch.setattr(lat, "OtherLoad", _Load(0.6))
    busy = lat.build_lut(probes, cfg.input_size, "cpu", threads=1, warmup=0, repeats=1, cache_dir=tmp_path)
    assert busy["busy"] and busy["other_load"] == 0.6 and not list(tmp_path.glob("*.json"))
    monkeypatch.setattr(lat, "OtherLoad", _Load(0.0))
    quiet = lat.build_lut(probes, cfg.input_size, "cpu", threads=1, warmup=0, repeats=1, cache_dir=tmp_path)
    assert quiet["measured"] == len(quiet["entries"]) and not quiet["busy"]  # nothing was cached before
    assert lat.build_lut(probes, cfg.input_size, "cpu", threads=1, warmup=0, repeats=1,
                         cache_dir=tmp_path)["measured"] == 0


def test_other_load_sees_another_process_burn_cpu():
    import subprocess
    import sys
    import time

    from workbench.loadcheck import OtherLoad

    burner = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 4: pass"])
    try:
        time.sleep(0.5)
        with OtherLoad() as load:
            time.sleep(1.0)
    finally:
        burner.wait()
    # one busy core out of os.cpu_count(): at least most of it is seen (the test's own sleep costs nothing)
    assert load.share is not None and load.share >= 0.8 / (__import__("os").cpu_count() or 1)


class _Sleep(torch.nn.Module):
    def __init__(self, ms: float):
        super().__init__()
        self.ms = ms

    def forward(self, x):
        import time

        time.sleep(self.ms / 1000.0)
        return x


def test_time_rounds_visits_entries_round_robin_with_fresh_calls():
    made = []

    def factory(key):
        def make():
            made.append(key)
            return lambda: None
        return make

    out = timing.time_rounds({"a": factory("a"), "b": factory("b")}, torch.device("cpu"), warmup=0, repeats=2, rounds=3)
    # a burst of load hits one round of every entry, not all repeats of one
    assert [sorted(made[i:i + 2]) for i in (0, 2, 4)] == [["a", "b"]] * 3
    assert list(out) == ["a", "b"] and all(len(v) == 3 for v in out.values())
    assert timing.spread([2.0, 3.0, 4.0]) == 2.0


def test_time_rounds_shuffles_the_order_so_a_drift_within_rounds_spreads_over_entries(monkeypatch):
    # a host that slows down inside every round: the n-th call of a round reads n ms
    keys = [f"net{i}" for i in range(6)]
    calls = {"n": 0}

    def fake_time_call(fn, device, warmup, repeats):
        calls["n"] += 1
        return float((calls["n"] - 1) % len(keys) + 1)

    monkeypatch.setattr(timing, "time_call", fake_time_call)
    rounds = 21
    out = timing.time_rounds({k: (lambda: lambda: None) for k in keys}, torch.device("cpu"), 0, 1, rounds=rounds)
    assert list(out) == keys
    for r in range(rounds):  # every entry once per round
        assert sorted(out[k][r] for k in keys) == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    # in one fixed order net0 would read 1 ms and net5 6 ms in all 21 rounds
    assert all(len(set(out[k])) >= 3 for k in keys)
    means = [sum(out[k]) / rounds for k in keys]
    assert max(means) - min(means) < 2.0  # the drift is shared out, not carried by one entry
    assert timing.round_order(keys, 4) == timing.round_order(keys, 4)  # seeded: a rerun times in the same order
    assert timing.round_order(keys, 4) != timing.round_order(keys, 5)


def test_lut_entry_is_the_fastest_round_and_a_loaded_round_is_reported(tmp_path, caplog):
    # the first round of the probe is "under load" (30 ms), the later ones quiet (1 ms)
    speeds = iter([30.0, 1.0, 1.0])
    probe = lat.Probe("sleep/c1/1x1", lambda: _Sleep(next(speeds)), ((1, 1, 1, 1),))
    with caplog.at_level("WARNING", logger="workbench.nas.latency"):
        lut = lat.build_lut([probe], (1, 1), "cpu", threads=1, warmup=0, repeats=2, cache_dir=tmp_path, rounds=3)
    assert 1.0 <= lut["entries"][probe.key] < 15.0
    assert lut["rounds"] == 3 and lut["noisy_entries"] == 1 and lut["max_spread"] > timing.NOISY_SPREAD
    assert lut["table_spread"] > timing.NOISY_SPREAD
    assert "was another process using the CPU" in caplog.text and probe.key in caplog.text


def test_network_latency_keeps_the_fastest_round():
    class Flaky(torch.nn.Module):  # slow in its first round only
        calls = 0

        def forward(self, x):
            import time

            Flaky.calls += 1
            time.sleep(0.03 if Flaky.calls <= 2 else 0.001)
            return x

    ms = timing.measure_network_latency(Flaky(), (4, 4), "cpu", warmup=0, repeats=2, rounds=3)
    assert 1.0 <= ms < 15.0


def test_latency_term_modes():
    L = torch.tensor(15.0)
    assert float(latency_term(L, 10.0, None)) == pytest.approx(1.5)
    assert float(latency_term(L, 10.0, 20.0, "above")) == 0.0
    assert float(latency_term(L, 10.0, 10.0, "above")) == pytest.approx(0.5)
    assert float(latency_term(L, 10.0, 20.0, "abs")) == pytest.approx(0.25)
