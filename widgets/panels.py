"""ipywidgets panels: thin views over the figure builders, for JupyterLab.

Every figure lives in a `widgets.slot.Slot`, so it survives a page reload and leaves a static
copy in executed notebooks. Comparing runs is `widgets.compare_panel`.

Live: `show_run` on a running run directory follows it: a background thread polls metrics.jsonl,
alphas.jsonl, run_record.json and genotype.json and updates the panel as epochs land (the step may
run in another notebook, a terminal or a thread). The same panel works on a finished run.

Tests set control values and read the figures back, no browser needed.
"""

from __future__ import annotations

import html
import logging
import threading
import time
from pathlib import Path

import ipywidgets as W
import plotly.graph_objects as go

from widgets import cell_graph as cg
from widgets import evolution as ev
from widgets import frontier as fr
from widgets import selection as sel
from widgets import video as vid
from widgets.records import Run, alphas_at, cell_label, epochs, load_run
from widgets.slot import HIDE_STATIC, Panel, Slot
from widgets.spaces import architecture_parts, state_figures
from widgets.static import slug
from widgets.summary import header_html
from workbench.errors import WorkbenchError

log = logging.getLogger(__name__)

class CellGraphPanel(Panel):
    """The derived architecture of a run (genotype.json): a selector over its cells, fusion cell,
    trellis path and aggregation cell."""

    def __init__(self, genotype: dict | None, title: str = "architecture", run: str | None = None):
        self.run_name = run
        self.parts = architecture_parts(genotype)
        self.selector = W.Dropdown(options=list(self.parts) or ["(no architecture recorded)"], description="part")
        self._slot = Slot("architecture", run)
        self.selector.observe(lambda _: self.refresh(), names="value")
        super().__init__([W.HTML(f"<b>{html.escape(title)}</b>"), self.selector, self._slot.box])
        self.refresh()

    @property
    def figure(self) -> go.FigureWidget:
        return self._slot.widget

    def set_genotype(self, genotype: dict | None, title: str = "architecture") -> None:
        self.parts = architecture_parts(genotype)
        self.children[0].value = f"<b>{html.escape(title)}</b>"
        options = list(self.parts) or ["(no architecture recorded)"]
        if tuple(options) == tuple(self.selector.options):
            self.refresh()
        else:
            self.selector.options = options  # the observer refreshes
            if self.selector.value == options[0]:
                self.refresh()

    def refresh(self) -> None:
        make = self.parts.get(self.selector.value)
        if make:
            fig = make()
            self._slot.name = f"architecture-{slug(self.selector.value)}"
        else:
            fig = go.Figure(layout={"title": "no architecture (a hand-designed baseline, or none recorded)",
                                    "height": 200, "xaxis": {"visible": False}, "yaxis": {"visible": False}})
        self._slot.show(fig)


class EvolutionPanel(Panel):
    """Search run: cell + edge selectors and an epoch slider driving the op-weight curves of the
    chosen edge, the all-edges heatmap, the cell graph at that epoch and the convergence figure
    (the winning op of every edge of every cell). `set_alphas` follows a running search."""

    def __init__(self, alphas: list[dict], run: str | None = None):
        if not alphas:
            raise ValueError("no alphas recorded (alphas.jsonl is empty)")
        self.run_name = run
        self.alphas = alphas
        self._quiet = False
        last = alphas[-1]
        self.cell = W.Dropdown(options=[(cell_label(c), c["index"]) for c in last["cells"]], description="cell")
        self.edge = W.Dropdown(description="edge")
        xs = epochs(alphas)
        self.epoch = W.SelectionSlider(options=xs, value=xs[-1], description="epoch", continuous_update=False)
        self._lines, self._heatmap = Slot("op-weights", run), Slot("weights-heatmap", run)
        self._graph, self._convergence = Slot("cell-graph", run), Slot("convergence", run)
        self._state = Slot("space-state", run) if state_figures(last) else None
        self._set_edges()
        self.cell.observe(self._on_cell, names="value")
        self.edge.observe(lambda _: self._quiet or self._refresh_lines(), names="value")
        self.epoch.observe(lambda _: self._quiet or self._refresh_epoch(), names="value")
        wrap = W.Layout(flex_flow="row wrap")
        body = [W.HBox([self.cell, self.edge, self.epoch], layout=wrap),
                W.HBox([self._lines.box, self._heatmap.box], layout=wrap), self._graph.box, self._convergence.box]
        if self._state is not None:
            body.append(self._state.box)
        super().__init__(body)
        self.refresh()

    lines = property(lambda self: self._lines.widget)
    heatmap = property(lambda self: self._heatmap.widget)
    graph = property(lambda self: self._graph.widget)
    convergence = property(lambda self: self._convergence.widget)
    state = property(lambda self: self._state.widget if self._state is not None else None)

    def _on_cell(self, _) -> None:
        if self._quiet:
            return
        self._quiet = True
        try:
            self._set_edges()
        finally:
            self._quiet = False
        self.refresh()

    def _set_edges(self) -> None:
        cell = next(c for c in self.alphas[-1]["cells"] if c["index"] == self.cell.value)
        keep = self.edge.value
        self.edge.options = [(name, i) for i, name in enumerate(ev.edge_names(cell))]
        self.edge.value = keep if isinstance(keep, int) and keep < len(self.edge.options) and not self._cell_changed() \
            else 0
        self._edges_of = self.cell.value

    def _cell_changed(self) -> bool:
        return getattr(self, "_edges_of", self.cell.value) != self.cell.value

    def set_alphas(self, alphas: list[dict]) -> None:
        """New epochs of a running search: the slider gains them and, if it was at the last epoch,
        moves to the newest one."""
        if not alphas:
            return
        follow = self.epoch.value == self.alphas[-1]["epoch"]
        self.alphas = alphas
        self._quiet = True
        try:
            keep = self.epoch.value
            self.epoch.options = epochs(alphas)
            xs = epochs(alphas)
            self.epoch.value = xs[-1] if follow or keep not in xs else keep
        finally:
            self._quiet = False
        self.refresh()

    def _refresh_lines(self) -> None:
        if self.edge.value is not None:
            self._lines.show(ev.op_weight_figure(self.alphas, self.cell.value, self.edge.value).update_layout(width=520))

    def _refresh_epoch(self) -> None:
        rec = alphas_at(self.alphas, self.epoch.value)
        cell = next(c for c in rec["cells"] if c["index"] == self.cell.value)
        heat = ev.weight_heatmap_figure(self.alphas, self.cell.value, self.epoch.value)
        self._heatmap.show(heat.update_layout(width=460))
        self._graph.show(cg.cell_graph_figure(cell, f"{cell_label(cell)}, epoch {self.epoch.value}"))
        self._convergence.show(ev.convergence_figure(self.alphas, self.epoch.value))
        figs = state_figures(rec, f"epoch {self.epoch.value}") if self._state is not None else []
        if figs:
            self._state.show(figs[0][1])

    def refresh(self) -> None:
        self._refresh_lines()
        self._refresh_epoch()


class FrontierPanel(Panel):
    """Measured frontier (click a point to see its architecture) and, apart, the published points."""

    def __init__(self, frontier: dict, run: str | None = None):
        self.run_name = run
        self.frontier = frontier
        self._figure = Slot("frontier", run, fr.frontier_figure(frontier), on_click=self._on_click, click_traces=(0, 1))
        self._published = Slot("published", run, fr.published_figure())
        self.details = W.HTML("click a point to see its architecture")
        self.architecture = CellGraphPanel(None, "architecture of the selected run", run)
        super().__init__([self._figure.box, self.details, self.architecture,
                          W.HTML(f"<b>{fr.PUBLISHED_NOTE}</b>"), self._published.box])

    figure = property(lambda self: self._figure.widget)
    published = property(lambda self: self._published.widget)

    def _on_click(self, trace, points, state) -> None:
        if points.point_inds:
            self.select(int(trace.customdata[points.point_inds[0]]))

    def select(self, index: int) -> None:
        """Show point `index` of the frontier: its settings and its architecture; the point is
        outlined in the figure."""
        from workbench.jsonio import read_json

        p = self.frontier["points"][index]
        self.details.value = fr._hover(p)
        genotype = read_json(p["genotype"]) if p.get("genotype") and Path(p["genotype"]).is_file() else None
        self.architecture.set_genotype(genotype, f"architecture of {p['name']}"
                                       + ("" if genotype else " (hand-designed baseline: no genotype)"))
        self._figure.show(fr.frontier_figure(self.frontier, highlight=p["name"]))


class VideoPanel(Panel):
    """Sequence selector and frame slider over predicted/ground-truth masks and per-object J/F."""

    def __init__(self, run_dir: str | Path, max_frames: int | None = None, run: str | None = None):
        self.run_name = run
        self.run_dir, self.max_frames = Path(run_dir), max_frames
        self.method = W.Dropdown(options=vid.methods(run_dir) or ["predictions"], description="method")
        self.sequence = W.Dropdown(options=vid.sequences(run_dir, self.method.value), description="sequence")
        self.frame = W.IntSlider(min=0, max=0, value=0, description="frame", continuous_update=False)
        self._image, self._scores = Slot("frame", run), Slot("j-and-f", run)
        self._loading = False
        self.sequence.observe(lambda _: self._load(), names="value")
        self.method.observe(self._on_method, names="value")
        self.frame.observe(lambda _: self._loading or self.refresh(), names="value")
        super().__init__([W.HBox([self.method, self.sequence, self.frame]), self._image.box, self._scores.box])
        self._load()

    image = property(lambda self: self._image.widget)
    scores_fig = property(lambda self: self._scores.widget)

    def _on_method(self, _) -> None:
        names = vid.sequences(self.run_dir, self.method.value)
        if tuple(names) != tuple(self.sequence.options):
            self.sequence.options = names  # reloads through the sequence observer
        else:
            self._load()

    def _load(self) -> None:
        self.video = vid.load_video(self.run_dir, self.sequence.value, self.max_frames, self.method.value)
        self.scores = vid.per_frame_scores(self.video)
        self._loading = True
        try:
            self.frame.value = 0
            self.frame.max = len(self.video.frame_names) - 1
        finally:
            self._loading = False
        self.refresh()

    def refresh(self) -> None:
        t = self.frame.value
        self._image.name, self._scores.name = f"{self.video.name}-frame{t}", f"{self.video.name}-j-and-f"
        self._image.show(vid.frame_figure(self.video, t))
        self._scores.show(vid.jf_figure(self.video, t, self.scores))


class RunPanel(Panel):
    """The panel(s) for one run directory, by its kind, with a header of its key facts. Follows a
    running run (see the module doc); `poll()` re-reads the records once."""

    FILES = ("run_record.json", "metrics.jsonl", "alphas.jsonl", "genotype.json", "benchmark/run_record.json",
             sel.CANDIDATES_FILE)

    def __init__(self, run_dir: str | Path, live: bool | None = None, interval: float = 2.0):
        self.path = Path(run_dir)
        self.run = self._load() or Run(path=self.path)
        self.run_name = slug(self.run.name)
        self.header = W.HTML(header_html(self.run))
        self.status = W.HTML("")
        self.parts: dict[str, object] = {}
        self.polls = 0
        super().__init__([self.header, self.status])
        self._signature = self._files()
        self._build()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if live if live is not None else self.run.status in ("running", "missing"):
            self.watch(interval)

    def _load(self) -> Run | None:
        try:
            return load_run(self.path) if (self.path / "run_record.json").is_file() else None
        except WorkbenchError as exc:  # e.g. a record replaced while we read it: the next poll retries
            log.warning("%s", exc)
            return None

    def _files(self) -> tuple:
        out = []
        for name in self.FILES:
            try:
                st = (self.path / name).stat()
                out.append((name, st.st_size, st.st_mtime_ns))
            except OSError:
                out.append((name, None, None))
        return tuple(out)

    # -- building -------------------------------------------------------------------------------
    def _build(self) -> None:
        run, name = self.run, self.run_name
        parts = self.parts
        metrics_fig = None
        candidates = sel.load_candidates(run.path) if run.kind == "search" else None
        if candidates is not None:  # strategy: sample, its rungs instead of search epochs
            metrics_fig = sel.selection_figure(candidates)
        elif run.kind == "search" and run.metrics:
            metrics_fig = ev.search_curves_figure(run.metrics)
        elif any(m.get("phase") in ("train", "val") for m in run.metrics):
            metrics_fig = ev.training_curves_figure(run.metrics)
        if metrics_fig is not None:
            if "curves" not in parts:
                parts["curves"] = Slot("curves", name)
            parts["curves"].show(metrics_fig)
        if run.kind == "search" and run.alphas:
            if "evolution" in parts:
                parts["evolution"].set_alphas(run.alphas)
            else:
                parts["evolution"] = EvolutionPanel(run.alphas, name)
        if run.kind == "frontier" and run.status == "finished" and "frontier" not in parts:
            parts["frontier"] = FrontierPanel(fr.load_frontier(run.path), name)
        if run.kind == "vos_segment" and run.status == "finished" and "video" not in parts:
            try:
                parts["video"] = VideoPanel(run.path, run=name)
            except WorkbenchError as exc:
                parts["video"] = W.HTML(f"cannot show the video: {html.escape(str(exc))}")
        if run.genotype:
            if "architecture" in parts:
                parts["architecture"].set_genotype(run.genotype, "derived architecture")
            else:
                parts["architecture"] = CellGraphPanel(run.genotype, "derived architecture", name)
        order = ("curves", "evolution", "frontier", "video", "architecture")
        body = [parts[k].box if isinstance(parts[k], Slot) else parts[k] for k in order if k in parts]
        extra = [c for c in self.children[2:] if isinstance(c, W.HTML) and c.value == HIDE_STATIC]
        self.children = (self.header, self.status, *body, *extra)
        self.header.value = header_html(run)
        self._set_status()

    def _set_status(self, note: str = "") -> None:
        run = self.run
        if self._watching():
            last = epochs(run.alphas)[-1] if run.alphas else max((m.get("epoch", -1) for m in run.metrics), default=None)
            seen = "no epoch recorded yet" if last is None or last == -1 and not run.metrics else f"epoch {last} shown"
            self.status.value = (f"<span style='color:#b80'>&#9679; live: following {html.escape(str(self.path))} "
                                 f"({seen}, checked {time.strftime('%H:%M:%S')}){note}</span>")
        elif run.status == "missing":
            self.status.value = f"no run record in {html.escape(str(self.path))} yet"
        else:
            self.status.value = ""

    def _watching(self) -> bool:
        thread = getattr(self, "_thread", None)
        return thread is not None and thread.is_alive() and not self._stop.is_set()

    # -- following a running run -------------------------------------------------------------------
    def poll(self) -> bool:
        """Re-read the run's records if a file changed; True when the panel was updated."""
        self.polls += 1
        signature = self._files()
        if signature == self._signature:
            self._set_status()
            return False
        run = self._load()
        if run is None:
            return False
        self._signature, self.run = signature, run
        self._build()
        self.update_static()
        return True

    def finished(self) -> bool:
        """The run is over (or its process is gone): nothing more will land."""
        from workbench.runs import _alive

        status = self.run.status
        if status == "missing":
            return False
        if status == "running":
            import socket

            rec = self.run.record
            return rec.get("host") == socket.gethostname() and not _alive(rec.get("pid"))
        return True

    def watch(self, interval: float = 2.0) -> None:
        """Poll every `interval` seconds in a background thread until the run is over."""
        if self._watching():
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.poll()
                except Exception as exc:  # keep following: a half-written file is read again next time
                    log.warning("%s: live panel: %s", self.path, exc)
                if self.finished():
                    self.poll()
                    break
            self._stop.set()
            self._set_status()

        self._thread = threading.Thread(target=loop, name=f"wb-live-{self.path.name}", daemon=True)
        self._thread.start()
        self._set_status()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._set_status()


def show_run(run_dir: str | Path, live: bool | None = None, interval: float = 2.0) -> RunPanel:
    """The right panel(s) for a run directory, by its kind. A running run (or a directory with no
    record yet) is followed live; `live=False` reads it once."""
    return RunPanel(run_dir, live=live, interval=interval)


def compare_runs(root: str | Path):
    """The runs under a folder side by side (`widgets.compare_panel.CompareRunsPanel`)."""
    from widgets.compare_panel import CompareRunsPanel

    return CompareRunsPanel(root)
