"""Static renderings of plotly figures: HTML for reports and notebook fallbacks, export names.

Reports and the static copy that a notebook keeps beside each panel render figures with the same
`figure_html`. plotly.js is never fetched: it is inlined (once per page, or once per panel in a
notebook) or read from a file beside the page. Every figure downloads as PNG from the mode bar
and as SVG from an extra button, named after the run and the figure (`export_name`).
"""

from __future__ import annotations

import html
import json
import re

import plotly.graph_objects as go

PLOTLY_MIME = "application/vnd.plotly.v1+json"


def slug(text: str) -> str:
    """A file-name-safe form: letters, digits, '.', '_' and '-' ('lgcnet-lw0.5-s1/retrain' ->
    'lgcnet-lw0.5-s1_retrain')."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", str(text).replace("/", "_")).strip("._")
    return s or "figure"


def export_name(run: str | None, figure: str) -> str:
    """'<run>-<figure>': the file name (without extension) a figure downloads as."""
    return slug(f"{run}-{figure}" if run else figure)


def figure_config(filename: str) -> dict:
    """plotly config: the PNG button of the mode bar downloads `filename.png` at twice the size."""
    return {"displaylogo": False, "responsive": True,
            "toImageButtonOptions": {"format": "png", "filename": filename, "scale": 2}}


def _script_safe(text: str) -> str:
    """JSON text safe to put inside a <script> element."""
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def figure_json(fig: go.Figure) -> str:
    import plotly.io as pio

    return pio.to_json(fig, validate=False, remove_uids=True)


def plotly_js_script() -> str:
    """plotly.js inline, always as `window.Plotly` (also where a page loads require.js: its
    `define` is hidden from the library, so the bundle does not register as an AMD module)."""
    from plotly.offline import get_plotlyjs

    return ("<script type=\"text/javascript\">if (!window.Plotly) { (function (define, module, exports) {\n"
            + get_plotlyjs() + "\n}).call(window); }</script>")


SVG_BUTTON = ("{name: 'Download plot as SVG', icon: Plotly.Icons['camera-retro'] || Plotly.Icons.camera, "
              "click: function (gd) { Plotly.downloadImage(gd, {format: 'svg', filename: FILENAME}); }}")


def figure_script(fig: go.Figure, div_id: str, filename: str) -> str:
    """JavaScript drawing `fig` into the element `div_id` (frames included, PNG and SVG export)."""
    svg = SVG_BUTTON.replace("FILENAME", json.dumps(filename))
    return ("(function () { var gd = document.getElementById(" + json.dumps(div_id) + ");"
            " if (!gd || !window.Plotly) return; var fig = " + _script_safe(figure_json(fig)) + ";"
            " var config = " + json.dumps(figure_config(filename)) + "; config.modeBarButtonsToAdd = [" + svg + "];"
            " Plotly.newPlot(gd, {data: fig.data, layout: fig.layout, frames: fig.frames || [], config: config});"
            " })();")


def figure_html(fig: go.Figure, div_id: str, filename: str, lazy: bool = False) -> str:
    """A div and the script that draws the figure into it. lazy: the script is kept in a
    `<script type="text/plotly-lazy">` and run by `LAZY_JS` when its <details> is first opened
    (a plot drawn inside a closed <details> would get no width, and a report with sixty figures
    opens faster when it draws only what is shown)."""
    script = figure_script(fig, div_id, filename)
    height = fig.layout.height or 450
    div = f'<div id="{html.escape(div_id)}" class="plotly-graph-div" style="height:{int(height)}px; width:100%;"></div>'
    kind = "text/plotly-lazy" if lazy else "text/javascript"
    return f'{div}<script type="{kind}">{script}</script>'


LAZY_JS = """<script type="text/javascript">
document.addEventListener('toggle', function (e) {
  var d = e.target; if (!d.open || d.dataset.drawn) return; d.dataset.drawn = '1';
  d.querySelectorAll('script[type="text/plotly-lazy"]').forEach(function (s) { (new Function(s.textContent))(); });
}, true);
</script>"""


def notebook_bundle(fig: go.Figure, div_id: str, filename: str, with_plotlyjs: bool) -> dict:
    """The static copy of one figure for a notebook output: plotly's own mime type (JupyterLab
    draws it without a kernel, even in an untrusted notebook) and HTML (nbconvert, other
    front ends; plotly.js inlined when `with_plotlyjs`, so the HTML works offline)."""
    data = json.loads(figure_json(fig))
    data["config"] = figure_config(filename)
    body = figure_html(fig, div_id, filename)
    title = fig.layout.title.text if fig.layout.title and fig.layout.title.text else filename
    return {PLOTLY_MIME: data,
            "text/html": f'<div class="wb-static">{plotly_js_script() if with_plotlyjs else ""}{body}</div>',
            "text/plain": f"<figure: {title}>"}
