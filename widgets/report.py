"""`workbench report`: an offline HTML file per run (or folder of runs, or executed notebook).

Offline by construction: no CDN, no kernel, no widget state, no code cells. A run's report is
one self-contained file (plotly.js inlined once in <head>), so it can be mailed or archived
alone. A folder report writes an index page and, in `<index>_files/` beside it, one report per
run and one `plotly.min.js` they all load: a sweep of twenty runs then holds one copy of the
library instead of twenty (a single run's report keeps its own copy: a file that needs another
file is no longer self-contained).

Reports have a table of contents; a search's per-cell figures sit in collapsed sections that draw
their figures when first opened (the page opens at once, and a plot never gets drawn into a
hidden box). Every figure downloads as PNG or SVG named after the run and the figure, every table
as CSV; the runs table sorts by a click on a header and filters as you type. The figures are the
same builders the notebook panels show.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
from pathlib import Path
from typing import Any

from widgets import compare as cmp
from widgets import evolution as ev
from widgets import frontier as fr
from widgets import selection as sel
from widgets import video as vid
from widgets.records import load_run
from widgets.spaces import architecture_figures, state_figures
from widgets.static import LAZY_JS, export_name, figure_html, plotly_js_script, slug
from widgets.summary import latency_text, summary_items
from workbench.errors import DataError, OutputError, WorkbenchError
from workbench.names import METRICS

PLOTLY_FILE = "plotly.min.js"

STYLE = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 24px auto;
       max-width: 1180px; color: #222; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 4px;
margin-top: 1.8em; } .sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 8px 0; font-size: 0.9em; }
td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: left; } th { background: #f4f4f4; }
.figure { margin: 10px 0 18px 0; } .note { color: #555; font-size: 0.9em; }
.status-finished { color: #2a7d2a; } .status-failed { color: #b22; } .status-running { color: #b80; }
nav.toc { background: #f8f8f8; border: 1px solid #e4e4e4; padding: 6px 14px; margin: 12px 0; font-size: 0.92em; }
nav.toc ul { margin: 4px 0; padding-left: 18px; } nav.toc li { margin: 1px 0; }
details.cell { border: 1px solid #e4e4e4; margin: 6px 0; padding: 4px 10px; }
details.cell > summary { cursor: pointer; font-weight: 600; }
table.sortable th { cursor: pointer; } table.sortable th:after { content: ' \\2195'; color: #bbb; }
.tools { font-size: 0.88em; margin: 4px 0; } .tools input { width: 260px; }
"""

TABLE_JS = """<script type="text/javascript">
function wbSort(th) {
  var table = th.closest('table'), col = Array.prototype.indexOf.call(th.parentNode.children, th);
  var rows = Array.from(table.querySelectorAll('tr')).slice(1), asc = th.dataset.dir !== 'asc';
  th.parentNode.querySelectorAll('th').forEach(function (h) { delete h.dataset.dir; }); th.dataset.dir = asc ? 'asc' : 'desc';
  function key(r) { var c = r.children[col]; var v = c ? (c.dataset.v !== undefined ? c.dataset.v : c.textContent) : '';
    var n = parseFloat(v); return (v === '' || v === '-') ? null : (isNaN(n) ? v.toLowerCase() : n); }
  rows.sort(function (a, b) { var x = key(a), y = key(b); if (x === null) return 1; if (y === null) return -1;
    return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1); });
  rows.forEach(function (r) { table.appendChild(r); });
}
function wbFilter(input) {
  var table = document.getElementById(input.dataset.table), words = input.value.toLowerCase().split(/\\s+/).filter(Boolean);
  Array.from(table.querySelectorAll('tr')).slice(1).forEach(function (r) {
    var text = r.textContent.toLowerCase(); r.style.display = words.every(function (w) { return text.indexOf(w) >= 0; }) ? '' : 'none';
  });
}
</script>"""


def column_title(key: str) -> str:
    """A table header: the metric's name and unit from workbench.names, else the key."""
    return METRICS[key].title if key in METRICS else key


class Report:
    """Accumulates HTML sections and figures; `html()` puts plotly.js in once (or links a shared copy)."""

    def __init__(self, title: str, run_name: str | None = None):
        self.title, self.parts, self.figures = title, [], 0
        self.run_name = run_name or title
        self.toc: list[tuple[int, str, str]] = []
        self.tables = 0
        self._lazy = 0  # > 0 inside a collapsed section

    def heading(self, text: str, level: int = 2) -> None:
        anchor = f"s{len(self.toc) + 1}-{slug(text).lower()[:40]}"
        if not self._lazy:
            self.toc.append((level, text, anchor))
        self.parts.append(f'<h{level} id="{anchor}">{html.escape(text)}</h{level}>')

    def text(self, text: str, cls: str = "note") -> None:
        self.parts.append(f'<p class="{cls}">{html.escape(text)}</p>')

    def raw(self, markup: str) -> None:
        self.parts.append(markup)

    def table(self, rows: list[dict], columns: list[str] | None = None, *, csv_name: str | None = None,
              sortable: bool = False, links: dict[str, str] | None = None) -> None:
        """A table; metric columns get their names and units (workbench.names) and shown values
        (percent for mIoU). csv_name: a link downloads the raw values as CSV. sortable: click a
        header to sort, type to filter. links: {value of the first column: href}."""
        if not rows:
            return
        columns = columns or list(rows[0])
        self.tables += 1
        table_id = f"table-{self.tables}"
        head = "".join(f"<th{' onclick=wbSort(this)' if sortable else ''} title=\"{html.escape(c)}\">"
                       f"{html.escape(column_title(c))}</th>" for c in columns)

        def cell(r: dict, c: str, first: bool) -> str:
            v = r.get(c)
            text = html.escape(_fmt(v, c))
            if first and links and str(v) in links:
                text = f'<a href="{html.escape(links[str(v)])}">{text}</a>'
            data = f' data-v="{html.escape(str(v))}"' if isinstance(v, (int, float)) and not isinstance(v, bool) else ""
            return f"<td{data}>{text}</td>"

        body = "".join("<tr>" + "".join(cell(r, c, i == 0) for i, c in enumerate(columns)) + "</tr>" for r in rows)
        tools = []
        if sortable:
            tools.append(f'<input type="search" placeholder="filter rows (e.g. finished lgcnet)" '
                         f'data-table="{table_id}" oninput="wbFilter(this)">')
        if csv_name:
            data = base64.b64encode(cmp.rows_csv(rows, columns).encode()).decode()
            tools.append(f'<a download="{html.escape(slug(csv_name))}.csv" href="data:text/csv;base64,{data}">'
                         "download CSV</a>")
        tools_html = f'<div class="tools">{" ".join(tools)}</div>' if tools else ""
        cls = ' class="sortable"' if sortable else ""
        self.parts.append(f'{tools_html}<table id="{table_id}"{cls}><tr>{head}</tr>{body}</table>')

    def details(self, summary: str, values: dict) -> None:
        """A collapsed key/value table (long configurations stay out of the way)."""
        start = len(self.parts)
        self.mapping(values)
        table = "".join(self.parts[start:])
        del self.parts[start:]
        self.parts.append(f"<details><summary>{html.escape(summary)}</summary>{table}</details>")

    def begin_section(self, summary: str) -> None:
        """Start a collapsed section; its figures are drawn when it is first opened."""
        self._lazy += 1
        self.parts.append(f'<details class="cell"><summary>{html.escape(summary)}</summary>')

    def end_section(self) -> None:
        self._lazy -= 1
        self.parts.append("</details>")

    def mapping(self, values: dict) -> None:
        self.table([{"key": k, "value": v} for k, v in values.items()], ["key", "value"])

    def figure(self, fig: Any, name: str | None = None) -> None:
        self.figures += 1
        name = name or (fig.layout.title.text if fig.layout.title and fig.layout.title.text else f"figure-{self.figures}")
        div = figure_html(fig, f"figure-{self.figures}", export_name(self.run_name, name.split("<")[0]),
                          lazy=self._lazy > 0)
        self.parts.append(f'<div class="figure">{div}</div>')

    def _toc(self) -> str:
        """Contents: the level-2 headings, each with its level-3 headings (when there are 3 or more)."""
        if sum(level == 2 for level, _, _ in self.toc) < 3:
            return ""
        tree: list[tuple[str, list[str]]] = []
        for level, text, anchor in self.toc:
            link = f'<a href="#{anchor}">{html.escape(text)}</a>'
            if level == 2 or not tree:
                tree.append((link, []))
            else:
                tree[-1][1].append(link)
        items = "".join(f"<li>{top}" + (f"<ul>{''.join(f'<li>{s}</li>' for s in subs)}</ul>" if subs else "")
                        + "</li>" for top, subs in tree)
        return f'<nav class="toc"><b>Contents</b><ul>{items}</ul></nav>'

    def html(self, plotly_src: str | None = None) -> str:
        """The page. plotly_src: load plotly.js from this (relative) path instead of inlining it."""
        created = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        lib = (f'<script type="text/javascript" src="{html.escape(plotly_src)}"></script>' if plotly_src
               else plotly_js_script())
        return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
                f"<title>{html.escape(self.title)}</title><style>{STYLE}</style>"
                f"{lib}{TABLE_JS}{LAZY_JS}</head><body>"
                f"<h1>{html.escape(self.title)}</h1><p class=\"sub\">workbench report, {created}</p>"
                + self._toc() + "\n".join(self.parts) + "</body></html>\n")


def _fmt(v: Any, key: str | None = None) -> str:
    if v is None:
        return "-"
    if key in METRICS and isinstance(v, (int, float)) and not isinstance(v, bool):
        return METRICS[key].format(v)
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return str(v)


def _summary(rep: Report, run) -> None:
    rec = run.record
    items = summary_items(run)
    keys = ("started", "finished")
    rep.mapping(dict(items) | {k: rec.get(k) for k in keys if rec.get(k) is not None}
                | {"run directory": str(run.path)})


def _search_sections(rep: Report, run) -> None:
    candidates = sel.load_candidates(run.path)
    if candidates is not None:
        rep.heading("Selection")
        rep.text("Every candidate the latency table priced near the target, by its held-out mIoU after each rung "
                 "it reached (the best go on; the ringed one is kept). The held-out images are part of the "
                 "training split; the validation split is never seen.")
        rep.figure(sel.selection_figure(candidates), "selection")
        rep.table(sel.candidate_rows(candidates), csv_name="candidates")
        return
    if run.metrics:
        rep.heading("Search curves")
        rep.figure(ev.search_curves_figure(run.metrics), "search-curves")
    if run.alphas:
        rep.heading("Architecture convergence")
        rep.text("Every cell (rows) x edge (columns): the op that wins the edge (the one derivation picks), its "
                 "square's size its weight; drag the epoch slider to see how the choice settled. Hover tells since "
                 "which epoch an edge's op has been winning.")
        rep.figure(ev.convergence_animation(run.alphas), "convergence")
        rep.heading("Per-cell detail")
        rep.text("One collapsed section per cell: a heatmap of every edge x op (epoch slider, play button) and "
                 "every op's weight per epoch on one edge at a time (pick it in the menu). Figures are drawn when "
                 "a section is opened.")
        for cell in run.alphas[-1]["cells"]:
            rep.begin_section(f"cell {cell['index']} ({cell['kind']}, {len(cell['edges'])} edges)")
            rep.figure(ev.weight_heatmap_animation(run.alphas, cell["index"]), f"cell{cell['index']}-weights")
            rep.figure(ev.op_weight_edges_figure(run.alphas, cell["index"]), f"cell{cell['index']}-op-weights")
            rep.end_section()
        for title, fig in state_figures(run.alphas[-1], "last epoch"):
            rep.heading(f"{title} (last epoch)", 3)
            rep.figure(fig, slug(title))


def _architecture_sections(rep: Report, genotype: dict | None, title: str = "Derived architecture",
                           run=None) -> None:
    if not genotype:
        return
    rep.heading(title)
    lat = latency_text(run) if run is not None else (
        f"LUT {genotype['expected_latency_ms']:.2f} ms" if genotype.get("expected_latency_ms") is not None else "")
    rep.text(f"latency: {lat or 'none recorded'}; preset {genotype.get('preset')}; space {genotype.get('space', 'cells')}")
    for part, fig in architecture_figures(genotype):
        rep.figure(fig, f"architecture-{slug(part)}")


FRONTIER_COLUMNS = ["name", "kind", "preset", "latency_weight", "seed", "latency_ms", "expected_latency_ms", "miou",
                    "fps", "params_m", "gflops"]


def _frontier_sections(rep: Report, frontier: dict) -> None:
    rep.heading("Accuracy-latency frontier (measured here)")
    if not frontier["points"]:
        rep.text("no finished run has both a measured latency_ms and an miou yet")
    else:
        rep.figure(fr.frontier_figure(frontier), "frontier")
        rep.table(sorted(frontier["points"], key=lambda p: p["latency_ms"]), FRONTIER_COLUMNS,
                  csv_name=f"{rep.run_name}-frontier", sortable=True)
        rep.text("Pareto front: " + ", ".join(frontier.get("pareto", [])))
        if len(frontier["points"]) > 1:
            rep.heading("Sweep parameters")
            rep.text("Parallel coordinates: one line per point over the settings that differ between the points, "
                     "then mIoU, measured latency and the latency table's estimate; drag along an axis to filter.")
            rep.figure(cmp.parallel_figure(frontier["points"]), "parallel-coordinates")
    rep.heading("Published results (separate panel: other hardware)")
    rep.text(fr.PUBLISHED_NOTE)
    rep.figure(fr.published_figure(), "published")


def _video_sections(rep: Report, run, max_sequences: int = 3) -> None:
    results = run.record.get("methods_results") or {}
    if results:
        rep.heading("Methods", 3)
        rep.table([{"method": m, **{k: r.get(k) for k in ("jf", "j_mean", "f_mean", "fps")}}
                   for m, r in results.items()], ["method", "jf", "j_mean", "f_mean", "fps"],
                  csv_name=f"{rep.run_name}-methods")
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
            rep.figure(vid.video_animation_figure(video), f"{name}-frames")
            rep.figure(vid.jf_figure(video), f"{name}-j-and-f")
        if len(names) > max_sequences:
            rep.text(f"{len(names) - max_sequences} more sequences not shown")


def _run_report(rep: Report, path: Path) -> None:
    run = load_run(path)
    rep.run_name = slug(run.name)
    rep.heading("Summary")
    _summary(rep, run)
    if run.kind == "search":
        _search_sections(rep, run)
    elif run.metrics and any(m.get("phase") in ("train", "val") for m in run.metrics):
        rep.heading("Training curves")
        rep.figure(ev.training_curves_figure(run.metrics), "training-curves")
    if run.kind == "frontier":
        _frontier_sections(rep, fr.load_frontier(run.path))
    if run.kind == "vos_segment":
        _video_sections(rep, run)
    _architecture_sections(rep, run.genotype, run=run)
    if run.config:
        rep.heading("Configuration")
        rep.details(f"config.json ({len(run.config)} values)", run.config)


RUN_TABLE = ["run", "status", "kind", "preset", "latency_weight", "seed", "dataset", "miou", "search_miou",
             "latency_ms", "expected_ms", "noisy", "jf", "duration_s", "problem"]


def _folder_report(rep: Report, path: Path, out: Path, run_reports: dict[str, str]) -> None:
    from workbench.runs import list_runs

    rows = list_runs(path)
    rep.heading("Runs")
    rep.text("Click a header to sort, type to filter; a run's name opens its own report." if run_reports else
             "Click a header to sort, type to filter.")
    rep.table(rows, RUN_TABLE, csv_name=f"{rep.run_name}-runs", sortable=True, links=run_reports)
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
    rep = Report(f"{run_dir.name}" if not notebook_params else f"{target.stem}: {run_dir.name}", slug(run_dir.name))
    if notebook_params is not None:
        rep.heading("Notebook")
        rep.mapping({"notebook": str(target)} | notebook_params)
        for e in errors:
            rep.text(f"cell failed: {e.get('ename')}: {e.get('evalue')}")
    from workbench.jsonio import atomic_write_text

    out = Path(out)
    if (run_dir / "run_record.json").is_file():
        _run_report(rep, run_dir)
        atomic_write_text(out, rep.html())
    elif run_dir.is_dir() and any(run_dir.rglob("run_record.json")):
        write_folder_report(rep, run_dir, out)
    else:
        raise WorkbenchError(f"{run_dir}: no run_record.json here or below; nothing to report")
    return out


def files_folder(out: Path) -> Path:
    """Where a folder report keeps its per-run pages and plotly.js: `<index stem>_files` beside
    the index (as a browser's "save page, complete" does)."""
    return out.parent / f"{out.stem}_files"


def write_folder_report(rep: Report, folder: Path, out: Path) -> list[Path]:
    """The index page at `out` and a report per run in `<out stem>_files/<run path>/report.html`,
    all loading one plotly.js in that folder (PLOTLY_FILE). Nothing is written into the run
    directories (a run's own self-contained report.html stays as it was). Returns the per-run
    reports."""
    import os

    from plotly.offline import get_plotlyjs

    from workbench.jsonio import atomic_write_text
    from workbench.runs import iter_runs

    files = files_folder(out)
    lib = files / PLOTLY_FILE
    atomic_write_text(lib, get_plotlyjs())
    written, links = [], {}
    for run in iter_runs(folder):
        if files in run.path.parents:
            continue
        target = files / run.path.relative_to(folder) / "report.html"
        try:
            sub = Report(str(run.path.relative_to(folder)), slug(str(run.path.relative_to(folder))))
            _run_report(sub, run.path)
        except WorkbenchError as exc:  # one unreadable run: the index still lists it
            rep.text(f"{run.path}: no report ({exc})")
            continue
        atomic_write_text(target, sub.html(os.path.relpath(lib, target.parent)))
        written.append(target)
        links[str(run.path.relative_to(folder))] = os.path.relpath(target, out.parent)
    _folder_report(rep, folder, out, links)
    atomic_write_text(out, rep.html(os.path.relpath(lib, out.parent)))
    return written
