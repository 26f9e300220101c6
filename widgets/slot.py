"""A panel's figures that survive a page reload, and their static copies.

A plotly FigureWidget sends every edit after its construction as a transient message, which a
reloaded page never sees: it restores the widget as it was *constructed*. So a figure here is
never edited in place: each update builds a new FigureWidget *with its data* and swaps it into its
Slot (an ipywidgets Box, whose children are synced state). A displayed Panel is followed by one
static output per figure (plotly's mime type and HTML with plotly.js inlined once), hidden by a
style rule while the live widget is on the page, shown where it is not (an executed notebook
without its kernel, nbconvert HTML).
"""

from __future__ import annotations

import logging
import uuid

import ipywidgets as W
import plotly.graph_objects as go

from widgets.static import export_name, figure_config, notebook_bundle

log = logging.getLogger(__name__)

# hide the static copies that follow a live panel in the same JupyterLab output area
HIDE_STATIC = ("<style>.jp-OutputArea-child:has(.wb-panel) ~ .jp-OutputArea-child:has(.jp-RenderedPlotly),"
               " .jp-OutputArea-child:has(.wb-panel) ~ .jp-OutputArea-child:has(.wb-static)"
               " { display: none; }</style>")


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
        self.widget: go.FigureWidget | None = None
        if fig is not None:
            self.show(fig)

    @property
    def filename(self) -> str:
        return export_name(self.run, self.name)

    def show(self, fig: go.Figure) -> go.FigureWidget:
        """Replace the figure: a new FigureWidget constructed with `fig`'s data and layout."""
        self.figure = go.Figure(fig)
        widget = go.FigureWidget(self.figure)
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
