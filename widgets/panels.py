"""ipywidgets panels: thin views over the figure builders, for JupyterLab.

Each panel owns a few controls and `plotly.graph_objects.FigureWidget`s; a control change rebuilds
the figure with the pure function and swaps its data and layout in place. Tests set control values
and read the figures back, no browser needed.
"""

from __future__ import annotations

from pathlib import Path

import ipywidgets as W
import plotly.graph_objects as go

from widgets import cell_graph as cg
from widgets import evolution as ev
from widgets import frontier as fr
from widgets import video as vid
from widgets.records import alphas_at, cell_label, epochs, load_run
from widgets.spaces import architecture_parts, state_figures


class Panel(W.VBox):
    """A VBox with a short text form, so an executed notebook does not store a figure dump."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


def replace_figure(widget: go.FigureWidget, fig: go.Figure) -> None:
    """Show `fig` in an existing FigureWidget (keeps the widget, so callbacks stay attached)."""
    with widget.batch_update():
        widget.data = []
        widget.add_traces(list(fig.data))
        widget.layout = fig.layout


class CellGraphPanel(Panel):
    """The derived architecture of a run (genotype.json): a selector over its cells, fusion cell,
    trellis path and aggregation cell."""

    def __init__(self, genotype: dict | None, title: str = "architecture"):
        self.parts = architecture_parts(genotype)
        options = list(self.parts) or ["(no architecture recorded)"]
        self.selector = W.Dropdown(options=options, description="part")
        self.figure = go.FigureWidget()
        self.selector.observe(lambda _: self.refresh(), names="value")
        super().__init__([W.HTML(f"<b>{title}</b>"), self.selector, self.figure])
        self.refresh()

    def set_genotype(self, genotype: dict | None, title: str = "architecture") -> None:
        self.parts = architecture_parts(genotype)
        self.children[0].value = f"<b>{title}</b>"
        self.selector.options = list(self.parts) or ["(no architecture recorded)"]
        self.refresh()

    def refresh(self) -> None:
        make = self.parts.get(self.selector.value)
        fig = make() if make else go.Figure(layout={"title": "no architecture"})
        replace_figure(self.figure, fig)


class EvolutionPanel(Panel):
    """Search run: cell + edge selectors and an epoch slider driving the op-weight curves of the
    chosen edge, the all-edges heatmap and the cell graph at that epoch."""

    def __init__(self, alphas: list[dict]):
        if not alphas:
            raise ValueError("no alphas recorded (alphas.jsonl is empty)")
        self.alphas = alphas
        last = alphas[-1]
        self.cell = W.Dropdown(options=[(cell_label(c), c["index"]) for c in last["cells"]], description="cell")
        self.edge = W.Dropdown(description="edge")
        xs = epochs(alphas)
        self.epoch = W.SelectionSlider(options=xs, value=xs[-1], description="epoch", continuous_update=False)
        self.lines, self.heatmap, self.graph = go.FigureWidget(), go.FigureWidget(), go.FigureWidget()
        self.state = go.FigureWidget() if state_figures(last) else None
        self._set_edges()
        self.cell.observe(lambda _: (self._set_edges(), self.refresh()), names="value")
        self.edge.observe(lambda _: self._refresh_lines(), names="value")
        self.epoch.observe(lambda _: self._refresh_epoch(), names="value")
        wrap = W.Layout(flex_flow="row wrap")
        body = [W.HBox([self.cell, self.edge, self.epoch], layout=wrap), W.HBox([self.lines, self.heatmap], layout=wrap),
                self.graph]
        if self.state is not None:
            body.append(self.state)
        super().__init__(body)
        self.refresh()

    def _set_edges(self) -> None:
        cell = next(c for c in self.alphas[-1]["cells"] if c["index"] == self.cell.value)
        self.edge.options = [(name, i) for i, name in enumerate(ev.edge_names(cell))]
        self.edge.value = 0

    def _refresh_lines(self) -> None:
        if self.edge.value is not None:
            fig = ev.op_weight_figure(self.alphas, self.cell.value, self.edge.value)
            replace_figure(self.lines, fig.update_layout(width=520))

    def _refresh_epoch(self) -> None:
        rec = alphas_at(self.alphas, self.epoch.value)
        cell = next(c for c in rec["cells"] if c["index"] == self.cell.value)
        heat = ev.weight_heatmap_figure(self.alphas, self.cell.value, self.epoch.value)
        replace_figure(self.heatmap, heat.update_layout(width=460))
        replace_figure(self.graph, cg.cell_graph_figure(cell, f"{cell_label(cell)}, epoch {self.epoch.value}"))
        figs = state_figures(rec, f"epoch {self.epoch.value}") if self.state is not None else []
        if figs:
            replace_figure(self.state, figs[0][1])

    def refresh(self) -> None:
        self._refresh_lines()
        self._refresh_epoch()


class FrontierPanel(Panel):
    """Measured frontier (click a point to see its architecture) and, apart, the published points."""

    def __init__(self, frontier: dict):
        self.frontier = frontier
        self.figure = go.FigureWidget(fr.frontier_figure(frontier))
        self.published = go.FigureWidget(fr.published_figure())
        self.details = W.HTML("click a point to see its architecture")
        self.architecture = CellGraphPanel(None, "architecture of the selected run")
        for trace in self.figure.data[:2]:
            trace.on_click(self._on_click)
        super().__init__([self.figure, self.details, self.architecture,
                          W.HTML(f"<b>{fr.PUBLISHED_NOTE}</b>"), self.published])

    def _on_click(self, trace, points, state) -> None:
        if points.point_inds:
            self.select(int(trace.customdata[points.point_inds[0]]))

    def select(self, index: int) -> None:
        """Show point `index` of the frontier: its settings and its architecture."""
        from workbench.jsonio import read_json

        p = self.frontier["points"][index]
        self.details.value = fr._hover(p)
        genotype = read_json(p["genotype"]) if p.get("genotype") and Path(p["genotype"]).is_file() else None
        self.architecture.set_genotype(genotype, f"architecture of {p['name']}"
                                       + ("" if genotype else " (hand-designed baseline: no genotype)"))


class VideoPanel(Panel):
    """Sequence selector and frame slider over predicted/ground-truth masks and per-object J/F."""

    def __init__(self, run_dir: str | Path, max_frames: int | None = None):
        self.run_dir, self.max_frames = Path(run_dir), max_frames
        self.method = W.Dropdown(options=vid.methods(run_dir) or ["predictions"], description="method")
        self.sequence = W.Dropdown(options=vid.sequences(run_dir, self.method.value), description="sequence")
        self.frame = W.IntSlider(min=0, max=0, value=0, description="frame", continuous_update=False)
        self.image, self.scores_fig = go.FigureWidget(), go.FigureWidget()
        self.sequence.observe(lambda _: self._load(), names="value")
        self.method.observe(lambda _: self._load(), names="value")
        self.frame.observe(lambda _: self.refresh(), names="value")
        super().__init__([W.HBox([self.method, self.sequence, self.frame]), self.image, self.scores_fig])
        self._load()

    def _load(self) -> None:
        self.video = vid.load_video(self.run_dir, self.sequence.value, self.max_frames, self.method.value)
        self.scores = vid.per_frame_scores(self.video)
        self.frame.max = len(self.video.frame_names) - 1
        self.frame.value = 0
        self.refresh()

    def refresh(self) -> None:
        t = self.frame.value
        replace_figure(self.image, vid.frame_figure(self.video, t))
        replace_figure(self.scores_fig, vid.jf_figure(self.video, t, self.scores))


def show_run(run_dir: str | Path) -> Panel:
    """The right panel(s) for a run directory, by its kind."""
    run = load_run(run_dir)
    header = W.HTML(f"<h3>{run.name}</h3><p>{run.kind}, status {run.record.get('status')}, metrics "
                    f"{ {k: round(v, 4) if isinstance(v, float) else v for k, v in run.record.get('metrics', {}).items()} }</p>")
    body: list[W.Widget] = [header]
    if run.kind == "search" and run.alphas:
        body.append(go.FigureWidget(ev.search_curves_figure(run.metrics)))
        body.append(EvolutionPanel(run.alphas))
    elif run.metrics:
        body.append(go.FigureWidget(ev.training_curves_figure(run.metrics)))
    if run.kind == "frontier":
        body.append(FrontierPanel(fr.load_frontier(run.path)))
    if run.kind == "vos_segment":
        body.append(VideoPanel(run.path))
    if run.genotype:
        body.append(CellGraphPanel(run.genotype, "derived architecture"))
    return Panel(body)
