"""Searching to a latency target: the target itself, and the adaptive latency weight that lands on it.

A target is a latency in ms (`target_latency_ms`), or a fraction of a named hand-designed
baseline's latency measured here, at the search's input size, on the search's device, with the
same round-robin protocol as the latency table (`target_baseline` + `target_fraction`). It is
resolved once, when a search starts, and stored in the run record and the checkpoint, so a resumed
search keeps the same target.

With `latency_control: adaptive` the latency weight λ is steered as FasterSeg steers it
(VITA-Group/FasterSeg, search/train_search.py): after every searching epoch the network the
architecture derives to right now is priced with the latency table; above the band
target x (1 + band) λ doubles, below target x (1 - band) it halves, inside it stays. The loss's
latency term is then the plain L / L0 (its pressure scaled by λ alone).
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def resolve_target(cfg, num_classes: int, device) -> dict | None:
    """{"ms", and for a baseline-relative target "baseline", "baseline_ms", "fraction"} or None."""
    if cfg.target_latency_ms is not None:
        return {"ms": float(cfg.target_latency_ms)}
    if not cfg.target_baseline:
        return None
    from workbench.nas.latency.timing import measure_network_latency
    from workbench.seg.baselines import build_baseline

    model = build_baseline(cfg.target_baseline, num_classes)
    measured = measure_network_latency(model, tuple(cfg.input_size), device, warmup=max(cfg.lut_warmup, 1),
                                       repeats=max(cfg.lut_repeats, 3), rounds=cfg.lut_rounds)
    target = {"ms": cfg.target_fraction * measured, "baseline": cfg.target_baseline, "baseline_ms": measured,
              "fraction": cfg.target_fraction}
    log.info("latency target: %.3g x %s (%.2f ms measured at %dx%d) = %.2f ms", cfg.target_fraction,
             cfg.target_baseline, measured, *cfg.input_size, target["ms"])
    return target


def adapt_weight(weight: float, derived_ms: float, target_ms: float, band: float) -> float:
    """FasterSeg's rule: double λ above the band around the target, halve it below, else keep it."""
    if derived_ms > target_ms * (1 + band):
        return weight * 2.0
    if derived_ms < target_ms * (1 - band):
        return weight / 2.0
    return weight


def miss_pct(latency_ms: float | None, target_ms: float | None) -> float | None:
    """How far a latency lands from its target, in percent (positive: slower than the target)."""
    if latency_ms is None or not target_ms:
        return None
    return 100.0 * (latency_ms - target_ms) / target_ms
