"""A run's key facts as (label, text) pairs: the panel header and the report's summary table.

Names and units come from `workbench.names`; the measured latency always stands beside the
latency table's estimate (or says why there is none).
"""

from __future__ import annotations

import html

from widgets.records import Run
from workbench.names import metric
from workbench.runs import dataset_name

SETTINGS = ("kind", "status", "preset", "latency_weight", "seed", "dataset")
METRIC_ORDER = ("miou", "pixel_acc", "jf", "j_mean", "f_mean", "fps", "params_m", "gflops", "loss")


def latency_text(run: Run) -> str:
    """'measured 12.3 ms on <device> at HxW | LUT 11.0 ms (-10.6 %)', or what is missing and why."""
    meas = run.measured or {}
    metrics = run.record.get("metrics") or {}
    lut = meas.get("expected_latency_ms", metrics.get("expected_latency_ms"))
    if lut is None and run.genotype:
        lut = run.genotype.get("expected_latency_ms")
    parts = []
    if meas.get("latency_ms") is not None:
        device = meas.get("device") or {}
        where = device.get("name") if isinstance(device, dict) else device
        size = meas.get("size")
        at = f" at {size[0]}x{size[1]}" if isinstance(size, list) and len(size) == 2 else ""
        noisy = ", timed under load (noisy)" if meas.get("latency_noisy") else ""
        parts.append(f"measured {meas['latency_ms']:.2f} ms" + (f" on {where}" if where else "") + at + noisy)
    elif run.kind in ("retrain", "baseline"):
        parts.append("measured: not benchmarked yet (workbench bench --run RUN --run-dir RUN/benchmark)")
    elif run.kind == "search":
        parts.append("measured: retrain and benchmark the derived network")
    if lut is not None:
        err = (f" ({100 * (lut - meas['latency_ms']) / meas['latency_ms']:+.1f} % vs measured)"
               if meas.get("latency_ms") else "")
        parts.append(f"LUT {lut:.2f} ms{err}")
    elif run.kind in ("retrain", "baseline", "search"):
        parts.append("LUT: none (a hand-designed network is not in the search space)" if run.kind == "baseline"
                     else "LUT: none recorded")
    return " | ".join(parts)


def summary_items(run: Run) -> list[tuple[str, str]]:
    """The run's settings, its metrics (names and units of workbench.names) and its latency."""
    rec = run.record
    items = []
    for key in SETTINGS:
        value = rec.get(key) if key != "preset" else rec.get("preset") or rec.get("baseline")
        if value is None:
            continue
        if key == "dataset":
            value = dataset_name(value)
        items.append((metric(key).label if key == "latency_weight" else key, metric(key).format(value)))
    metrics = rec.get("metrics") or {}
    keys = [k for k in METRIC_ORDER if metrics.get(k) is not None]
    keys += [k for k in metrics if k not in keys and k not in ("expected_latency_ms", "latency_ms")
             and isinstance(metrics[k], (int, float)) and not isinstance(metrics[k], bool)]
    for key in keys:
        shown_key = "search_miou" if key == "miou" and run.kind == "search" else key
        items.append((metric(shown_key).label, metric(shown_key).format(metrics[key], unit=True)))
    for key in ("fps", "params_m", "gflops"):
        if key not in metrics and (run.measured or {}).get(key) is not None:
            items.append((metric(key).label, metric(key).format(run.measured[key], unit=True)))
    lat = latency_text(run)
    if lat:
        items.append(("latency", lat))
    if rec.get("duration_s") is not None:
        items.append(("duration", metric("duration_s").format(rec["duration_s"], unit=True)))
    if rec.get("error"):
        items.append(("error", str(rec["error"])))
    return items


def header_html(run: Run) -> str:
    """The panel header: the run's name, then its summary items as labelled values that wrap."""
    status = run.record.get("status", "missing")
    color = {"finished": "#2a7d2a", "failed": "#b22", "running": "#b80"}.get(status, "#333")
    chips = "".join(
        f"<span style='display:inline-block;margin:1px 14px 1px 0'><span style='color:#666'>{html.escape(k)}</span> "
        f"<span style='{f'color:{color};font-weight:bold' if k == 'status' else ''}'>{html.escape(v)}</span></span>"
        for k, v in summary_items(run))
    return (f"<div class='wb-header'><h3 style='margin:4px 0'>{html.escape(run.name)}</h3>"
            f"<div style='font-size:0.92em;line-height:1.5'>{chips}</div></div>")
