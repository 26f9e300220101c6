"""`workbench report`: one self-contained HTML file per run (or folder of runs, or executed notebook).

Offline by construction: plotly.js is inlined once in <head>, every figure is a plain plotly
figure (weight evolution uses plotly's own frames and slider), no CDN, no kernel, no widget
state, no code cells. The figures are the same builders the notebook panels show.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
from pathlib import Path
from typing import Any

from widgets import evolution as ev
from widgets import frontier as fr
from widgets import video as vid
from widgets.records import load_run
from widgets.spaces import architecture_figures, state_figures
from workbench.errors import DataError, OutputError, WorkbenchError

STYLE = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 24px auto;
       max-width: 1180px; color: #222; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 4px;
margin-top: 1.8em; } .sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 8px 0; font-size: 0.9em; }
td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: left; } th { background: #f4f4f4; }
.figure { margin: 10px 0 18px 0; } .note { color: #555; font-size: 0.9em; }
.status-finished { color: #2a7d2a; } .status-failed { color: #b22; } .status-running { color: #b80; }
"""


class Report:
    """Accumulates HTML sections and figures; `html()` inlines plotly.js exactly once."""

    def __init__(self, title: str):
        self.title, self.parts, self.figures = title, [], 0

    def heading(self, text: str, level: int = 2) -> None:
        self.parts.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def text(self, text: str, cls: str = "note") -> None:
        self.parts.append(f'<p class="{cls}">{html.escape(text)}</p>')

    def table(self, rows: list[dict], columns: list[str] | None = None) -> None:
        if not rows:
            return
        columns = columns or list(rows[0])
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c)))}</td>" for c in columns) + "</tr>"
                       for r in rows)
        self.parts.append(f"<table><tr>{head}</tr>{body}</table>")

    def details(self, summary: str, values: dict) -> None:
        """A collapsed key/value table (long configurations stay out of the way)."""
        start = len(self.parts)
        self.mapping(values)
        table = "".join(self.parts[start:])
        del self.parts[start:]
        self.parts.append(f"<details><summary>{html.escape(summary)}</summary>{table}</details>")

    def mapping(self, values: dict) -> None:
        self.table([{"key": k, "value": v} for k, v in values.items()], ["key", "value"])

    def figure(self, fig: Any) -> None:
        import plotly.io as pio

        self.figures += 1
        div = pio.to_html(fig, full_html=False, include_plotlyjs=False, auto_play=False,
                          div_id=f"figure-{self.figures}", config={"displaylogo": False, "responsive": True})
        self.parts.append(f'<div class="figure">{div}</div>')

    def html(self) -> str:
        from plotly.offline import get_plotlyjs

        created = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
                f"<title>{html.escape(self.title)}</title><style>{STYLE}</style>"
                f"<script type=\"text/javascript\">{get_plotlyjs()}</script></head><body>"
                f"<h1>{html.escape(self.title)}</h1><p class=\"sub\">workbench report, {created}</p>"
                + "\n".join(self.parts) + "</body></html>\n")


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return str(v)


def _summary(rep: Report, run) -> None:
    rec = run.record
    keys = ("kind", "status", "preset", "dataset", "latency_weight", "seed", "started", "finished", "duration_s",
            "error")
    summary = {k: rec.get(k) for k in keys if rec.get(k) is not None} | {"run directory": str(run.path)}
    metrics = {f"metric {k}": v for k, v in (rec.get("metrics") or {}).items()}
    rep.mapping(summary | metrics)


def _search_sections(rep: Report, run) -> None:
    if run.metrics:
        rep.heading("Search curves")
        rep.figure(ev.search_curves_figure(run.metrics))
    if run.alphas:
        rep.heading("Architecture-weight evolution")
        rep.text("Heatmaps: every edge x op of a cell; drag the epoch slider (or press play) to move through the "
                 "search. Line charts: one edge at a time (pick it in the menu), every op's weight per epoch.")
        for cell in run.alphas[-1]["cells"]:
            rep.heading(f"cell {cell['index']} ({cell['kind']})", 3)
            rep.figure(ev.weight_heatmap_animation(run.alphas, cell["index"]))
            rep.figure(ev.op_weight_edges_figure(run.alphas, cell["index"]))
        for title, fig in state_figures(run.alphas[-1], "last epoch"):
            rep.heading(f"{title} (last epoch)", 3)
            rep.figure(fig)


def _architecture_sections(rep: Report, genotype: dict | None, title: str = "Derived architecture") -> None:
    if not genotype:
        return
    rep.heading(title)
    if genotype.get("expected_latency_ms") is not None:
        rep.text(f"LUT-expected latency {genotype['expected_latency_ms']:.3g} ms; preset {genotype.get('preset')}; "
                 f"space {genotype.get('space', 'cells')}")
    for _, fig in architecture_figures(genotype):
        rep.figure(fig)


def _frontier_sections(rep: Report, frontier: dict) -> None:
    rep.heading("Accuracy-latency frontier (measured here)")
    if not frontier["points"]:
        rep.text("no finished run has both a measured latency_ms and an miou yet")
    else:
        rep.figure(fr.frontier_figure(frontier))
        rep.table(sorted(frontier["points"], key=lambda p: p["latency_ms"]),
                  ["name", "kind", "preset", "latency_weight", "seed", "latency_ms", "miou", "params_m", "gflops"])
        rep.text("Pareto front: " + ", ".join(frontier.get("pareto", [])))
    rep.heading("Published results (separate panel: other hardware)")
    rep.text(fr.PUBLISHED_NOTE)
    rep.figure(fr.published_figure())


def _video_sections(rep: Report, run, max_sequences: int = 3) -> None:
    results = run.record.get("methods_results") or {}
    if results:
        rep.heading("Methods", 3)
        rep.table([{"method": m, **{k: r.get(k) for k in ("jf", "j_mean", "f_mean", "fps")}}
                   for m, r in results.items()], ["method", "jf", "j_mean", "f_mean", "fps"])
    for method in vid.methods(run.path)[:1] or [None]:  # the main method; the others are in the table
        names = vid.sequences(run.path, method)
        if not names:
            return
        rep.heading(f"Video segmentation{f' ({method})' if method else ''}")
        for name in names[:max_sequences]:
            try:
                video = vid.load_video(run.path, name, method=method)
            except DataError as exc:
                rep.text(f"{name}: cannot show frames ({exc})")
                continue
            rep.heading(name, 3)
            rep.figure(vid.video_animation_figure(video))
            rep.figure(vid.jf_figure(video))
        if len(names) > max_sequences:
            rep.text(f"{len(names) - max_sequences} more sequences not shown")


def _run_report(rep: Report, path: Path) -> None:
    run = load_run(path)
    _summary(rep, run)
    if run.kind == "search":
        _search_sections(rep, run)
    elif run.metrics and any(m.get("phase") in ("train", "val") for m in run.metrics):
        rep.heading("Training curves")
        rep.figure(ev.training_curves_figure(run.metrics))
    if run.kind == "frontier":
        _frontier_sections(rep, fr.load_frontier(run.path))
    if run.kind == "vos_segment":
        _video_sections(rep, run)
    _architecture_sections(rep, run.genotype)
    if run.config:
        rep.heading("Configuration")
        rep.details(f"config.json ({len(run.config)} values)", run.config)


def _folder_report(rep: Report, path: Path) -> None:
    from workbench.runs import RUN_COLUMNS, list_runs

    rows = list_runs(path)
    rep.heading("Runs")
    rep.table(rows, list(RUN_COLUMNS))
    _frontier_sections(rep, fr.load_frontier(path))


def _check_report_out(target: Path, out: str | Path | None) -> None:
    """An explicit output must be an HTML file that is none of the records it reports on."""
    from workbench.outputs import check_output
    from workbench.runs import RunDir

    if out is None:
        return
    if Path(out).suffix.lower() not in (".html", ".htm"):
        raise OutputError(out, "a report is an .html file; give a path ending in .html")
    folder = target.parent if target.suffix == ".ipynb" else target
    check_output(out, inputs=[target if target.suffix == ".ipynb" else None, *RunDir(folder).input_files()])


def build_report(target: str | Path, out: str | Path | None = None) -> Path:
    """Write the HTML report of a run directory, a folder of runs or an executed notebook."""
    target = Path(target)
    _check_report_out(target, out)
    notebook_params = None
    if target.suffix == ".ipynb":
        import nbformat

        if not target.is_file():
            raise DataError(target, "no such notebook")
        try:
            nb = nbformat.read(target, as_version=4)
        except Exception as exc:  # nbformat raises JSON, validation and encoding errors alike
            raise DataError(target, f"not a readable notebook ({exc.__class__.__name__})") from None
        meta = nb.metadata.get("papermill", {})
        notebook_params = meta.get("parameters") or {}
        errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
        run_dir = Path(notebook_params.get("output_dir") or target.parent)
        if not run_dir.is_absolute() and not run_dir.exists():
            run_dir = target.parent / run_dir
        out = out or target.with_suffix(".html")
    else:
        if not target.is_dir():
            raise DataError(target, "not a run directory, folder of runs or .ipynb")
        run_dir, errors = target, []
        out = out or target / "report.html"
    rep = Report(f"{run_dir.name}" if not notebook_params else f"{target.stem}: {run_dir.name}")
    if notebook_params is not None:
        rep.heading("Notebook")
        rep.mapping({"notebook": str(target)} | notebook_params)
        for e in errors:
            rep.text(f"cell failed: {e.get('ename')}: {e.get('evalue')}")
    if (run_dir / "run_record.json").is_file():
        _run_report(rep, run_dir)
    elif run_dir.is_dir() and any(run_dir.rglob("run_record.json")):
        _folder_report(rep, run_dir)
    else:
        raise WorkbenchError(f"{run_dir}: no run_record.json here or below; nothing to report")
    out = Path(out)
    from workbench.jsonio import atomic_write_text

    atomic_write_text(out, rep.html())
    return out
