"""A panel's figures that survive a page reload, and their static copies.

A plotly FigureWidget sends every edit after its construction as a transient message, which a
reloaded page never sees: it restores the widget as it was *constructed*. So a figure here is
never edited in place: each update builds a new FigureWidget *with its data* and swaps it into its
Slot (an ipywidgets Box, whose children are synced state). A displayed Panel is followed by one
static output per figure (plotly's mime type and HTML with plotly.js inlined once), hidden by a
style rule while the live widget is on the page, shown where it is not (an executed notebook
without its kernel, nbconvert HTML).

plotly's FigureWidget is an anywidget that carries plotly's whole widget bundle (about 5 MB of
JavaScript) in its synced `_esm`. Six figures made a 30 MB reply to the page's "send me every
widget" request on reload, which JupyterLab gives up on after 4 s: the reloaded panel then showed
"model not found". A `Figure` here carries a few lines of ESM instead, and one `PlotlyBundle`
widget per kernel carries the bundle once and shares it on the page.
"""

from __future__ import annotations

import json
import logging
import uuid

import anywidget
import ipywidgets as W
import plotly
import plotly.graph_objects as go

from widgets.static import export_name, figure_config, notebook_bundle

log = logging.getLogger(__name__)

# hide the static copies that follow a live panel in the same JupyterLab output area
HIDE_STATIC = ("<style>.jp-OutputArea-child:has(.wb-panel) ~ .jp-OutputArea-child:has(.jp-RenderedPlotly),"
               " .jp-OutputArea-child:has(.wb-panel) ~ .jp-OutputArea-child:has(.wb-static)"
               " { display: none; }</style>")


# where the page keeps the import of plotly's widget bundle (one per plotly version)
BUNDLE_GLOBAL = f"__workbenchPlotlyWidget_{plotly.__version__.replace('.', '_')}"
# a figure waits this long for the bundle before it shows an error instead of a blank box
BUNDLE_WAIT_MS = 120_000


class PlotlyBundle(anywidget.AnyWidget):
    """Never displayed: its model, created on the page with the kernel's other widgets (also on a
    reload), imports plotly's widget bundle once and leaves the import where `Figure`s find it."""

    def __init__(self) -> None:
        text = str(go.FigureWidget._esm)  # anywidget has read plotly's bundle file into the class
        self._esm = (f"globalThis.{BUNDLE_GLOBAL} ??= import(URL.createObjectURL("
                     f"new Blob([{json.dumps(text)}], {{type: 'text/javascript'}})));\n"
                     "export default { initialize() {}, render() {} };\n")
        super().__init__()


class Figure(go.FigureWidget):
    """plotly's FigureWidget without its own copy of the bundle: its ESM waits for the one that
    `PlotlyBundle` imported and hands over to plotly's widget code."""

    _esm = ("export default async () => {\n"
            "  const start = Date.now();\n"
            f"  while (!globalThis.{BUNDLE_GLOBAL}) {{\n"
            f"    if (Date.now() - start > {BUNDLE_WAIT_MS}) throw new Error("
            "'workbench: plotly widget bundle not loaded (no PlotlyBundle widget on this page)');\n"
            "    await new Promise(resolve => setTimeout(resolve, 20));\n"
            "  }\n"
            f"  return (await globalThis.{BUNDLE_GLOBAL}).default();\n"
            "};\n")

    def __init__(self, *args, **kwargs) -> None:
        plotly_bundle()
        super().__init__(*args, **kwargs)


_bundle: PlotlyBundle | None = None


def plotly_bundle() -> PlotlyBundle:
    """The kernel's one bundle widget (made again if something closed it)."""
    global _bundle
    if _bundle is None or _bundle.comm is None:
        _bundle = PlotlyBundle()
    return _bundle


class Slot:
    """The place of one figure in a panel: a Box holding the current FigureWidget."""

    def __init__(self, name: str, run: str | None = None, fig: go.Figure | None = None,
                 on_click=None, click_traces: tuple[int, ...] = ()):
        self.name, self.run = name, run
        self.on_click, self.click_traces = on_click, click_traces
        self.box = W.Box(layout=W.Layout(min_width="0"))
        self.box.add_class("wb-figure")
        self.box._wb_slot = self
        self.figure = go.Figure()
        self.widget: Figure | None = None
        if fig is not None:
            self.show(fig)

    @property
    def filename(self) -> str:
        return export_name(self.run, self.name)

    def show(self, fig: go.Figure) -> Figure:
        """Replace the figure: a new FigureWidget constructed with `fig`'s data and layout."""
        self.figure = go.Figure(fig)
        widget = Figure(self.figure)
        widget._config = figure_config(self.filename)
        if self.on_click is not None:
            for i in self.click_traces:
                if i < len(widget.data):
                    widget.data[i].on_click(self.on_click)
        old, self.widget = self.box.children, widget
        self.box.children = (widget,)
        for w in old:
            w.close()
        return widget


def slots_of(widget: W.Widget) -> list[Slot]:
    """Every figure slot in a widget tree, in display order."""
    found = []
    slot = getattr(widget, "_wb_slot", None)
    if slot is not None:
        return [slot]
    for child in getattr(widget, "children", ()) or ():
        found += slots_of(child)
    return found


def _html_of(widget: W.Widget) -> str:
    """The text of the HTML widgets of a tree (the static copy of a panel's headers and notes)."""
    if isinstance(widget, W.HTML) and "<style>" not in widget.value:
        return widget.value
    return "".join(_html_of(c) for c in getattr(widget, "children", ()) or ())


class Panel(W.VBox):
    """A VBox with a short text form and static copies of its figures (see the module doc)."""

    run_name: str | None = None

    def __init__(self, children=(), **kwargs):
        super().__init__(list(children), **kwargs)
        self.add_class("wb-panel")
        self._static: list[tuple[Slot, object, bool, str]] = []

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"

    def slots(self) -> list[Slot]:
        return slots_of(self)

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is not None:
            bundle["text/html"] = f"<div class='wb-static-header'>{_html_of(self)}</div>"
        return bundle

    def _ipython_display_(self) -> None:
        from IPython.display import display

        if not any(isinstance(c, W.HTML) and c.value == HIDE_STATIC for c in self.children):
            self.children = (*self.children, W.HTML(HIDE_STATIC))
        display(self._repr_mimebundle_(), raw=True)
        self._static = []
        for k, slot in enumerate(self.slots()):
            div_id = f"wb-{uuid.uuid4().hex[:12]}"
            handle = display(notebook_bundle(slot.figure, div_id, slot.filename, with_plotlyjs=k == 0), raw=True,
                             display_id=True)
            self._static.append((slot, handle, k == 0, div_id))

    def update_static(self) -> None:
        """Bring the static copies up to date (a live panel calls this as epochs land, so a notebook
        saved later holds the latest figures)."""
        for slot, handle, first, div_id in self._static:
            try:
                handle.update(notebook_bundle(slot.figure, div_id, slot.filename, with_plotlyjs=first), raw=True)
            except Exception as exc:  # no kernel display hook (plain Python): nothing to update
                log.debug("static copy not updated: %s", exc)
