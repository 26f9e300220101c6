"""Architecture-weight evolution: how each op's weight on each edge moves over the search epochs.

`weights` (the relaxed probabilities the search actually used) are plotted, not raw alphas.
The animated heatmap uses plotly's own frames and slider, so it works in an offline HTML report.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from widgets.records import alphas_at, cell_at, cell_label, epochs
from workbench.names import metric, title


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
    colors = op_colors(cell["ops"])
    for k, op in enumerate(cell["ops"]):
        fig.add_trace(go.Scatter(x=xs, y=series[:, k], mode="lines+markers", name=op, line={"color": colors[op]},
                                 hovertemplate=f"{op}<br>epoch %{{x}}<br>weight %{{y:.3f}}<extra></extra>"))
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
                               colorbar={"title": "weight"},
                               hovertemplate="op %{x}<br>edge %{y}<br>weight %{z:.3f}<extra></extra>"))
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
    fig = make_subplots(rows=1, cols=3, subplot_titles=("losses", title("val_miou"), title("expected_latency_ms")))
    for key, col in (("train_loss", 1), ("arch_loss", 1), ("val_miou", 2), ("expected_latency_ms", 3)):
        m = metric(key)
        fig.add_trace(go.Scatter(x=xs, y=[m.value(r.get(key)) for r in rows], mode="lines+markers", name=m.label,
                                 hovertemplate=f"{m.label}<br>epoch %{{x}}<br>%{{y:.{m.digits}f}} {m.unit}<extra></extra>"),
                      row=1, col=col)
    fig.update_xaxes(title_text="epoch", dtick=1)
    fig.update_yaxes(rangemode="tozero", row=1, col=2)
    fig.update_layout(height=320, margin={"l": 50, "r": 10, "t": 40, "b": 40})
    return fig


def training_curves_figure(metrics: list[dict]) -> go.Figure:
    """Retrain/VOS training loss and validation mIoU per epoch."""
    train = [m for m in metrics if m.get("phase") == "train"]
    val = [m for m in metrics if m.get("phase") == "val"]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("training loss", "validation (%)"))
    loss_keys = [k for k in ("loss", "det_loss", "mask_loss", "reid_loss") if any(k in m for m in train)]
    for key in loss_keys:
        fig.add_trace(go.Scatter(x=[m["epoch"] for m in train], y=[m.get(key) for m in train],
                                 mode="lines+markers", name=metric(key).label), row=1, col=1)
    for key in ("miou", "pixel_acc"):
        if any(key in m for m in val):
            fig.add_trace(go.Scatter(x=[m["epoch"] for m in val], y=[metric(key).value(m.get(key)) for m in val],
                                     mode="lines+markers", name=metric(key).label), row=1, col=2)
    fig.update_xaxes(title_text="epoch")
    fig.update_layout(height=320, margin={"l": 50, "r": 10, "t": 40, "b": 40})
    return fig


# -- architecture convergence at a glance ---------------------------------------------------------
OP_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
             "#17becf"]


def op_colors(ops: list[str]) -> dict[str, str]:
    """One colour per op, in the order of the search space's op list (the same in every figure)."""
    return {op: OP_COLORS[k % len(OP_COLORS)] for k, op in enumerate(ops)}


def winners(alphas: list[dict]) -> list[dict]:
    """Per epoch, per cell, per edge: the op derivation would label the edge with (strongest
    non-`none` op) and its weight. [{epoch, cells: [{index, label, edges, ops, op: [...], weight: [...]}]}]"""
    from workbench.nas.darts import strongest_ops

    out = []
    for rec in alphas:
        cells = []
        for cell in rec["cells"]:
            best_w, best_op = strongest_ops(cell["weights"], cell["ops"])
            cells.append({"index": cell["index"], "label": cell_label(cell), "edges": edge_names(cell),
                          "ops": cell["ops"], "op": [cell["ops"][int(k)] for k in best_op],
                          "weight": [float(w) for w in best_w]})
        out.append({"epoch": rec["epoch"], "cells": cells})
    return out


def _settled(history: list[dict], cell_pos: int, edge: int, upto: int) -> int:
    """The first epoch since which the edge's winning op has not changed (up to history[upto])."""
    op = history[upto]["cells"][cell_pos]["op"][edge]
    k = upto
    while k > 0 and history[k - 1]["cells"][cell_pos]["op"][edge] == op:
        k -= 1
    return history[k]["epoch"]


def _convergence_traces(history: list[dict], upto: int, colors: dict[str, str]) -> list[go.Scatter]:
    rec = history[upto]
    # one trace per op derivation can pick ('none' never labels an edge), so frames share the legend
    by_op: dict[str, dict[str, list]] = {op: {"x": [], "y": [], "size": [], "text": []} for op in colors
                                         if op != "none"}
    for c, cell in enumerate(rec["cells"]):
        for e, (edge, op, w) in enumerate(zip(cell["edges"], cell["op"], cell["weight"])):
            d = by_op.setdefault(op, {"x": [], "y": [], "size": [], "text": []})
            d["x"].append(e)
            d["y"].append(cell["label"])
            d["size"].append(8 + 26 * min(1.0, w))
            d["text"].append(f"{cell['label']}<br>edge {edge}<br>op {op}<br>weight {w:.3f}<br>"
                             f"winning since epoch {_settled(history, c, e, upto)}")
    return [go.Scatter(x=d["x"], y=d["y"], mode="markers", name=op, text=d["text"], hoverinfo="text",
                       marker={"symbol": "square", "size": d["size"], "color": colors.get(op, "#444"),
                               "line": {"width": 0.5, "color": "#333"}})
            for op, d in by_op.items()]


def convergence_figure(alphas: list[dict], epoch: int | None = None) -> go.Figure:
    """Every cell (rows) x edge (columns) at one epoch: a square in the colour of the op that wins
    the edge (what derivation would pick), its size the op's weight; hover tells since which epoch
    the op has been winning. One trace per op, so the legend is the colour key."""
    history = winners(alphas)
    upto = len(history) - 1 if epoch is None else [h["epoch"] for h in history].index(epoch)
    colors = op_colors(alphas[-1]["cells"][0]["ops"])
    fig = go.Figure(_convergence_traces(history, upto, colors))
    n_edges = max(len(c["edges"]) for c in history[upto]["cells"])
    changed = sum(_settled(history, c, e, upto) == history[upto]["epoch"] and upto > 0
                  for c, cell in enumerate(history[upto]["cells"]) for e in range(len(cell["edges"])))
    fig.update_layout(
        title=f"winning op per edge, epoch {history[upto]['epoch']}"
              + (f" ({changed} edges changed op this epoch)" if upto > 0 else ""),
        xaxis={"title": "edge (index in the cell)", "dtick": 1, "range": [-0.6, n_edges - 0.4]},
        yaxis={"title": "", "autorange": "reversed", "type": "category", "categoryorder": "array",
               "categoryarray": [c["label"] for c in history[upto]["cells"]]},
        height=120 + 42 * len(history[upto]["cells"]), plot_bgcolor="white",
        margin={"l": 200, "r": 10, "t": 50, "b": 40}, legend={"title": {"text": "op (size = weight)"}})
    return fig


def convergence_animation(alphas: list[dict]) -> go.Figure:
    """`convergence_figure` with one plotly frame per epoch and an epoch slider (for reports)."""
    history = winners(alphas)
    colors = op_colors(alphas[-1]["cells"][0]["ops"])
    fig = convergence_figure(alphas)
    names = [t.name for t in fig.data]
    frames = []
    for k, h in enumerate(history):
        traces = {t.name: t for t in _convergence_traces(history, k, colors)}
        data = [traces.get(n) or go.Scatter(x=[], y=[], name=n) for n in names]
        frames.append(go.Frame(name=str(h["epoch"]), data=data, layout={"title": {"text": f"winning op per edge, "
                                                                               f"epoch {h['epoch']}"}}))
    fig.frames = frames
    fig.update_layout(sliders=[{"active": len(history) - 1, "currentvalue": {"prefix": "epoch "}, "pad": {"t": 40},
                                "steps": [{"label": str(h["epoch"]), "method": "animate",
                                           "args": [[str(h["epoch"])], {"mode": "immediate", "frame": {
                                               "duration": 0, "redraw": True}, "transition": {"duration": 0}}]}
                                          for h in history]}])
    fig.update_layout(height=fig.layout.height + 90, margin={"b": 110})
    return fig


def overlay_metric_figure(runs: list, key: str, phase: str | None = None) -> go.Figure:
    """One metric of metrics.jsonl per epoch, one line per run (runs: widgets.records.Run)."""
    m = metric(key)
    fig = go.Figure()
    for run in runs:
        rows = [r for r in run.metrics if key in r and (phase is None or r.get("phase") == phase)]
        if rows:
            fig.add_trace(go.Scatter(x=[r.get("epoch") for r in rows], y=[m.value(r[key]) for r in rows],
                                     mode="lines+markers", name=run.name,
                                     hovertemplate=f"{run.name}<br>epoch %{{x}}<br>{m.label} %{{y:.{m.digits}f}} "
                                                   f"{m.unit}<extra></extra>"))
    fig.update_layout(title=f"{m.label} per epoch", xaxis_title="epoch", yaxis_title=m.title, height=360,
                      margin={"l": 60, "r": 10, "t": 40, "b": 40})
    return fig


def overlay_edge_figure(runs: list, cell_index: int, edge_index: int) -> go.Figure:
    """Every op's weight on one edge of one cell across epochs, for several search runs: one
    colour per op, one dash style per run."""
    dashes = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"]
    fig = go.Figure()
    for r, run in enumerate(runs):
        if not run.alphas:
            continue
        try:
            cell = cell_at(run.alphas[-1], cell_index)
        except KeyError:
            continue
        if edge_index >= len(cell["edges"]):
            continue
        colors = op_colors(cell["ops"])
        xs = epochs(run.alphas)
        series = np.array([weight_matrix(rec, cell_index)[edge_index] for rec in run.alphas])
        for k, op in enumerate(cell["ops"]):
            fig.add_trace(go.Scatter(x=xs, y=series[:, k], mode="lines", name=f"{run.name}: {op}",
                                     legendgroup=run.name, line={"color": colors[op], "dash": dashes[r % len(dashes)]},
                                     hovertemplate=f"{run.name}<br>{op}<br>epoch %{{x}}<br>weight %{{y:.3f}}"
                                                   "<extra></extra>"))
    fig.update_layout(title=f"cell {cell_index}, edge {edge_index}: op weights across runs", xaxis_title="epoch",
                      yaxis_title="weight", yaxis_range=[0, 1], height=380, margin={"l": 50, "r": 10, "t": 40, "b": 40})
    return fig
