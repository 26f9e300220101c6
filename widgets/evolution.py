"""Architecture-weight evolution: how each op's weight on each edge moves over the search epochs.

`weights` (the relaxed probabilities the search actually used) are plotted, not raw alphas.
The animated heatmap uses plotly's own frames and slider, so it works in an offline HTML report.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from widgets.records import alphas_at, cell_at, epochs


def edge_names(cell: dict) -> list[str]:
    return [f"{src}->{dst}" for src, dst in cell["edges"]]


def weight_matrix(alphas_record: dict, cell_index: int) -> np.ndarray:
    """[edges, ops] relaxed weights of one cell at one epoch."""
    return np.asarray(cell_at(alphas_record, cell_index)["weights"], dtype=float)


def op_weight_figure(alphas: list[dict], cell_index: int, edge_index: int) -> go.Figure:
    """Every op's weight on one edge across epochs (one line per op)."""
    cell = cell_at(alphas[-1], cell_index)
    xs = epochs(alphas)
    series = np.array([weight_matrix(rec, cell_index)[edge_index] for rec in alphas])
    fig = go.Figure()
    for k, op in enumerate(cell["ops"]):
        fig.add_trace(go.Scatter(x=xs, y=series[:, k], mode="lines+markers", name=op))
    fig.update_layout(title=f"cell {cell_index}, edge {edge_names(cell)[edge_index]}: op weights",
                      xaxis_title="epoch", xaxis_dtick=1, yaxis_title="weight", yaxis_range=[0, 1], height=340,
                      margin={"l": 50, "r": 10, "t": 40, "b": 40})
    return fig


def op_weight_edges_figure(alphas: list[dict], cell_index: int) -> go.Figure:
    """Op weights across epochs for every edge of a cell, one edge at a time via a dropdown
    (plotly's own updatemenus, so it works in a static report)."""
    cell = cell_at(alphas[-1], cell_index)
    names, ops = edge_names(cell), cell["ops"]
    fig = go.Figure()
    for e in range(len(names)):
        sub = op_weight_figure(alphas, cell_index, e)
        for trace in sub.data:
            trace.visible = e == 0
            trace.legendgroup = trace.name
            fig.add_trace(trace)
    buttons = []
    for e, name in enumerate(names):
        visible = [i // len(ops) == e for i in range(len(names) * len(ops))]
        buttons.append({"label": f"edge {name}", "method": "update",
                        "args": [{"visible": visible}, {"title": f"cell {cell_index}, edge {name}: op weights"}]})
    fig.update_layout(title=f"cell {cell_index}, edge {names[0]}: op weights", xaxis_title="epoch", xaxis_dtick=1,
                      yaxis_title="weight", yaxis_range=[0, 1], height=360,
                      margin={"l": 50, "r": 10, "t": 70, "b": 40},
                      updatemenus=[{"buttons": buttons, "x": 1.0, "xanchor": "right", "y": 1.18,
                                    "yanchor": "top", "direction": "down"}])
    return fig


def _zmax(alphas: list[dict], cell_index: int) -> float:
    """One colour scale for every epoch of a cell: 0 .. the largest weight it ever reaches, but at
    least twice the uniform weight, so that an undecided cell does not look decided."""
    n_ops = len(cell_at(alphas[-1], cell_index)["ops"])
    return float(max(min(1.0, 2.0 / n_ops), *(weight_matrix(rec, cell_index).max() for rec in alphas)))


def weight_heatmap_figure(alphas: list[dict], cell_index: int, epoch: int) -> go.Figure:
    """All edges x all ops of one cell at one epoch (colour scale fixed over the epochs)."""
    rec = alphas_at(alphas, epoch)
    cell = cell_at(rec, cell_index)
    fig = go.Figure(go.Heatmap(z=weight_matrix(rec, cell_index), x=cell["ops"], y=edge_names(cell),
                               zmin=0, zmax=_zmax(alphas, cell_index), colorscale="Viridis",
                               colorbar={"title": "weight"}))
    fig.update_layout(title=f"cell {cell_index} weights, epoch {epoch}", height=380,
                      xaxis_title="op", yaxis_title="edge", margin={"l": 60, "r": 10, "t": 40, "b": 60})
    return fig


def weight_heatmap_animation(alphas: list[dict], cell_index: int) -> go.Figure:
    """The heatmap with one plotly frame per epoch and an epoch slider (no kernel needed)."""
    xs = epochs(alphas)
    fig = weight_heatmap_figure(alphas, cell_index, xs[-1])
    fig.frames = [go.Frame(name=str(ep), data=[go.Heatmap(z=weight_matrix(alphas_at(alphas, ep), cell_index))],
                           layout={"title": {"text": f"cell {cell_index} weights, epoch {ep}"}}) for ep in xs]
    steps = [{"label": str(ep), "method": "animate",
              "args": [[str(ep)], {"mode": "immediate", "frame": {"duration": 0, "redraw": True},
                                   "transition": {"duration": 0}}]} for ep in xs]
    fig.update_layout(
        sliders=[{"active": len(xs) - 1, "currentvalue": {"prefix": "epoch "}, "pad": {"t": 50}, "steps": steps}],
        updatemenus=[{"type": "buttons", "showactive": False, "x": 0, "y": -0.35, "xanchor": "left",
                      "buttons": [{"label": "play", "method": "animate",
                                   "args": [None, {"frame": {"duration": 400, "redraw": True},
                                                   "fromcurrent": False}]}]}],
        height=480, margin={"l": 60, "r": 10, "t": 40, "b": 120})
    return fig


def search_curves_figure(metrics: list[dict]) -> go.Figure:
    """Search losses, validation mIoU and expected latency per epoch."""
    rows = [m for m in metrics if m.get("phase") == "search"]
    xs = [m["epoch"] for m in rows]
    fig = make_subplots(rows=1, cols=3, subplot_titles=("losses", "val mIoU", "expected latency (ms)"))
    for key, col in (("train_loss", 1), ("arch_loss", 1), ("val_miou", 2), ("expected_latency_ms", 3)):
        fig.add_trace(go.Scatter(x=xs, y=[m.get(key) for m in rows], mode="lines+markers", name=key), row=1, col=col)
    fig.update_xaxes(title_text="epoch", dtick=1)
    fig.update_yaxes(rangemode="tozero", row=1, col=2)
    fig.update_layout(height=320, margin={"l": 50, "r": 10, "t": 40, "b": 40})
    return fig


def training_curves_figure(metrics: list[dict]) -> go.Figure:
    """Retrain/VOS training loss and validation mIoU per epoch."""
    train = [m for m in metrics if m.get("phase") == "train"]
    val = [m for m in metrics if m.get("phase") == "val"]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("training loss", "validation"))
    loss_keys = [k for k in ("loss", "det_loss", "mask_loss", "reid_loss") if any(k in m for m in train)]
    for key in loss_keys:
        fig.add_trace(go.Scatter(x=[m["epoch"] for m in train], y=[m.get(key) for m in train],
                                 mode="lines+markers", name=key), row=1, col=1)
    for key in ("miou", "pixel_acc"):
        if any(key in m for m in val):
            fig.add_trace(go.Scatter(x=[m["epoch"] for m in val], y=[m.get(key) for m in val],
                                     mode="lines+markers", name=key), row=1, col=2)
    fig.update_xaxes(title_text="epoch")
    fig.update_layout(height=320, margin={"l": 50, "r": 10, "t": 40, "b": 40})
    return fig
