"""Accuracy-latency frontier figures.

Our runs are plotted on measured axes (latency in ms on this machine, mIoU on our data). The seed
papers' published numbers were measured on a Titan Xp on Cityscapes: they get their own panel
with FPS on the axis, never a point on ours.
"""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go

from workbench.frontier import FrontierConfig, collect_points, pareto_front
from workbench.jsonio import read_json
from workbench.names import fmt, metric, title

PUBLISHED = [  # as reported in the abstracts (Cityscapes, Titan Xp); GAS: arXiv v2 / CVPR 2020 (v1: 73.3 %)
    {"name": "GAS", "miou": 73.5, "fps": 108.4},
    {"name": "LGCNet", "miou": 74.0, "fps": 115.2},
    {"name": "AutoRTNet", "miou": 73.9, "fps": 110.0},
]
PUBLISHED_NOTE = "published by the papers: Cityscapes, NVIDIA Titan Xp (not measured here)"
COLORS = {"searched": "#1f77b4", "baseline": "#ff7f0e"}


def load_frontier(source: str | Path | dict) -> dict:
    """A frontier record from a dict, a frontier.json, a frontier run directory, or a folder of runs."""
    if isinstance(source, dict):
        return source
    path = Path(source)
    if path.is_file():
        return read_json(path)
    if (path / "frontier.json").is_file():
        return read_json(path / "frontier.json")
    points = collect_points(FrontierConfig(roots=[str(path)]))
    return {"device": {}, "points": points, "pareto": pareto_front(points)}


def _hover(p: dict) -> str:
    """A point's name, settings, measured latency beside the LUT's estimate, and mIoU (in %)."""
    settings = ", ".join(f"{metric(k).label if k == 'latency_weight' else k}={p[k]}"
                         for k in ("preset", "latency_weight", "seed", "dataset") if p.get(k) is not None)
    noisy = "<br><b>latency timed under load (noisy)</b>" if p.get("latency_noisy") else ""
    target = (f"<br>target {p['target_latency_ms']:.2f} ms" if p.get("target_latency_ms") is not None else "")
    lut = p.get("expected_latency_ms")
    lut_text = (f" | LUT {lut:.2f} ms ({100 * (lut - p['latency_ms']) / p['latency_ms']:+.1f} %)"
                if lut is not None and p.get("latency_ms") else (" | LUT: none (hand-designed)"
                                                                 if p.get("kind") == "baseline" else ""))
    return (f"<b>{p['name']}</b> ({p['kind']})<br>{settings}<br>latency: measured {p['latency_ms']:.2f} ms{lut_text}"
            f"<br>{metric('miou').label} {fmt('miou', p['miou'], unit=True)}{target}{noisy}")


def frontier_figure(frontier: dict, highlight: str | None = None) -> go.Figure:
    """Every run as (measured latency, mIoU), one trace per kind, and the Pareto front as a step line.
    customdata of each marker is the point's index in frontier['points'] (for click handlers)."""
    points = frontier["points"]
    fig = go.Figure()
    for kind in ("searched", "baseline"):
        idx = [i for i, p in enumerate(points) if p["kind"] == kind]
        fig.add_trace(go.Scatter(
            x=[points[i]["latency_ms"] for i in idx], y=[metric("miou").value(points[i]["miou"]) for i in idx],
            mode="markers",
            name=kind, customdata=idx, hovertext=[_hover(points[i]) for i in idx], hoverinfo="text",
            marker={"size": 12, "color": COLORS[kind],
                    "symbol": [("circle" if kind == "searched" else "diamond") + ("-open" if points[i].get(
                        "latency_noisy") else "") for i in idx],
                    "line": {"width": [3 if points[i]["name"] == highlight else 0.5 for i in idx],
                             "color": "#000"}}))
    by_name = {p["name"]: p for p in points}
    front = [by_name[n] for n in frontier.get("pareto", []) if n in by_name]
    fig.add_trace(go.Scatter(x=[p["latency_ms"] for p in front], y=[metric("miou").value(p["miou"]) for p in front],
                             mode="lines", line={"shape": "hv", "dash": "dash", "color": "#2ca02c"},
                             name="Pareto front", hoverinfo="skip"))
    device = frontier.get("device") or {}
    where = device.get("name") or device.get("cpu") or device.get("device") or "this machine"
    noisy = sum(bool(p.get("latency_noisy")) for p in points)
    note = f"; {noisy} open marker{'s' if noisy > 1 else ''}: timed under load" if noisy else ""
    fig.update_layout(title=f"accuracy-latency frontier (measured on {where}{note})",
                      xaxis_title=title("latency_ms"), yaxis_title=title("miou"), height=420,
                      margin={"l": 60, "r": 10, "t": 50, "b": 50}, legend={"orientation": "h", "y": -0.2})
    return fig


def published_figure() -> go.Figure:
    """The seed papers' published points, in their own units and clearly labelled."""
    fig = go.Figure(go.Scatter(
        x=[p["fps"] for p in PUBLISHED], y=[p["miou"] for p in PUBLISHED], mode="markers+text",
        text=[p["name"] for p in PUBLISHED], textposition="top center", name="published",
        marker={"size": 12, "color": "#7f7f7f", "symbol": "square"},
        hovertext=[f"{p['name']}: {p['miou']}% mIoU at {p['fps']} FPS (paper, Titan Xp, Cityscapes)"
                   for p in PUBLISHED], hoverinfo="text"))
    fig.update_layout(title="Published results (not measured here)<br><sup>Cityscapes, NVIDIA Titan Xp, "
                            "as reported by the papers</sup>", xaxis_title="FPS (Titan Xp, published)",
                      yaxis_title=f"{title('miou')} (Cityscapes, published)", height=340,
                      margin={"l": 60, "r": 10, "t": 50, "b": 50}, xaxis_range=[95, 120], yaxis_range=[72.5, 74.5])
    return fig
