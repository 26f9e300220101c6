"""Views over run directories: plotly figure builders (pure functions) and thin ipywidgets panels.

Figure builders live in `cell_graph`, `evolution`, `frontier`, `compare` and `video`; `panels`
wraps them in ipywidgets for JupyterLab (imported lazily so reports can use the figures without
ipywidgets). Names and units of every number shown come from `workbench.names`.
"""

from widgets.records import Run, load_run

__all__ = ["Run", "compare_runs", "load_run", "show_run"]


def show_run(run_dir, live=None, interval=2.0):
    """The interactive panel for a run directory, live while it runs (see `widgets.panels.show_run`)."""
    from widgets.panels import show_run as _show_run

    return _show_run(run_dir, live=live, interval=interval)


def compare_runs(root):
    """Runs table, overlays and parallel coordinates of the runs under a folder (`widgets.panels`)."""
    from widgets.panels import compare_runs as _compare_runs

    return _compare_runs(root)
