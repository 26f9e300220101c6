"""Seeds -> mean and spread, and comparisons decided against the noise.

A difference between two arms counts when it exceeds `k` standard errors of the difference
(se = sqrt(s_a^2/n_a + s_b^2/n_b)); otherwise it is "within noise". With fewer than 2 seeds on a
side there is no spread, and no verdict beyond "inconclusive".

A claim that one arm is *better* can also be called "did not hold" when there is no effect to find:
when the whole k-SE interval of the difference lies inside ±`margin` (an equivalence test, as
TOST). The margin is the smallest effect the study is built to resolve (`ACCURACY_MARGIN`): with
the proxy benchmark's seed spread (std at most 0.01, 3 seeds) 2 SE of a difference is at most
0.016, so an accuracy gain of 0.02 would be seen; an interval inside ±0.02 rules such a gain out.
Without that rule a claim with no effect stays "inconclusive" however many seeds are run.

A trade-off claim (better accuracy *or* lower latency, not worse on the other) needs the same rule on
latency to be refuted: `LATENCY_MARGIN` is relative, 10 % of the reference arm's mean measured
latency. That is the tolerance the project already treats as "equal latency" (a latency target is met
within ±10 %), and about the run-to-run drift of one network's measured latency on the 2-core VM
(benchmarks/results/ablations_study_2026-12-02a.md), so a smaller gain could not be told from drift.
"""

from __future__ import annotations

import math
import statistics

HELD, NOT_HELD, MIXED, INCONCLUSIVE, NOT_MEASURED = "held", "did not hold", "mixed", "inconclusive", "not measured"
ACCURACY_MARGIN = 0.02  # mIoU or J&F: the smallest gain the study is built to see (module docstring)
LATENCY_MARGIN = 0.10   # relative to the reference arm's mean latency: "equal latency" (module docstring)


def describe(values: list[float]) -> dict:
    """mean, sample std (None below 2 values), min, max, n of the non-missing values."""
    vals = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return {"mean": None, "std": None, "min": None, "max": None, "n": 0, "values": []}
    return {"mean": statistics.fmean(vals), "std": statistics.stdev(vals) if len(vals) > 1 else None,
            "min": min(vals), "max": max(vals), "n": len(vals), "values": vals}


def compare(a: dict | None, b: dict | None, higher_is_better: bool = True, k: float = 2.0,
            margin: float | None = None) -> dict:
    """Is a better than b (statistics from `describe`)? 'better' / 'worse' beyond k standard errors,
    'equivalent' (with a margin: the k-SE interval of the difference inside ±margin), 'within noise',
    'too few seeds' (n < 2 on a side) or 'missing'."""
    out = {"a": None if not a else a["mean"], "b": None if not b else b["mean"], "diff": None, "se": None,
           "outcome": "missing"}
    if not a or not b or a["mean"] is None or b["mean"] is None:
        return out
    diff = a["mean"] - b["mean"]
    out["diff"] = diff
    if a["n"] < 2 or b["n"] < 2:
        out["outcome"] = "too few seeds"
        return out
    se = math.sqrt(a["std"] ** 2 / a["n"] + b["std"] ** 2 / b["n"])
    out["se"] = se
    gain = diff if higher_is_better else -diff
    out["outcome"] = "better" if gain > k * se else "worse" if -gain > k * se else "within noise"
    if out["outcome"] == "within noise" and margin is not None and abs(diff) + k * se < margin:
        out["outcome"], out["margin"] = "equivalent", margin
    return out


def latency_margin(reference: dict | None) -> float | None:
    """The latency equivalence margin in ms around the reference arm's mean (`LATENCY_MARGIN`)."""
    return None if not reference or reference.get("mean") is None else LATENCY_MARGIN * reference["mean"]


def tradeoff(acc: dict, lat: dict) -> str:
    """Verdict for 'A gives a better accuracy-latency trade-off than B' from two `compare` results:
    better on one axis and not worse on the other -> held; the reverse -> did not hold; equivalent
    on both axes (no gain as large as either margin) -> did not hold."""
    known = [o for o in (acc["outcome"], lat["outcome"]) if o != "missing"]
    if acc["outcome"] == "missing":
        return NOT_MEASURED
    if "too few seeds" in known:
        return INCONCLUSIVE
    if "better" in known and "worse" not in known:
        return HELD
    if "worse" in known and "better" not in known:
        return NOT_HELD
    if acc["outcome"] == "equivalent" and lat["outcome"] in ("missing", "equivalent"):
        return NOT_HELD  # no gain on accuracy, and none (or no measurement) on latency
    return INCONCLUSIVE


def single(cmp: dict) -> str:
    """'A is better than B' from one `compare`: equivalence (no gain as large as the margin) did not hold."""
    return {"better": HELD, "worse": NOT_HELD, "equivalent": NOT_HELD, "missing": NOT_MEASURED}.get(
        cmp["outcome"], INCONCLUSIVE)


def combine(verdicts: list[str]) -> str:
    """A claim tested in several contexts (or with several parts) holds only where all of them hold."""
    vs = [v for v in verdicts if v != NOT_MEASURED]
    if not vs:
        return NOT_MEASURED
    if all(v == HELD for v in vs):
        return HELD
    if NOT_HELD in vs:
        return MIXED if HELD in vs else NOT_HELD
    return INCONCLUSIVE
