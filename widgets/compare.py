"""Comparing runs: a sweep's parameters against mIoU and measured latency, and the runs table.

The parameters of a point are the settings of its run (config.json) and, for a searched network,
of the search that found it (the run record's `genotype_source`); the ones that differ between the
points are the sweep's parameters (as Optuna's and NNI's parallel-coordinates views show them).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from workbench.names import metric
from workbench.runs import RunDir

# settings that never make a sweep axis: where and how a run ran, not what it was
NOT_PARAMETERS = frozenset({"device", "threads", "workers", "num_workers", "resume", "overwrite", "name", "genotype",
                            "output_dir", "data_root", "lut_cache_dir", "lut_path", "run", "root", "roots"})


def _settings(run_dir: str | Path) -> dict:
    """config.json of the run, over the config of the search its genotype came from ('search.' keys)."""
    run = RunDir(run_dir)
    try:
        cfg = run.read_config()
        rec = run.record()
    except Exception:  # an unreadable run has no parameters; its point still shows its numbers
        return {}
    out = {}
    source = rec.get("genotype_source") or cfg.get("genotype")
    if isinstance(source, str) and source:
        search_dir = Path(source).parent if Path(source).suffix == ".json" else Path(source)
        if not search_dir.is_absolute():
            search_dir = run.path / search_dir if (run.path / search_dir).exists() else search_dir
        try:
            search_cfg = RunDir(search_dir).read_config() if (search_dir / "config.json").is_file() else {}
        except Exception:
            search_cfg = {}
        out.update({f"search.{k}": v for k, v in search_cfg.items()})
    out.update(cfg)
    for key in ("preset", "latency_weight", "seed"):
        if rec.get(key) is not None:
            out.setdefault(key, rec[key])
    return out


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def sweep_parameters(points: list[dict]) -> tuple[list[str], list[dict]]:
    """(the parameter names that differ between the points, each point's settings)."""
    settings = [_settings(p["run_dir"]) if p.get("run_dir") else {} for p in points]
    keys: list[str] = []
    for s in settings:
        keys += [k for k in s if k not in keys]
    varying = []
    for k in keys:
        base = k.removeprefix("search.")
        if base in NOT_PARAMETERS:
            continue
        values = [s.get(k) for s in settings]
        if all(_scalar(v) for v in values) and len({json.dumps(v) for v in values}) > 1:
            varying.append(k)
    # a search setting repeated by the retrain (same values) is one axis
    varying = [k for k in varying if not (k.startswith("search.") and k.removeprefix("search.") in varying
                                          and all(s.get(k) == s.get(k.removeprefix("search.")) for s in settings))]
    return varying, settings


def _dimension(label: str, values: list) -> dict:
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return {"label": label, "values": values}
    cats = sorted({json.dumps(v) for v in values})
    return {"label": label, "values": [cats.index(json.dumps(v)) for v in values],
            "tickvals": list(range(len(cats))), "ticktext": [json.loads(c) if json.loads(c) is not None else "-"
                                                              for c in cats]}


def parallel_figure(points: list[dict], title: str = "sweep parameters vs mIoU and measured latency") -> go.Figure:
    """Parallel coordinates: one line per point (a run with mIoU and measured latency) over the
    sweep's parameters, then mIoU (%), measured latency and the LUT's estimate (ms); colour = mIoU."""
    names, settings = sweep_parameters(points)
    dims = [_dimension(metric(n).label if n in ("latency_weight", "seed") else n, [s.get(n) for s in settings])
            for n in names]
    miou = metric("miou")
    dims.append({"label": miou.title, "values": [miou.value(p["miou"]) for p in points]})
    dims.append({"label": metric("latency_ms").title, "values": [p["latency_ms"] for p in points]})
    if any(p.get("expected_latency_ms") is not None for p in points) and all(
            p.get("expected_latency_ms") is not None for p in points if p.get("kind") == "searched"):
        dims.append({"label": metric("expected_latency_ms").title,
                     "values": [p.get("expected_latency_ms") if p.get("expected_latency_ms") is not None else 0.0
                                for p in points]})
    fig = go.Figure(go.Parcoords(
        line={"color": [miou.value(p["miou"]) for p in points], "colorscale": "Viridis", "showscale": True,
              "colorbar": {"title": miou.title}},
        dimensions=dims))
    fig.update_layout(title=f"{title} ({len(points)} runs; drag along an axis to filter)", height=420,
                      margin={"l": 80, "r": 40, "t": 80, "b": 30})
    return fig


def rows_csv(rows: list[dict], columns: list[str]) -> str:
    """The table as CSV with the raw stored values (fractions, ms), one header row of keys."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns)
    for r in rows:
        writer.writerow(["" if r.get(c) is None else r.get(c) for c in columns])
    return buf.getvalue()


def sort_filter(rows: list[dict], sort: str | None = None, descending: bool = False,
                query: str = "") -> list[dict]:
    """Rows whose text contains every word of `query` (case-insensitive; 'status:failed' matches
    one column), sorted by `sort` (missing values last)."""
    words = query.lower().split()

    def keep(r: dict) -> bool:
        for w in words:
            if ":" in w:
                col, _, want = w.partition(":")
                if want not in str(r.get(col, "")).lower():
                    return False
            elif not any(w in str(v).lower() for v in r.values() if v is not None):
                return False
        return True

    out = [r for r in rows if keep(r)]
    if sort:
        present = [r for r in out if r.get(sort) is not None]
        missing = [r for r in out if r.get(sort) is None]
        present.sort(key=lambda r: (isinstance(r[sort], str), r[sort]), reverse=descending)
        out = present + missing
    return out
