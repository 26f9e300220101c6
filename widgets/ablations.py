"""Views of an ablation study summary (`workbench.study.claims.summarize`): per-claim bars with the
spread over seeds, the λ frontier against the baselines, AutoRTNet's derived depth against λ, the
markdown tables and the offline HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from workbench.jsonio import atomic_write_text


def bar_figure(rows: list[dict], key: str, title: str, ytitle: str):
    rows = [r for r in rows if isinstance(r.get(key), dict) and r[key].get("mean") is not None]
    fig = go.Figure(go.Bar(
        x=[r["arm"] for r in rows], y=[r[key]["mean"] for r in rows],
        error_y=dict(type="data", array=[r[key]["std"] or 0.0 for r in rows], visible=True),
        customdata=[[r[key]["n"], r[key]["min"], r[key]["max"]] for r in rows],
        hovertemplate="%{x}<br>mean %{y:.4g}<br>n=%{customdata[0]}, min %{customdata[1]:.4g}, "
                      "max %{customdata[2]:.4g}<extra></extra>"))
    fig.update_layout(title=title, yaxis_title=ytitle, height=380, margin=dict(t=50, b=120))
    return fig


def frontier_figure(claim: dict):
    """The λ sweep as mean latency vs mean mIoU with std error bars, baselines apart."""
    fig = go.Figure()
    for kind, symbol in (("searched", "circle"), ("baseline", "square")):
        pts = [p for p in claim.get("frontier", []) if p["kind"] == kind and p.get("latency_ms") and p.get("miou")
               and p["latency_ms"]["mean"] is not None and p["miou"]["mean"] is not None]
        if not pts:
            continue
        fig.add_trace(go.Scatter(
            x=[p["latency_ms"]["mean"] for p in pts], y=[p["miou"]["mean"] for p in pts],
            error_x=dict(type="data", array=[p["latency_ms"]["std"] or 0.0 for p in pts]),
            error_y=dict(type="data", array=[p["miou"]["std"] or 0.0 for p in pts]),
            mode="markers+lines" if kind == "searched" else "markers", name=kind, marker=dict(size=10, symbol=symbol),
            text=[p["name"] if kind == "baseline" else f"λ={p['latency_weight']:g}" for p in pts],
            hovertemplate="%{text}<br>%{x:.3g} ms, mIoU %{y:.3f}<extra></extra>"))
    fig.update_layout(title="λ sweep: accuracy-latency (mean ± std over seeds)", xaxis_title="measured latency (ms)",
                      yaxis_title="mIoU", height=420)
    return fig


def depth_figure(claim: dict):
    """AutoRTNet's derived depth and mean downsampling layer as λ grows (mean ± std over seeds)."""
    rows = claim.get("depth_vs_lambda") or []
    fig = go.Figure()
    for key, label in (("depth", "depth (cells)"), ("mean_down_layer", "mean downsampling layer")):
        pts = [r for r in rows if r.get(key) and r[key]["mean"] is not None]
        fig.add_trace(go.Scatter(x=[r["latency_weight"] for r in pts], y=[r[key]["mean"] for r in pts],
                                 error_y=dict(type="data", array=[r[key]["std"] or 0.0 for r in pts]),
                                 mode="markers+lines", name=label))
    fig.update_layout(title="AutoRTNet: derived architecture vs λ", xaxis_title="latency weight λ", height=380)
    return fig


def figures(summary: dict) -> list[tuple[str, object]]:
    """(title, plotly figure) per claim: bars with std error bars, the λ frontier, depth vs λ."""
    out = []
    for c in summary["claims"]:
        if not c["rows"]:
            continue
        if c["id"] == "ovs":
            out.append((c["title"], bar_figure(c["rows"], "jf", c["title"] + ": J&F", "J&F")))
            out.append((c["title"], bar_figure(c["rows"], "fps", c["title"] + ": fps", "frames per second")))
            continue
        if c["id"] == "lambda_frontier":
            out.append((c["title"], frontier_figure(c)))
            continue
        if c["id"] == "autortnet" and c.get("depth_vs_lambda"):
            out.append((c["title"], depth_figure(c)))
        out.append((c["title"], bar_figure(c["rows"], "miou", c["title"] + ": mIoU", "mIoU")))
        if any(isinstance(r.get("latency_ms"), dict) for r in c["rows"]):
            out.append((c["title"], bar_figure(c["rows"], "latency_ms", c["title"] + ": latency", "ms")))
    return out


# -- tables and the offline page ------------------------------------------------------------------
def _cell(stats: Any, digits: int = 3) -> str:
    if isinstance(stats, dict) and "mean" in stats:
        if stats["mean"] is None:
            return "–"
        text = f"{stats['mean']:.{digits}f}"
        if stats.get("std") is not None:
            text += f" ± {stats['std']:.{digits}f} [{stats['min']:.{digits}f}, {stats['max']:.{digits}f}]"
        return text
    if stats is None:
        return "–"
    return str(stats)


COLUMNS = {"miou": ("mIoU", 3), "latency_ms": ("latency ms", 2), "expected_latency_ms": ("LUT ms", 2),
           "search_miou": ("search mIoU", 3), "depth": ("depth", 2), "mean_down_layer": ("mean down layer", 2),
           "params_m": ("params M", 3), "gflops": ("GFLOPs", 3), "jf": ("J&F", 3), "fps": ("fps", 1)}


def _preface(summary: dict) -> str:
    devices = ", ".join(f"{d.get('name')} ({d.get('device_type')}, {d.get('threads')} threads, torch {d.get('torch')})"
                        if isinstance(d, dict) else str(d) for d in summary["devices"]) or "not recorded"
    return (f"{summary['runs']} runs in {len(summary['arms'])} arms under {summary['root']}; a difference counts "
            f"beyond {summary['k']:g} standard errors"
            + (f"; a gain in mIoU or J&F is ruled out (\"equivalent\", the claim did not hold) when the whole "
               f"{summary['k']:g}-SE interval of the difference lies inside ±{summary['accuracy_margin']:g}"
               if summary.get("accuracy_margin") else "")
            + (f"; a latency difference is equivalent inside ±{100 * summary['latency_margin']:g} % of the reference "
               "arm's mean, and a trade-off claim equivalent on both axes did not hold"
               if summary.get("latency_margin") else "")
            + f". Latency measured on: {devices}.")


EQUAL_LATENCY_COLUMNS = ("hand-designed", "hand-designed latency ms", "hand-designed mIoU", "searched (no slower)",
                         "searched latency ms", "searched mIoU", "mIoU difference", "outcome")


def equal_latency_rows(headline: dict) -> list[list[str]]:
    """The headline comparison as table rows: one per level of the hand-designed frontier."""
    return [[r["baseline"], _cell(r["baseline_latency_ms"], 2), _cell(r["baseline_miou"]), r["searched"] or "–",
             _cell(r["searched_latency_ms"], 2), _cell(r["searched_miou"]),
             "–" if r["diff"] is None else f"{r['diff']:+.3f}" + ("" if r["se"] is None else f" (se {r['se']:.3f})"),
             r["outcome"]] for r in headline.get("rows", [])]


def to_markdown(summary: dict) -> str:
    """The headline (searched vs hand-designed at equal latency), the claims table (verdict and
    numbers) and one table per claim: mean ± std [min, max] over seeds."""
    lines = [_preface(summary)]
    headline = summary.get("equal_latency")
    if headline:
        lines += ["", f"**{headline['title']}: {headline['verdict']}** ({headline.get('wins', 0)} of "
                      f"{headline.get('levels', 0)} levels of the hand-designed frontier beaten beyond the noise).", ""]
        if headline["rows"]:
            lines.append("| " + " | ".join(EQUAL_LATENCY_COLUMNS) + " |")
            lines.append("|" + "---|" * len(EQUAL_LATENCY_COLUMNS))
            lines += ["| " + " | ".join(row) + " |" for row in equal_latency_rows(headline)]
        if headline["notes"]:
            lines += ["", f"Note: {'; '.join(headline['notes'])}."]
    lines += ["", "| claim | verdict | numbers |", "|---|---|---|"]
    for c in summary["claims"]:
        lines.append(f"| {c['title']} | **{c['verdict']}** | {c['statement'] or 'not yet measured'} |")
    for c in summary["claims"]:
        lines += ["", f"### {c['title']}", "", f"Claim: {c['claim']}. Verdict: **{c['verdict']}**.", ""]
        if c["notes"]:
            lines += [f"Note: {'; '.join(c['notes'])}.", ""]
        if not c["rows"]:
            lines.append("not yet measured")
            continue
        keys = [k for k in COLUMNS if any(k in r for r in c["rows"])]
        lines.append("| arm | seeds | " + " | ".join(COLUMNS[k][0] for k in keys) + " |")
        lines.append("|---|---:|" + "---:|" * len(keys))
        for r in c["rows"]:
            lines.append(f"| {r['arm']} | {r['n']} | " + " | ".join(_cell(r.get(k), COLUMNS[k][1]) for k in keys) + " |")
    if summary.get("unfinished"):
        lines += ["", f"{len(summary['unfinished'])} unfinished or failed runs were left out."]
    return "\n".join(lines) + "\n"


def write_html(summary: dict, out: str | Path) -> Path:
    """Self-contained offline HTML (plotly.js inlined once): verdicts, per-claim tables and figures."""
    from widgets.report import Report

    rep = Report(f"Ablations: {Path(summary['root']).name}")
    rep.text(_preface(summary))
    headline = summary.get("equal_latency")
    if headline:
        rep.heading(f"{headline['title']}: {headline['verdict']}")
        rep.text(f"{headline.get('wins', 0)} of {headline.get('levels', 0)} levels of the hand-designed frontier beaten "
                 "beyond the noise." + (f" Note: {'; '.join(headline['notes'])}." if headline["notes"] else ""))
        rep.table([dict(zip(EQUAL_LATENCY_COLUMNS, row)) for row in equal_latency_rows(headline)])
    rep.table([{"claim": c["title"], "verdict": c["verdict"], "numbers": c["statement"] or "not yet measured"}
               for c in summary["claims"]])
    figs = figures(summary)
    for c in summary["claims"]:
        rep.heading(c["title"])
        rep.text(f"Claim: {c['claim']}. Verdict: {c['verdict']}." + (f" Note: {'; '.join(c['notes'])}." if c["notes"] else ""))
        keys = [k for k in COLUMNS if any(k in r for r in c["rows"])]
        rep.table([{"arm": r["arm"], "seeds": r["n"], **{COLUMNS[k][0]: _cell(r.get(k), COLUMNS[k][1]) for k in keys}}
                   for r in c["rows"]])
        for title, fig in figs:
            if title == c["title"]:
                rep.figure(fig)
    out = Path(out)
    atomic_write_text(out, rep.html())
    return out
