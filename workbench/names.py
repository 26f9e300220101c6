"""Names and units of every number the views show, in one place.

Records on disk keep their keys and raw units (mIoU as a fraction, latency in ms); what a reader
sees -- an axis title, a table header, a hover line, a TensorBoard tag, the runs table -- comes
from here, so the same number has the same name and unit in the panels, the reports, the runs
table and TensorBoard. mIoU, pixel accuracy and J&F are shown in percent everywhere (the papers
report percent).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Metric:
    key: str          # the key in run records and metrics.jsonl
    label: str        # what a reader sees
    unit: str = ""    # shown unit ('%' means the stored fraction is multiplied by 100)
    digits: int = 2   # decimals shown
    help: str = ""
    short: str = ""   # one-word header for plain-text tables (default: label without spaces)

    @property
    def scale(self) -> float:
        return 100.0 if self.unit == "%" else 1.0

    @property
    def title(self) -> str:
        """'label (unit)', for axes and table headers."""
        return f"{self.label} ({self.unit})" if self.unit else self.label

    @property
    def header(self) -> str:
        return self.short or self.label.replace(" ", "_")

    def value(self, v: Any) -> Any:
        """The number as shown (percent for fractions); non-numbers unchanged."""
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return v
        return v * self.scale

    def format(self, v: Any, unit: bool = False) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "-"
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return str(v)
        text = f"{self.value(v):.{self.digits}f}" if isinstance(v, float) or self.scale != 1 else str(v)
        return f"{text} {self.unit}" if unit and self.unit else text


_ALL = [
    Metric("miou", "mIoU", "%", 1, "validation mIoU of the trained network", "mIoU%"),
    Metric("search_miou", "search mIoU", "%", 1, "the supernet's mIoU on the search's validation images "
           "(a proxy: the derived network is not trained yet)", "search_mIoU%"),
    Metric("val_miou", "search mIoU", "%", 1, "the supernet's mIoU after a search epoch (proxy)", "search_mIoU%"),
    Metric("selection_score", "selection score", "%", 1, "a selection's kept candidate: its mIoU on the images "
           "held out of the training split after the last rung (strategy: sample)", "selection%"),
    Metric("pixel_acc", "pixel accuracy", "%", 1, "", "pixel_acc%"),
    Metric("latency_ms", "measured latency", "ms", 2, "median of the benchmark at batch 1 on the measuring "
           "machine", "latency_ms"),
    Metric("expected_latency_ms", "LUT latency", "ms", 2, "the latency table's prediction for the network",
           "LUT_ms"),
    Metric("expected_ms", "LUT latency", "ms", 2, "the latency table's prediction for the network", "LUT_ms"),
    Metric("supernet_expected_latency_ms", "supernet LUT latency", "ms", 2,
           "expected latency of the relaxed supernet (sum of p(op) x LUT(op))"),
    Metric("target_latency_ms", "target latency", "ms", 2),
    Metric("fps", "FPS", "", 1),
    Metric("params_m", "parameters", "M", 2),
    Metric("gflops", "GFLOPs", "", 2),
    Metric("jf", "J&F", "%", 1, "DAVIS J&F mean", "J&F%"),
    Metric("j_mean", "J", "%", 1, "region similarity (IoU)", "J%"),
    Metric("f_mean", "F", "%", 1, "boundary F-measure", "F%"),
    Metric("train_loss", "weight loss", "", 4, "training loss of the weight steps"),
    Metric("arch_loss", "architecture loss", "", 4, "loss of the architecture steps (task + latency term)"),
    Metric("loss", "training loss", "", 4),
    Metric("det_loss", "detection loss", "", 4),
    Metric("mask_loss", "mask loss", "", 4),
    Metric("reid_loss", "re-ID loss", "", 4),
    Metric("temperature", "temperature", "", 3, "Gumbel-softmax temperature"),
    Metric("latency_weight", "λ", "", 3, "latency weight of the architecture loss", "lambda"),
    Metric("latency_weight_final", "final λ", "", 3, "latency weight after adaptive steering", "lambda_final"),
    Metric("lr", "learning rate", "", 5),
    Metric("epoch_time_s", "epoch time", "s", 1),
    Metric("duration_s", "duration", "s", 0),
    Metric("seed", "seed", "", 0),
    Metric("epoch", "epoch", "", 0),
]
METRICS: dict[str, Metric] = {m.key: m for m in _ALL}


def metric(key: str) -> Metric:
    """The Metric for a key; an unknown key gets its own name and no unit."""
    return METRICS.get(key) or Metric(key, key.replace("_", " "), short=key)


def title(key: str) -> str:
    return metric(key).title


def fmt(key: str, value: Any, unit: bool = False) -> str:
    return metric(key).format(value, unit)


def shown(key: str, value: Any) -> Any:
    return metric(key).value(value)

