"""The view of a selection run (`strategy: sample`): every candidate's price against its held-out
score, rung by rung, so one sees which draws went on and whether the winner is also the cheapest.

Reads `candidates.json` only (workbench.nas.selection writes it after every candidate), so it
follows a running selection as well as a finished one.
"""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go

from workbench.jsonio import read_json_object
from workbench.names import metric
from workbench.nas.selection import survivors

CANDIDATES_FILE = "candidates.json"
RUNG_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "cross", "x")


def load_candidates(run_dir: str | Path) -> dict | None:
    """candidates.json of a selection run, or None when the run is not one (or has drawn nothing yet).
    A one-shot run's table (no rungs: its scores come from the supernet, `strategy: one_shot`) is not
    one: that run is viewed as a search, by its training curves."""
    path = Path(run_dir) / CANDIDATES_FILE
    table = read_json_object(path) if path.is_file() else None
    return table if table is not None and "rungs" in table else None


def winner_of(table: dict) -> int | None:
    """The best candidate of the last rung anyone reached, by the selection's own rule."""
    reached = [int(r) for c in table["candidates"] for r in c["scores"]]
    if not reached:
        return None
    last = str(max(reached))
    return survivors({c["candidate"]: c["scores"][last] for c in table["candidates"] if last in c["scores"]}, 0)[0]


def candidate_rows(table: dict) -> list[dict]:
    """One row per candidate: its price, distance from the target and held-out mIoU (%) per rung."""
    rungs = table.get("rungs") or []
    rows = []
    for c in table["candidates"]:
        row = {"candidate": c["candidate"], "draw": c["draw"], "price_ms": c["price_ms"],
               "vs_target_pct": c["price_vs_target_pct"]}
        for r, epochs in enumerate(rungs):
            score = c["scores"].get(str(r))
            row[f"rung{r}_{epochs}ep_miou_pct"] = None if score is None else round(100 * score, 2)
        rows.append(row)
    return rows


def selection_figure(table: dict) -> go.Figure:
    """Held-out mIoU against table price: one marker per candidate and rung, the target as a line,
    the winner ringed."""
    miou = metric("miou")
    rungs = table.get("rungs") or []
    fig = go.Figure()
    for r, epochs in enumerate(rungs):
        done = [c for c in table["candidates"] if str(r) in c["scores"]]
        if not done:
            continue
        fig.add_trace(go.Scatter(
            x=[c["price_ms"] for c in done], y=[miou.value(c["scores"][str(r)]) for c in done], mode="markers",
            name=f"rung {r} ({epochs} epochs)", text=[f"c{c['candidate']:02d}" for c in done],
            marker={"size": 10, "symbol": RUNG_SYMBOLS[r % len(RUNG_SYMBOLS)]},
            hovertemplate=f"%{{text}}<br>%{{x:.2f}} ms<br>%{{y:.{miou.digits}f}} {miou.unit}<extra>rung {r}</extra>"))
    best = winner_of(table)
    if best is not None:
        c = table["candidates"][best]
        last = max(int(r) for r in c["scores"])
        fig.add_trace(go.Scatter(x=[c["price_ms"]], y=[miou.value(c["scores"][str(last)])], mode="markers",
                                 name=f"kept: c{best:02d}", hoverinfo="skip",
                                 marker={"size": 20, "symbol": "circle-open", "line": {"width": 2}}))
    if table.get("target_ms"):
        fig.add_vline(x=table["target_ms"], line_dash="dash", annotation_text="target")
    fig.update_layout(height=340, margin={"l": 50, "r": 10, "t": 30, "b": 40},
                      xaxis_title="price by the latency table (ms)", yaxis_title=f"held-out {miou.label} ({miou.unit})")
    return fig
