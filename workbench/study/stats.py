"""Seeds -> mean and spread, and comparisons decided against the noise.

A difference between two arms counts when it exceeds `k` standard errors of the difference
(se = sqrt(s_a^2/n_a + s_b^2/n_b)); otherwise it is "within noise". With fewer than 2 seeds on a
side there is no spread, and no verdict beyond "inconclusive".
"""

from __future__ import annotations

import math
import statistics

HELD, NOT_HELD, MIXED, INCONCLUSIVE, NOT_MEASURED = "held", "did not hold", "mixed", "inconclusive", "not measured"


def describe(values: list[float]) -> dict:
    """mean, sample std (None below 2 values), min, max, n of the non-missing values."""
    vals = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return {"mean": None, "std": None, "min": None, "max": None, "n": 0, "values": []}
    return {"mean": statistics.fmean(vals), "std": statistics.stdev(vals) if len(vals) > 1 else None,
            "min": min(vals), "max": max(vals), "n": len(vals), "values": vals}


def compare(a: dict | None, b: dict | None, higher_is_better: bool = True, k: float = 2.0) -> dict:
    """Is a better than b (statistics from `describe`)? 'better' / 'worse' beyond k standard errors,
    'within noise', 'too few seeds' (n < 2 on a side) or 'missing'."""
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
    return out


def tradeoff(acc: dict, lat: dict) -> str:
    """Verdict for 'A gives a better accuracy-latency trade-off than B' from two `compare` results:
    better on one axis and not worse on the other -> held; the reverse -> did not hold."""
    known = [o for o in (acc["outcome"], lat["outcome"]) if o != "missing"]
    if acc["outcome"] == "missing":
        return NOT_MEASURED
    if "too few seeds" in known:
        return INCONCLUSIVE
    if "better" in known and "worse" not in known:
        return HELD
    if "worse" in known and "better" not in known:
        return NOT_HELD
    return INCONCLUSIVE


def single(cmp: dict) -> str:
    return {"better": HELD, "worse": NOT_HELD, "missing": NOT_MEASURED}.get(cmp["outcome"], INCONCLUSIVE)


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
