"""Offline HTML reports: structure, and a real headless Chromium opening them with the network blocked."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from fixtures_runs import make_davis, make_search_run, make_sweep, make_vos_run
from offline_browser import CHROMIUM, CHROMIUM_ARGS, offline_page

from widgets.report import build_report
from workbench import cli
from workbench.errors import WorkbenchError
from workbench.frontier import run_frontier


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    base = tmp_path_factory.mktemp("report")
    search = make_search_run(base / "search", preset="autortnet", epochs=3)
    make_sweep(base / "sweep")
    run_frontier({"roots": [str(base / "sweep")]}, base / "sweep" / "frontier")
    vos = make_vos_run(base / "vos", make_davis(base / "davis"))
    return {"search": build_report(search.path), "frontier": build_report(base / "sweep" / "frontier"),
            "folder": build_report(base / "sweep", base / "sweep.html"), "vos": build_report(vos.path)}


def test_report_is_self_contained(reports):
    from plotly.offline import get_plotlyjs

    plotly_js = get_plotlyjs()
    for name, path in reports.items():
        full = path.read_text()
        if name == "folder":  # the index and the runs' reports share one plotly.js beside the index
            files = path.parent / "sweep_files"
            assert plotly_js not in full and (files / "plotly.min.js").read_text() == plotly_js
            assert '<script type="text/javascript" src="sweep_files/plotly.min.js"></script>' in full
            run_report = files / "b" / "retrain" / "report.html"
            assert plotly_js not in run_report.read_text()
            assert 'src="../../plotly.min.js"' in run_report.read_text()
            assert 'href="sweep_files/b/retrain/report.html"' in full  # the runs table links each run's report
            # nothing written into the runs: the frontier run's own self-contained report is kept
            assert not (path.parent / "sweep" / "b" / "retrain" / "report.html").exists()
            text = full.replace('<script type="text/javascript" src="sweep_files/plotly.min.js"></script>',
                                "<script></script>")
        else:
            assert full.count(plotly_js) == 1, name  # plotly.js inlined exactly once
            text = full.replace(plotly_js, "")  # (the library itself mentions its CDN for optional assets)
        # plotly.js, the table and lazy-drawing helpers, then one script per figure
        assert text.count("<script") == text.count("Plotly.newPlot(") + 3, name
        assert "<script src" not in text and "cdn.plot.ly" not in text, name
        assert not re.search(r"""(src|href)=["']https?://""", text), name
        assert "application/vnd.jupyter.widget" not in text and "In [" not in text, name
    search = reports["search"].read_text()
    # 5 alpha groups (3 cells + fusion + aggregation) x (animated heatmap + edge menu) + curves + convergence
    # + trellis + 5 architecture parts (3 cells, the aggregation cell, the trellis path)
    assert search.count('class="figure"') == 5 * 2 + 1 + 1 + 1 + 5
    assert search.count('<details class="cell">') == 5 and search.count('<script type="text/plotly-lazy"') == 5 * 2
    assert '<nav class="toc">' in search and 'href="#' in search
    assert search.count('"frames"') >= 5 or search.count("Plotly.addFrames") >= 5
    assert "Published results" in reports["frontier"].read_text() and "Titan Xp" in reports["frontier"].read_text()
    assert "b/retrain" in reports["folder"].read_text()


def test_report_cli_and_errors(tmp_path, capsys):
    run = make_search_run(tmp_path / "s", epochs=2)
    assert cli.main(["report", str(run.path), "-o", str(tmp_path / "r.html")]) == 0
    assert (tmp_path / "r.html").stat().st_size > 1_000_000  # plotly.js is in the file
    assert "report:" in capsys.readouterr().out
    (tmp_path / "empty").mkdir()
    with pytest.raises(WorkbenchError, match="nothing to report"):
        build_report(tmp_path / "empty")
    assert cli.main(["report", str(tmp_path / "missing")]) == 2


def test_report_of_executed_notebook(tmp_path):
    """A notebook's report shows its papermill parameters, then the run directory it wrote."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    run = make_search_run(tmp_path / "run", epochs=2)
    nb = new_notebook(cells=[new_code_cell("x = 1")])
    nb.metadata["papermill"] = {"parameters": {"output_dir": str(run.path), "epochs": 2}}
    path = tmp_path / "search.ipynb"
    nbformat.write(nb, path)
    out = build_report(path)
    assert out == tmp_path / "search.html"
    text = out.read_text()
    assert "Notebook" in text and "epochs" in text and "Architecture convergence" in text and "Per-cell detail" in text
    assert "x = 1" not in text  # inputs hidden


def _chromium_or_skip() -> None:
    if not Path(CHROMIUM).exists() or not shutil.which(CHROMIUM):
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is required in CI (.ci/run installs it)")
        pytest.skip("chromium not installed (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")


@pytest.mark.browser
def test_report_renders_offline_in_chromium(reports):
    _chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page, external, errors = offline_page(browser, 1280, 900, console_errors=True)
            for name, path in reports.items():
                page.goto(path.as_uri())
                shown = page.evaluate("Array.from(document.querySelectorAll('.figure'))"
                                      ".filter(f => !f.closest('details')).length")
                expected = page.evaluate("document.querySelectorAll('.figure').length")
                page.wait_for_function(
                    f"document.querySelectorAll('.js-plotly-plot svg.main-svg').length >= {shown}", timeout=30000)
                # collapsed per-cell sections draw their figures when opened
                page.evaluate("document.querySelectorAll('details.cell').forEach(d => { d.open = true; })")
                page.wait_for_function(
                    f"document.querySelectorAll('.js-plotly-plot svg.main-svg').length >= {expected}", timeout=30000)
                rendered = page.evaluate("Array.from(document.querySelectorAll('.js-plotly-plot'))"
                                         ".filter(d => d.querySelectorAll('svg.main-svg *').length > 20).length")
                assert rendered == expected > 0, name
                body = page.inner_text("body")
                for bad in ("Error displaying widget", "Traceback", "Exception", "Loading widget", "NameError"):
                    assert bad not in body, (name, bad)
                if name == "search":
                    _drag_epoch_slider(page)
            assert not errors, errors
            assert not external, external
        finally:
            browser.close()


def _drag_epoch_slider(page) -> None:
    """Click the start of the first heatmap's epoch slider: the plotted weights must change."""
    read = ("Array.from(document.getElementById('figure-3').calcdata[0][0].z)"
            ".map(r => Array.from(r).join(',')).join(';')")
    before = page.evaluate(read)
    rail = page.locator("#figure-3 .slider-rail-rect").first
    rail.scroll_into_view_if_needed()
    box = rail.bounding_box()
    page.mouse.click(box["x"] + 2, box["y"] + box["height"] / 2)
    page.wait_for_function(f"{read} !== {before!r}", timeout=10000)
    label = page.text_content("#figure-3 .slider-container .slider-label") or ""
    assert label.strip().endswith("-1")  # the initial state (epoch -1) is shown
