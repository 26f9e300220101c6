"""Compare the runs under a folder: runs table, overlays, parallel coordinates, one run's panel."""

from __future__ import annotations

import html
from pathlib import Path

import ipywidgets as W
import plotly.graph_objects as go

from widgets import evolution as ev
from widgets import frontier as fr
from widgets.panels import RunPanel
from widgets.records import load_run
from widgets.slot import Panel, Slot
from widgets.static import slug


class CompareRunsPanel(Panel):
    """The runs under a folder side by side: a sortable, filterable runs table (CSV download),
    any metric or one edge's op weights overlaid across the selected runs, parallel coordinates
    of the sweep's parameters against mIoU and measured latency, and the panel of the run opened
    from the table."""

    COLUMNS = ("run", "status", "kind", "preset", "latency_weight", "seed", "dataset", "miou", "search_miou",
               "latency_ms", "expected_ms", "noisy", "jf", "duration_s", "report")

    def __init__(self, root: str | Path, max_overlay: int = 8):
        from workbench.runs import list_runs

        self.root = Path(root)
        self.run_name = slug(self.root.resolve().name)
        self.rows = list_runs(self.root)
        for r in self.rows:
            r["report"] = "report.html" if (Path(r.get("path", "")) / "report.html").is_file() else None
        self.runs = {r["run"]: load_run(r["path"]) for r in self.rows if r.get("path") and r["status"] != "unreadable"}
        self.query = W.Text(placeholder="words, or column:value (status:failed)", description="filter",
                            continuous_update=False)
        self.sort = W.Dropdown(options=list(self.COLUMNS), value="run", description="sort by")
        self.descending = W.Checkbox(value=False, description="descending", indent=False)
        self.table = W.HTML()
        self.csv = W.HTML()
        with_metrics = [n for n, run in self.runs.items() if run.metrics]
        self.select = W.SelectMultiple(options=list(self.runs), value=tuple(with_metrics[:max_overlay]), rows=6,
                                       description="overlay")
        keys = sorted({k for run in self.runs.values() for m in run.metrics for k, v in m.items()
                       if k not in ("epoch", "step") and isinstance(v, (int, float)) and not isinstance(v, bool)})
        default = next((k for k in ("val_miou", "miou", "loss", "train_loss") if k in keys), keys[0] if keys else None)
        self.metric = W.Dropdown(options=keys or ["(no metrics)"], value=default or "(no metrics)",
                                 description="metric")
        searches = [run for run in self.runs.values() if run.alphas]
        cells = sorted({c["index"] for run in searches for c in run.alphas[-1]["cells"]})
        self.cell = W.Dropdown(options=cells or [0], description="cell")
        self.edge = W.BoundedIntText(value=0, min=0, max=64, description="edge")
        self.run_picker = W.Dropdown(options=["(none)", *self.runs], value="(none)", description="open run")
        self._metric_fig, self._edge_fig = Slot("overlay-metric", self.run_name), Slot("overlay-edge", self.run_name)
        self._parallel = Slot("parallel-coordinates", self.run_name)
        self.view = W.VBox()
        for w in (self.query, self.sort, self.descending):
            w.observe(lambda _: self.refresh_table(), names="value")
        self.select.observe(lambda _: self.refresh_overlays(), names="value")
        self.metric.observe(lambda _: self.refresh_overlays(), names="value")
        self.cell.observe(lambda _: self.refresh_overlays(), names="value")
        self.edge.observe(lambda _: self.refresh_overlays(), names="value")
        self.run_picker.observe(lambda _: self.open_run(), names="value")
        wrap = W.Layout(flex_flow="row wrap")
        super().__init__([
            W.HTML(f"<h3 style='margin:4px 0'>runs under {html.escape(str(self.root))}</h3>"),
            W.HBox([self.query, self.sort, self.descending], layout=wrap), self.csv, self.table,
            W.HBox([self.select, W.VBox([self.metric, self.cell, self.edge])], layout=wrap),
            self._metric_fig.box, self._edge_fig.box, self._parallel.box, self.run_picker, self.view])
        self.refresh_table()
        self.refresh_overlays()
        self.refresh_parallel()

    def shown_rows(self) -> list[dict]:
        from widgets.compare import sort_filter

        return sort_filter(self.rows, self.sort.value, self.descending.value, self.query.value)

    def refresh_table(self) -> None:
        import base64

        from widgets.compare import rows_csv
        from workbench.names import METRICS

        rows = self.shown_rows()
        head = "".join(f"<th style='padding:2px 6px;background:#f4f4f4' title='{c}'>"
                       f"{html.escape(METRICS[c].title if c in METRICS else c)}</th>" for c in self.COLUMNS)
        body = "".join("<tr>" + "".join(
            f"<td style='padding:2px 6px;border-top:1px solid #eee'>"
            f"{html.escape(METRICS[c].format(r.get(c)) if c in METRICS else ('-' if r.get(c) is None else str(r.get(c))))}"
            "</td>" for c in self.COLUMNS) + "</tr>" for r in rows)
        self.table.value = (f"<div style='max-height:320px;overflow:auto'><table style='border-collapse:collapse;"
                            f"font-size:0.88em'><tr>{head}</tr>{body}</table></div>"
                            f"<span style='color:#666;font-size:0.85em'>{len(rows)} of {len(self.rows)} runs; "
                            "open one below</span>")
        data = base64.b64encode(rows_csv(rows, [c for c in self.COLUMNS if c != "report"] + ["path"]).encode()).decode()
        self.csv.value = (f"<a download='{self.run_name}-runs.csv' href='data:text/csv;base64,{data}'>"
                          "download the table as CSV</a>")

    def refresh_overlays(self) -> None:
        runs = [self.runs[n] for n in self.select.value if n in self.runs]
        if self.metric.value in ("(no metrics)", None):
            self._metric_fig.show(go.Figure(layout={"title": "no metrics recorded", "height": 200}))
        else:
            self._metric_fig.name = f"overlay-{self.metric.value}"
            self._metric_fig.show(ev.overlay_metric_figure(runs, self.metric.value))
        searches = [r for r in runs if r.alphas]
        if searches:
            self._edge_fig.name = f"overlay-cell{self.cell.value}-edge{self.edge.value}"
            self._edge_fig.show(ev.overlay_edge_figure(searches, self.cell.value, self.edge.value))
        else:
            self._edge_fig.show(go.Figure(layout={"title": "select search runs to compare op weights", "height": 200}))

    def refresh_parallel(self) -> None:
        from widgets.compare import parallel_figure

        points = fr.load_frontier(self.root)["points"]
        if len(points) > 1:
            self._parallel.show(parallel_figure(points))
        else:
            self._parallel.show(go.Figure(layout={"title": "parallel coordinates: needs two or more runs with an "
                                                           "mIoU and a measured latency", "height": 200}))

    def open_run(self) -> None:
        for old in self.view.children:
            if isinstance(old, RunPanel):
                old.stop()
        name = self.run_picker.value
        self.view.children = () if name not in self.runs else (RunPanel(self.runs[name].path),)
