"""Views that survive a reload and an executed notebook, with names, units and measured latency.

A FigureWidget restores what it was constructed with (later edits are transient messages), so
every figure slot must hold a widget whose construction state *is* its current figure. Executed
notebooks keep a static copy of every figure (plotly's mime type + HTML with plotly.js), which
nbconvert turns into an offline page.
"""

from __future__ import annotations

import json
import types
from pathlib import Path

import numpy as np
import pytest
from fixtures_runs import (
    OPS,
    cell_alpha,
    make_davis,
    make_retrain_run,
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
from workbench import names
from workbench.runs import format_table, list_runs


@pytest.fixture(scope="module")
def search_run(tmp_path_factory):
    return make_search_run(tmp_path_factory.mktemp("runs") / "lgcnet-lw0.1-s0" / "search", preset="autortnet",
                           epochs=3)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    return make_sweep_with_frontier(tmp_path_factory.mktemp("sweep"))


def _construction_state_is_current(slot) -> None:
    """What a reloaded page restores (the widget's synced construction state) is what the
    kernel shows now."""
    w = slot.widget
    assert len(w._widget_data) == len(w.data) > 0, slot.name
    for synced, trace in zip(w._widget_data, w.data):
        assert synced["type"] == trace.type
        for key in ("z", "y", "source", "text"):
            if key in synced:
                now = trace[key]
                assert np.array_equal(np.asarray(synced[key], dtype=object), np.asarray(now, dtype=object)), (
                    slot.name, key)
    assert w._widget_layout.get("title", {}).get("text") == (w.layout.title.text if w.layout.title else None)


def test_panels_are_constructed_with_their_data_after_every_change(search_run, sweep, tmp_path):
    from widgets.panels import FrontierPanel, RunPanel, VideoPanel

    panel = RunPanel(search_run.path)
    evo = panel.parts["evolution"]
    for slot in panel.slots():
        _construction_state_is_current(slot)
    evo.epoch.value = -1
    evo.edge.value = 3
    evo.cell.value = 2
    for slot in panel.slots():
        _construction_state_is_current(slot)
    z = np.asarray(evo.heatmap._widget_data[0]["z"], dtype=float)
    assert np.allclose(z[0], softmax(cell_alpha(-1, 0, 2, len(OPS))))  # the synced state holds epoch -1
    assert "epoch -1" in evo.graph._widget_layout["title"]["text"]

    front = FrontierPanel(fr.load_frontier(sweep / "frontier"))
    b = next(i for i, p in enumerate(front.frontier["points"]) if p["name"] == "b")
    front._on_click(front.figure.data[0], types.SimpleNamespace(point_inds=[list(front.figure.data[0].customdata)
                                                                            .index(b)]), None)
    for slot in front.slots():
        _construction_state_is_current(slot)
    assert front.figure.data[0].on_click is not None and front.figure.data[0]._click_callbacks  # still clickable
    widths = front.figure.data[0].marker.line.width
    assert widths[list(front.figure.data[0].customdata).index(b)] == 3  # the selected point is outlined

    vos = make_vos_run(tmp_path / "vos", make_davis(tmp_path / "davis"))
    video = VideoPanel(vos.path)
    video.frame.value = 3
    for slot in video.slots():
        _construction_state_is_current(slot)


def test_no_architecture_view_clears_the_previous_labels(sweep):
    from widgets.panels import FrontierPanel

    panel = FrontierPanel(fr.load_frontier(sweep / "frontier"))
    points = panel.frontier["points"]
    panel.select(next(i for i, p in enumerate(points) if p["name"] == "b"))
    assert len(panel.architecture.figure.layout.annotations) > 0  # op labels of the searched cell
    panel.select(next(i for i, p in enumerate(points) if p["name"] == "base1"))
    assert panel.architecture.figure.layout.annotations == ()
    assert len(panel.architecture.figure.data) == 0
    assert "no architecture" in panel.architecture.figure.layout.title.text


def test_static_copies_in_an_executed_notebook_and_nbconvert_html(search_run, tmp_path):
    """The panel's cell output: the widget, then one static output per figure (plotly mime type
    and HTML, plotly.js inlined once); nbconvert's HTML holds every figure, no widget error."""
    import nbformat
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter
    from nbformat.v4 import new_code_cell, new_notebook
    from plotly.offline import get_plotlyjs

    nb = new_notebook(cells=[new_code_cell(f"from widgets.panels import show_run\nshow_run({str(search_run.path)!r})")],
                      metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(Path.cwd())}},
                   store_widget_state=False).execute()
    outputs = nb.cells[0].outputs
    assert not [o for o in outputs if o.output_type == "error"], outputs
    widget = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    static = [o for o in outputs if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert len(widget) == 1 and "derived architecture" in widget[0]["data"]["text/html"]
    # curves, op weights, heatmap, cell graph, convergence, trellis state, derived architecture
    assert len(static) == 7
    titles = [o["data"]["application/vnd.plotly.v1+json"]["layout"].get("title", {}).get("text", "") for o in static]
    assert any("winning op per edge" in t for t in titles) and any(t.startswith("cell 0") for t in titles)
    for o in static:
        fig = o["data"]["application/vnd.plotly.v1+json"]
        assert fig["data"] and fig["config"]["toImageButtonOptions"]["filename"].startswith("lgcnet-lw0.1-s0_search-")
    plotly_js = get_plotlyjs()
    assert sum(plotly_js in o["data"]["text/html"] for o in static) == 1

    nbformat.write(nb, tmp_path / "executed.ipynb")
    body, _ = HTMLExporter().from_notebook_node(nbformat.read(tmp_path / "executed.ipynb", as_version=4))
    assert body.count("Plotly.newPlot(") >= 7 and plotly_js in body
    assert "Error displaying widget" not in body and "model not found" not in body
    assert "wb-static" in body


def test_names_units_and_measured_latency_everywhere(sweep, search_run, tmp_path):
    from widgets.panels import RunPanel

    assert names.fmt("miou", 0.6123) == "61.2" and names.title("latency_ms") == "measured latency (ms)"
    assert names.title("expected_latency_ms") == "LUT latency (ms)" and names.title("val_miou") == "search mIoU (%)"
    # the frontier: mIoU in percent, the measured latency beside the LUT's estimate
    frontier = json.loads((sweep / "frontier" / "frontier.json").read_text())
    fig = fr.frontier_figure(frontier)
    assert fig.layout.yaxis.title.text == "mIoU (%)" and fig.layout.xaxis.title.text == "measured latency (ms)"
    a = next(p for p in frontier["points"] if p["name"] == "a")
    k = list(fig.data[0].customdata).index(frontier["points"].index(a))
    assert fig.data[0].y[k] == pytest.approx(50.0) and "measured 10.00 ms" in fig.data[0].hovertext[k]
    assert "mIoU 50.0 %" in fig.data[0].hovertext[k]
    # a retrain run: its benchmark sub-run's latency in the header, the runs table and the report
    run = make_retrain_run(tmp_path / "lgcnet-lw0.3-s1" / "retrain", miou=0.5, latency_ms=12.5,
                           genotype=load_run(search_run.path).genotype, separate_benchmark=True)
    from workbench.jsonio import atomic_write_json
    from workbench.runs import RunDir

    bench = RunDir(run.path / "benchmark")
    rec = bench.record()
    rec["metrics"]["expected_latency_ms"] = 11.0
    atomic_write_json(bench.record_path, rec)
    panel = RunPanel(run.path)
    header = panel.header.value
    assert "measured 12.50 ms on test-cpu" in header and "LUT 11.00 ms (-12.0 % vs measured)" in header
    assert "{" not in header and "mIoU" in header and "50.0 %" in header  # no raw dict
    assert "lgcnet-lw0.3-s1/retrain" in header
    row = next(r for r in list_runs(tmp_path) if r["run"] == "lgcnet-lw0.3-s1/retrain")
    assert row["latency_ms"] == 12.5 and row["expected_ms"] == 11.0
    text = format_table(list_runs(tmp_path))
    assert text.splitlines()[0].split()[:4] == ["run", "status", "kind", "preset"] and "mIoU%" in text
    from widgets.report import build_report

    report = build_report(run.path).read_text()
    assert "measured 12.50 ms on test-cpu" in report and "LUT 11.00 ms" in report
    # a dataset given as a path (the video steps record their data root) shows as its name
    vos = make_vos_run(tmp_path / "vos", make_davis(tmp_path / "davis"))
    vrec = RunDir(vos.path).record()
    vrec["dataset"] = str(tmp_path / "davis") + "/"
    atomic_write_json(RunDir(vos.path).record_path, vrec)
    assert next(r for r in list_runs(tmp_path) if r["run"] == "vos")["dataset"] == "davis"


def test_small_things(search_run, tmp_path):
    alphas = load_run(search_run.path).alphas
    heat = ev.weight_heatmap_figure(alphas, 0, 0)
    assert "op %{x}" in heat.data[0].hovertemplate and "edge %{y}" in heat.data[0].hovertemplate
    assert "weight %{z" in heat.data[0].hovertemplate
    # op labels of crossing edges do not sit on one point: no two labels closer than a label's size
    for cell in alphas[-1]["cells"]:
        fig = cg.cell_graph_figure(cell)
        spots = [(a.x, a.y) for a in fig.layout.annotations]
        for i, (x0, y0) in enumerate(spots):
            for x1, y1 in spots[i + 1:]:
                assert max(abs(x0 - x1) / cg.LABEL_GAP[0], abs(y0 - y1) / cg.LABEL_GAP[1]) >= 0.5, (cell["index"],
                                                                                                   spots)
    # J/F lines in the colours the masks are drawn in
    vos = make_vos_run(tmp_path / "vos", make_davis(tmp_path / "davis"))
    video = vid.load_video(vos.path)
    fig = vid.jf_figure(video)
    palette = vid.overlay(np.zeros((1, 3, 3), np.uint8), np.array([[0, 1, 2]], np.uint8), alpha=1.0, outline=False)
    for trace in fig.data:
        obj = int(trace.name.split()[1])
        assert trace.line.color == "rgb({},{},{})".format(*palette[0, obj])
    # figures download named after the run and the figure
    from widgets.panels import RunPanel

    panel = RunPanel(search_run.path)
    filenames = {s.widget._config["toImageButtonOptions"]["filename"] for s in panel.slots()}
    assert "lgcnet-lw0.1-s0_search-convergence" in filenames and "lgcnet-lw0.1-s0_search-curves" in filenames
    assert not any("plot-image" in f for f in filenames)


def test_convergence_figure_matches_derivation(search_run):
    alphas = load_run(search_run.path).alphas
    fig = ev.convergence_figure(alphas)
    # the fixture's alphas drift toward op (edge + cell) % n_ops; 'none' never wins an edge
    seen = 0
    for trace in fig.data:
        for e, label in zip(trace.x, trace.y):
            cell = int(label.split()[1])
            favourite = (e + cell) % len(OPS)
            expected = OPS[favourite] if OPS[favourite] != "none" else OPS[-1]
            assert trace.name == expected, (label, e)
            seen += 1
    assert seen == sum(len(c["edges"]) for c in alphas[-1]["cells"])
    assert {t.name for t in fig.data} <= set(OPS) - {"none"}
    anim = ev.convergence_animation(alphas)
    assert [f.name for f in anim.frames] == ["-1", "0", "1", "2"]
    assert [s.label for s in anim.layout.sliders[0].steps] == ["-1", "0", "1", "2"]
    # marker size grows with the winning weight: the last epoch is more decided than the first
    first = np.mean([s for t in anim.frames[0].data for s in (t.marker.size or [])])
    last = np.mean([s for t in anim.frames[-1].data for s in (t.marker.size or [])])
    assert last > first


def test_compare_runs(sweep, tmp_path):
    from widgets.compare import parallel_figure, rows_csv, sort_filter
    from widgets.compare_panel import CompareRunsPanel

    points = fr.load_frontier(sweep)["points"]
    fig = parallel_figure(points)
    labels = [d.label for d in fig.data[0].dimensions]
    assert labels[-2:] == ["mIoU (%)", "measured latency (ms)"] or labels[-3:-1] == ["mIoU (%)", "measured latency (ms)"]
    assert "λ" in labels and "preset" in labels  # the sweep's parameters
    miou = next(d for d in fig.data[0].dimensions if d.label == "mIoU (%)")
    assert sorted(miou.values) == pytest.approx(sorted(100 * p["miou"] for p in points))

    rows = list_runs(sweep)
    by_lat = sort_filter(rows, "latency_ms", descending=True)
    lats = [r["latency_ms"] for r in by_lat if r["latency_ms"] is not None]
    assert lats == sorted(lats, reverse=True) and by_lat[-1]["latency_ms"] is None
    assert [r["run"] for r in sort_filter(rows, query="status:failed")] == ["broken"]
    assert rows_csv(rows, ["run", "miou"]).splitlines()[0] == "run,miou"

    panel = CompareRunsPanel(sweep)
    panel.query.value = "run:retrain"
    assert panel.table.value.count("<tr>") == 1 + len([r for r in rows if "retrain" in r["run"]])
    panel.query.value = "searched-nowhere"
    assert panel.table.value.count("<tr>") == 1  # the header only
    panel.sort.value, panel.descending.value = "miou", True
    shown = [r["miou"] for r in panel.shown_rows() if r["miou"] is not None]
    assert shown == sorted(shown, reverse=True)
    assert "data:text/csv;base64," in panel.csv.value and "-runs.csv" in panel.csv.value
    panel.select.value = ("a/retrain", "b/retrain")
    panel.metric.value = "miou"
    assert [t.name for t in panel._metric_fig.widget.data] == ["a/retrain", "b/retrain"]
    assert panel._metric_fig.widget.data[1].y[-1] == pytest.approx(60.0)  # percent
    panel.run_picker.value = "b/retrain"
    assert panel.view.children and panel.view.children[0].run.name == "b/retrain"


def test_a_panel_sends_plotly_widget_bundle_once(search_run):
    """A reloaded page asks the kernel for every widget's state at once and gives up after 4 s
    (ipywidgets' control comm): plotly's ~5 MB bundle must travel once, not once per figure."""
    import plotly.graph_objects as go
    from ipywidgets.widgets.widget import _instances

    from widgets.panels import RunPanel
    from widgets.slot import BUNDLE_GLOBAL, plotly_bundle

    bundle = str(go.FigureWidget._esm)
    panel = RunPanel(search_run.path)
    figures = [slot.widget for slot in panel.slots()]
    assert len(figures) >= 4
    assert all(isinstance(f, go.FigureWidget) and len(f._esm) < 1000 and BUNDLE_GLOBAL in f._esm for f in figures)
    loader = plotly_bundle()
    assert json.dumps(bundle) in loader._esm and BUNDLE_GLOBAL in loader._esm
    total = sum(len(getattr(w, "_esm", "")) for w in list(_instances.values()))
    assert total < 1.5 * len(bundle), total  # every figure of the panel, and the bundle once
    loader.close()
    assert plotly_bundle() is not loader and plotly_bundle().comm is not None  # made again when closed
