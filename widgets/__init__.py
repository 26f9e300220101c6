"""Views over run directories: plotly figure builders (pure functions) and thin ipywidgets panels.

Figure builders live in `cell_graph`, `evolution`, `frontier` and `video`; `panels` wraps them in
ipywidgets for JupyterLab (imported lazily so reports can use the figures without ipywidgets).
"""

from widgets.records import Run, load_run

__all__ = ["Run", "load_run", "show_run"]


def show_run(run_dir):
    """The interactive panel for a run directory (see `widgets.panels.show_run`)."""
    from widgets.panels import show_run as _show_run

    return _show_run(run_dir)
