"""Widget figure builders on recorded (fixture) runs, and the panels driven through their controls."""

from __future__ import annotations

import json
import math
import types

import numpy as np
import pytest
from fixtures_runs import (
    OPS,
    cell_alpha,
    make_davis,
    make_search_run,
    make_sweep_with_frontier,
    make_vos_run,
    softmax,
)

from widgets import cell_graph as cg
from widgets import evolution as ev
from widgets import frontier as fr
from widgets import video as vid
from widgets.records import load_run
from widgets.spaces import architecture_figures
from workbench.frontier import pareto_front
from workbench.nas.genotypes import load_genotype


@pytest.fixture(scope="module")
def search_run(tmp_path_factory):
    return make_search_run(tmp_path_factory.mktemp("runs") / "search", preset="autortnet", epochs=3)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    return make_sweep_with_frontier(tmp_path_factory.mktemp("sweep"))


@pytest.fixture(scope="module")
def vos_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("vos")
    return make_vos_run(base / "run", make_davis(base / "davis"))


def test_cell_graph_edges_ops_and_layout(search_run):
    run = load_run(search_run.path)
    cell = run.alphas[-1]["cells"][1]  # cell index 1 at epoch 2
    g = cg.cell_graph(cell)
    # 14 DARTS edges + concat edges of the 4 intermediate nodes into the output
    assert g.number_of_edges() == 14 + 4
    for e, (src, dst) in enumerate(cell["edges"]):
        w = softmax(cell_alpha(2, e, 1, len(OPS)))
        fav = (e + 1) % len(OPS)
        expected = fav if OPS[fav] != "none" else len(OPS) - 1  # 'none' never labels an edge
        assert g.edges[src, dst]["op"] == OPS[expected]
        assert g.edges[src, dst]["weight"] == pytest.approx(w[expected])
    pos = cg.layout(g)
    assert pos[0][0] == pos[1][0] == 0  # inputs on the left
    assert pos[cg.OUT][0] == max(x for x, _ in pos.values())  # output on the right
    assert pos[2][0] < pos[3][0] < pos[4][0] < pos[5][0]  # each node after its inputs

    fig = cg.cell_graph_figure(cell)
    lines = [t for t in fig.data if t.mode == "lines"]
    assert len(lines) == 18
    strongest = max(lines, key=lambda t: t.line.width)
    weakest = min((t for t in lines if t.line.dash == "solid"), key=lambda t: t.line.width)
    assert strongest.opacity > weakest.opacity
    labels = next(t for t in fig.data if t.name == "ops")
    assert len(labels.text) == 14 and "none" not in labels.text


def test_genotype_parts_fusion_aggregation_and_trellis(search_run, tmp_path):
    genotype = load_run(search_run.path).genotype  # AutoRTNet (space hyper), written as a version-1 file
    titles = [t for t, _ in architecture_figures(genotype)]
    assert titles[:3] == ["cell 0 (normal, stride 4)", "cell 1 (reduction, stride 8)", "cell 2 (normal, stride 8)"]
    assert {"aggregation cell", "trellis path"} <= set(titles) and "fusion cell" not in titles
    assert architecture_figures(load_genotype(genotype).to_dict()) and titles == [  # version 2: the same parts
        t for t, _ in architecture_figures(load_genotype(genotype).to_dict())]
    # the decoded path climbs one scale per 'down'
    path = genotype["hyper"]["path"]
    fig = cg.trellis_figure(path, genotype["hyper"]["scales"])
    steps = [t for t in fig.data if (t.name or "").startswith("path")]
    assert len(steps) == len(path)
    for step, trace in zip(path, steps):
        assert trace.y[1] == -math.log2(step["stride"])
    # LGCNet (space cells): its fusion cell reads three cells, every node keeps two edges
    lgcnet = load_run(make_search_run(tmp_path / "lgc", preset="lgcnet", epochs=2).path).genotype
    assert "fusion cell" in [t for t, _ in architecture_figures(lgcnet)]
    fusion = cg.cell_graph(lgcnet["fusion"])
    assert [n for n in fusion if fusion.nodes[n]["role"] == "input"] == [0, 1, 2]  # three fused inputs
    assert all(fusion.in_degree(n) == 2 for n in fusion if fusion.nodes[n]["role"] == "node")
    # a GAS genotype has only cells
    gas = load_run(make_search_run(tmp_path / "gas", preset="gas", epochs=2).path).genotype
    assert all(t.startswith("cell") for t, _ in architecture_figures(gas))
    assert architecture_figures({"schema": "something else"}) == []  # not a genotype: nothing drawn


def test_weight_evolution_figures(search_run):
    alphas = load_run(search_run.path).alphas
    assert [a["epoch"] for a in alphas] == [-1, 0, 1, 2]
    fig = ev.op_weight_figure(alphas, cell_index=2, edge_index=3)
    assert [t.name for t in fig.data] == OPS
    for k, trace in enumerate(fig.data):
        expected = [softmax(cell_alpha(ep, 3, 2, len(OPS)))[k] for ep in (-1, 0, 1, 2)]
        assert np.allclose(trace.y, expected)
    heat = ev.weight_heatmap_figure(alphas, 0, 0)
    assert np.asarray(heat.data[0].z).shape == (14, len(OPS))
    anim = ev.weight_heatmap_animation(alphas, 0)
    assert [f.name for f in anim.frames] == ["-1", "0", "1", "2"]
    assert [s.label for s in anim.layout.sliders[0].steps] == ["-1", "0", "1", "2"]
    z0, z2 = (np.asarray(anim.frames[i].data[0].z) for i in (1, 3))
    assert not np.allclose(z0, z2)
    assert np.allclose(z2[5], softmax(cell_alpha(2, 5, 0, len(OPS))))
    edges = ev.op_weight_edges_figure(alphas, 0)
    assert len(edges.data) == 14 * len(OPS) and sum(t.visible for t in edges.data) == len(OPS)
    assert len(edges.layout.updatemenus[0].buttons) == 14


def test_pareto_front_by_hand():
    pts = [{"name": n, "latency_ms": lat, "miou": m} for n, lat, m in
           [("a", 10, 0.5), ("b", 20, 0.6), ("c", 15, 0.45), ("d", 10, 0.5), ("e", 5, 0.3), ("f", 20, 0.55)]]
    # c is dominated by a, f by b; a and d tie (neither strictly better) and both stay
    assert pareto_front(pts) == ["e", "a", "d", "b"]
    assert pareto_front([]) == []


def test_frontier_collects_runs_and_separates_published(sweep):
    frontier = json.loads((sweep / "frontier" / "frontier.json").read_text())
    by_name = {p["name"]: p for p in frontier["points"]}
    # named by their sweep point (SWEEP/a/retrain -> a), not 'broken'
    assert set(by_name) == {"a", "b", "c", "d", "base1", "base2"}
    assert by_name["a"]["latency_ms"] == 10.0  # from its benchmark sub-run
    assert frontier["device"]["name"] == "test-cpu"
    assert by_name["base1"]["kind"] == "baseline" and by_name["a"]["kind"] == "searched"
    assert by_name["a"]["genotype"].endswith("genotype.json")
    assert frontier["pareto"] == ["base1", "a", "b", "base2"]

    fig = fr.frontier_figure(frontier)
    xs = [x for t in fig.data[:2] for x in t.x]
    assert sorted(xs) == sorted(p["latency_ms"] for p in frontier["points"])
    assert list(fig.data[2].x) == [8.0, 10.0, 20.0, 25.0]  # Pareto line in latency order
    assert "preset=lgcnet" in fig.data[0].hovertext[0]
    assert not any(p["name"] in str(fig.to_dict()) for p in fr.PUBLISHED)  # never on our axes
    pub = fr.published_figure()
    assert list(pub.data[0].x) == [108.4, 115.2, 110.0] and list(pub.data[0].y) == [73.5, 74.0, 73.9]
    assert "Titan Xp" in pub.layout.title.text and "Cityscapes" in pub.layout.title.text
    # a plain folder of runs gives the same points without a frontier run
    assert fr.load_frontier(sweep)["pareto"] == frontier["pareto"]


def test_video_scores_by_hand_and_against_reference(vos_run):
    video = vid.load_video(vos_run.path)
    assert video.frames.shape == (6, 48, 64, 3) and len(video.pred) == 6
    scores = vid.per_frame_scores(video)
    # frame 0 is the given mask; later frames lag one step: 12x12 square moved 3 px, 12x10 moved 2 px
    assert scores[1]["J"] == pytest.approx([1.0] + [108 / 180] * 5)
    assert scores[2]["J"] == pytest.approx([1.0] + [96 / 144] * 5)
    evaluator_mod = pytest.importorskip("vos_benchmark.evaluator")
    ref = evaluator_mod.Evaluator(name="ref")
    for pred, gt in zip(video.pred, video.gt):
        ref.feed_frame(pred, gt)
    for obj in (1, 2):
        assert scores[obj]["J"] == pytest.approx(ref.object_iou[obj])
        assert scores[obj]["F"] == pytest.approx(ref.boundary_f[obj])
    fig = vid.jf_figure(video, t=2, scores=scores)
    assert len(fig.data) == 4 and fig.layout.shapes[0].x0 == 2
    anim = vid.video_animation_figure(video)
    assert len(anim.frames) == 6 and anim.frames[0].data[0].source.startswith("data:image/png;base64,")


def test_overlay_colours_only_objects():
    frame = np.zeros((4, 4, 3), np.uint8)
    mask = np.zeros((4, 4), np.uint8)
    mask[0, 0] = 1
    out = vid.overlay(frame, mask, alpha=1.0, outline=False)
    assert out[0, 0].tolist() == [128, 0, 0]  # DAVIS palette colour of object 1
    assert out[1:, 1:].max() == 0


# -- panels driven through their controls ------------------------------------------------------------
def test_evolution_panel_controls(search_run):
    from widgets.panels import EvolutionPanel

    panel = EvolutionPanel(load_run(search_run.path).alphas)
    z_last = np.asarray(panel.heatmap.data[0].z).copy()
    widths_last = [t.line.width for t in panel.graph.data if t.mode == "lines"]
    panel.epoch.value = -1
    assert not np.allclose(np.asarray(panel.heatmap.data[0].z), z_last)
    assert np.allclose(np.asarray(panel.heatmap.data[0].z)[0], softmax(cell_alpha(-1, 0, 0, len(OPS))))
    assert [t.line.width for t in panel.graph.data if t.mode == "lines"] != widths_last
    assert "epoch -1" in panel.graph.layout.title.text
    y0 = list(panel.lines.data[0].y)
    panel.edge.value = 4
    assert list(panel.lines.data[0].y) != y0 and "2->3" in panel.lines.layout.title.text
    panel.cell.value = 3  # the fusion cell: fewer edges
    assert len(panel.edge.options) == 3 + 4 and panel.edge.value == 0  # 3 inputs, 2 nodes
    assert panel.state is not None and "epoch -1" in panel.state.layout.title.text  # the AutoRTNet trellis


def test_frontier_panel_click_shows_architecture(sweep):
    from widgets.panels import FrontierPanel

    frontier = fr.load_frontier(sweep / "frontier")
    panel = FrontierPanel(frontier)
    assert panel.architecture.selector.options == ("(no architecture recorded)",)
    searched = panel.figure.data[0]
    k = list(searched.customdata).index(next(i for i, p in enumerate(frontier["points"]) if p["name"] == "b"))
    panel._on_click(searched, types.SimpleNamespace(point_inds=[k]), None)
    assert "<b>b</b>" in panel.details.value
    assert "fusion cell" in panel.architecture.selector.options
    assert len(panel.architecture.figure.data) > 3
    baseline = panel.figure.data[1]
    panel._on_click(baseline, types.SimpleNamespace(point_inds=[0]), None)
    assert "baseline" in panel.architecture.children[0].value
    assert panel.published.data[0].x == (108.4, 115.2, 110.0)


def test_video_panel_frame_slider(vos_run):
    from widgets.panels import VideoPanel

    panel = VideoPanel(vos_run.path)
    assert panel.frame.max == 5
    src0 = panel.image.data[0].source
    panel.frame.value = 4
    assert panel.image.data[0].source != src0
    assert panel.scores_fig.layout.shapes[0].x0 == 4
    assert "frame 00004" in panel.image.layout.title.text
    assert panel.method.options == ("onepass", "copy")
    panel.method.value = "copy"  # first-frame copy: object 1 has moved 6 px by frame 2
    assert panel.scores[1]["J"][2] == pytest.approx(72 / 216) and panel.frame.value == 0


def test_show_run_by_kind(search_run, sweep, vos_run):
    from widgets.panels import CellGraphPanel, EvolutionPanel, FrontierPanel, VideoPanel, show_run

    kinds = {type(c) for c in show_run(search_run.path).children}
    assert {EvolutionPanel, CellGraphPanel} <= kinds
    assert FrontierPanel in {type(c) for c in show_run(sweep / "frontier").children}
    assert VideoPanel in {type(c) for c in show_run(vos_run.path).children}
    assert len(repr(show_run(search_run.path))) < 200  # notebooks stay small: no figure dump in text/plain
