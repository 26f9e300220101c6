"""Cell graphs: a searched or derived cell as a networkx DAG, drawn with plotly.

Layout: topological generations left to right, so the inputs sit on the left and the cell output
on the right. Edge width and opacity follow the architecture weight; the label is the op.
Also AutoRTNet's decoded path over the layers x scales trellis.
"""

from __future__ import annotations

import math

import networkx as nx
import plotly.graph_objects as go

from workbench.nas.darts import strongest_ops

OUT = "out"


def _input_count(cell: dict, edges: list[tuple[int, int]]) -> int:
    if cell.get("inputs") is not None:  # genotype multi-input cells, and alphas records since 0.2
        return len(cell["inputs"]) if cell.get("kind") not in ("normal", "reduction") else 2
    if cell.get("kind") in ("normal", "reduction"):
        return 2
    targets = {dst for _, dst in edges}  # an alphas record of 0.1: the first intermediate node
    return min(targets) if targets else 0


def _input_label(cell: dict, i: int) -> str:
    if cell.get("kind") in ("normal", "reduction"):
        return ["c(k-2)", "c(k-1)"][i] if i < 2 else f"in {i}"
    inputs = cell.get("inputs")
    if inputs is not None and i < len(inputs):
        return "stem" if inputs[i] == -1 else f"cell {inputs[i]}"
    return f"in {i}"


def cell_graph(cell: dict) -> nx.DiGraph:
    """DAG of a cell from an alphas.jsonl cell (edges + per-op weights) or a genotype cell.

    Each edge carries `op` (strongest non-'none' op, or the derived op), `weight` in [0, 1] and
    `weights` (every op's weight, alphas cells only). Concatenated nodes feed the node 'out'.
    """
    g = nx.DiGraph()
    raw = cell["edges"]
    if raw and isinstance(raw[0], dict):  # genotype cell
        pairs = [(e["from"], e["to"]) for e in raw]
        attrs = [{"op": e["op"], "weight": float(e.get("weight", 1.0)), "weights": None} for e in raw]
    else:  # alphas record: every candidate edge with every op's weight; the label is what derivation picks
        pairs = [tuple(e) for e in raw]
        ops = cell["ops"]
        best_w, best_op = strongest_ops(cell["weights"], ops)
        attrs = [{"op": ops[int(k)], "weight": float(bw), "weights": dict(zip(ops, map(float, w)))}
                 for bw, k, w in zip(best_w, best_op, cell["weights"])]
    n_inputs = _input_count(cell, pairs)
    for i in range(n_inputs):
        g.add_node(i, label=_input_label(cell, i), role="input")
    for (src, dst), attr in zip(pairs, attrs):
        for node in (src, dst):
            if node not in g:
                g.add_node(node, label=str(node), role="node")
        g.add_edge(src, dst, **attr)
    concat = cell.get("concat") or sorted(n for n in g if g.nodes[n]["role"] == "node")
    g.add_node(OUT, label="out", role="output")
    for node in concat:
        if node in g:
            g.add_edge(node, OUT, op="concat", weight=1.0, weights=None)
    return g


def layout(g: nx.DiGraph) -> dict:
    """x = topological generation (inputs left, output right), y spread evenly within a generation;
    lone intermediate nodes zig-zag so that an edge skipping a node does not run through it."""
    pos = {}
    generations = list(nx.topological_generations(g))
    for x, generation in enumerate(generations):
        nodes = sorted(generation, key=lambda n: (isinstance(n, str), n))
        for k, node in enumerate(nodes):
            y = (len(nodes) - 1) / 2.0 - k
            if len(nodes) == 1 and g.nodes[node].get("role") == "node":
                y = 0.3 if x % 2 else -0.3
            pos[node] = (float(x), y)
    return pos


LABEL_SPOTS = (0.5, 0.35, 0.65, 0.25, 0.75, 0.42, 0.58)
LABEL_GAP = (0.55, 0.16)  # a label is about this wide and tall, in layout units (x: one generation)


def label_position(p0: tuple[float, float], p1: tuple[float, float],
                   placed: list[tuple[float, float]]) -> tuple[float, float]:
    """Where along the edge p0->p1 its op label goes: the midpoint, unless a label already sits
    there (crossing edges share a midpoint); then the spot along the edge farthest from the labels
    placed so far, measured in label sizes."""
    def clearance(t: float) -> float:
        x, y = p0[0] + t * (p1[0] - p0[0]), p0[1] + t * (p1[1] - p0[1])
        return min((max(abs(x - px) / LABEL_GAP[0], abs(y - py) / LABEL_GAP[1]) for px, py in placed),
                   default=float("inf"))

    best = next((t for t in LABEL_SPOTS if clearance(t) >= 1.0), None)
    if best is None:
        best = max(LABEL_SPOTS, key=clearance)
    return p0[0] + best * (p1[0] - p0[0]), p0[1] + best * (p1[1] - p0[1])


def cell_graph_figure(cell: dict, title: str | None = None, height: int = 360) -> go.Figure:
    """Plotly figure of one cell: one line trace per edge (width/opacity = weight) + op labels."""
    g = cell_graph(cell)
    pos = layout(g)
    fig = go.Figure()
    mids_x, mids_y, mids_text, mids_hover, notes = [], [], [], [], []
    for src, dst, data in g.edges(data=True):
        (x0, y0), (x1, y1) = pos[src], pos[dst]
        w = data["weight"]
        concat = data["op"] == "concat"
        fig.add_trace(go.Scatter(
            x=[x0, x1], y=[y0, y1], mode="lines", showlegend=False, hoverinfo="skip",
            name=f"{src}->{dst}", opacity=0.35 if concat else 0.3 + 0.7 * w,
            line={"width": 1.5 if concat else 1.5 + 6 * w, "color": "#999" if concat else "#1f77b4",
                  "dash": "dot" if concat else "solid"}))
        if not concat:
            mx, my = label_position((x0, y0), (x1, y1), list(zip(mids_x, mids_y)))
            mids_x.append(mx)
            mids_y.append(my)
            mids_text.append(data["op"])
            detail = ("<br>".join(f"{op}: {v:.3f}" for op, v in data["weights"].items())
                      if data["weights"] else data["op"])
            mids_hover.append(f"edge {src}->{dst}<br>{detail}")
            notes.append({"x": mx, "y": my, "text": data["op"], "showarrow": False, "font": {"size": 10},
                          "bgcolor": "rgba(255,255,255,0.85)", "borderpad": 1})
    # invisible markers at the labels carry the hover text (all op weights of the edge)
    fig.add_trace(go.Scatter(x=mids_x, y=mids_y, mode="markers", text=mids_text, hovertext=mids_hover,
                             hoverinfo="text", marker={"size": 14, "opacity": 0}, showlegend=False, name="ops"))
    nodes = list(g.nodes)
    colors = {"input": "#9fd89f", "node": "#ffffff", "output": "#f4a3a3"}
    fig.add_trace(go.Scatter(
        x=[pos[n][0] for n in nodes], y=[pos[n][1] for n in nodes], mode="markers+text",
        text=[g.nodes[n]["label"] for n in nodes], textposition="middle center", hoverinfo="text",
        marker={"size": 44, "color": [colors[g.nodes[n]["role"]] for n in nodes],
                "line": {"width": 1.5, "color": "#333"}},
        textfont={"size": 10}, showlegend=False, name="nodes"))
    fig.update_layout(title=title or f"cell {cell.get('index', '')} ({cell.get('kind', '')})",
                      height=height, margin={"l": 10, "r": 10, "t": 40, "b": 10}, annotations=notes,
                      xaxis={"visible": False, "range": [-0.4, max(x for x, _ in pos.values()) + 0.4]},
                      yaxis={"visible": False}, plot_bgcolor="white")
    return fig


def trellis_figure(path: list[dict] | None, scales: list[int], weights: list[list[float]] | None = None,
                   choices: list[str] | None = None, title: str = "AutoRTNet path over layers x scales") -> go.Figure:
    """The layers x scales trellis with the decoded path (an AutoRTNet genotype's "trellis") and, if
    given, the per-layer keep/down/prune probabilities (its alphas' space state) as alternative
    edges from the path."""
    layers = len(path) if path else len(weights or [])
    ys = {s: -math.log2(s) for s in scales}
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=[x for x in range(layers + 1) for _ in scales], y=[ys[s] for _ in range(layers + 1) for s in scales],
        mode="markers", marker={"size": 9, "color": "#ddd", "line": {"width": 1, "color": "#aaa"}},
        hoverinfo="skip", showlegend=False, name="trellis"))
    if path is None and weights is not None:  # decode greedily from the probabilities
        choices = choices or ["keep", "down", "prune"]
        stride, path = scales[0], []
        for layer, w in enumerate(weights):
            choice = choices[max(range(len(w)), key=lambda k: w[k])]
            if choice == "down" and stride != scales[-1]:
                stride = scales[scales.index(stride) + 1]
            path.append({"layer": layer, "choice": choice, "stride": stride})
    stride = scales[0]
    for step in path or []:
        x0, x1 = step["layer"], step["layer"] + 1
        if weights is not None:
            w = dict(zip(choices or ["keep", "down", "prune"], weights[step["layer"]]))
            nxt = scales[min(scales.index(stride) + 1, len(scales) - 1)]
            for choice, target in (("keep", stride), ("down", nxt)):
                p = w.get(choice, 0.0)
                fig.add_trace(go.Scatter(x=[x0, x1], y=[ys[stride], ys[target]], mode="lines",
                                         line={"width": 1 + 8 * p, "color": "#ff7f0e"}, opacity=0.25 + 0.5 * p,
                                         hoverinfo="text", text=f"layer {x0} {choice}: {p:.3f}",
                                         showlegend=False, name=f"{choice} {x0}"))
        dash = "dot" if step["choice"] == "prune" else "solid"
        fig.add_trace(go.Scatter(x=[x0, x1], y=[ys[stride], ys[step["stride"]]], mode="lines+markers",
                                 line={"width": 4, "color": "#1f77b4", "dash": dash},
                                 marker={"size": 11, "symbol": "x" if step["choice"] == "prune" else "circle"},
                                 hoverinfo="text", text=f"layer {x0}: {step['choice']} -> 1/{step['stride']}",
                                 showlegend=False, name=f"path {x0}"))
        stride = step["stride"]
    fig.update_layout(title=title, height=320, margin={"l": 50, "r": 10, "t": 40, "b": 40}, plot_bgcolor="white",
                      xaxis={"title": "layer", "dtick": 1},
                      yaxis={"title": "scale", "tickvals": [ys[s] for s in scales],
                             "ticktext": [f"1/{s}" for s in scales]})
    return fig
