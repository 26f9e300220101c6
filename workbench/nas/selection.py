"""Selection by training (`strategy: sample`): draw architectures the table prices near the
target, train each briefly, keep the best.

Why: on a short budget the differentiable search's operation weights stay near uniform
(benchmarks/results/search_length.md), so its gradient cannot rank operations, while random
architectures of the same space at the same price differ by up to 0.06 mIoU once retrained.
Training the candidates ranks them by what the retrain measures. Random search with early stopping
is a strong NAS baseline (Li & Talwalkar, 2019); the schedule is successive halving (Jamieson &
Talwalkar, 2016: Hyperband's inner loop), each rung trained from scratch with its own schedule.

Every candidate trains with the retrain step on `train_split` less a fixed held-out fraction and is
scored (mIoU) on that fraction, never on `val_split`. The run directory holds the search run's
files (config.json, run_record.json, latency_lut.json, genotype.json, metrics.jsonl: one line per
rung) plus `candidates.json` (every kept draw: its price and score per rung) and `candidates/`
(the genotypes and one short run per candidate and rung, kind 'candidate'). A killed selection
resumes: finished candidates are read back, an interrupted one resumes from its checkpoint.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from pathlib import Path

from workbench.errors import ConfigError
from workbench.jsonio import atomic_write_json, truncate_jsonl
from workbench.nas.genotypes import Genotype, load_genotype, save_genotype
from workbench.nas.latency.table import predict_genotype_latency
from workbench.nas.presets import SearchConfig
from workbench.runs import RunDir

log = logging.getLogger(__name__)

CANDIDATE_KIND = "candidate"
DRAW_CHUNK = 16  # random architectures derived per call (the supernet restores its alphas after each)
MEASUREMENTS = "measurements.json"  # sample_measure: each timed draw's ratio to the baseline
PREFILTER = "prefilter.json"  # sample_prefilter: the kept draws and their scores, read back on resume


def priced_draws(cfg: SearchConfig, supernet, num_classes: int, lut: dict, target_ms: float
                 ) -> Iterator[tuple[int, Genotype]]:
    """Random architectures (the supernet's `random_bodies`, seeded by cfg.seed) that the table prices
    within `sample_band` of the target, with their draw index, in draw order; ConfigError once
    `sample_max_draws` are spent."""
    from workbench.nas.search import make_genotype

    prices: list[float] = []
    in_band = draw = 0
    while True:
        if draw >= cfg.sample_max_draws:
            span = f"{min(prices):.2f}-{max(prices):.2f} ms" if prices else "none"
            raise ConfigError(f"sample_band: only {in_band} of {draw} random architectures were priced within "
                              f"±{100 * cfg.sample_band:.0f} % of the target {target_ms:.2f} ms (prices {span}); "
                              "widen sample_band, raise sample_max_draws or move the target")
        count = min(DRAW_CHUNK, cfg.sample_max_draws - draw)
        for body in supernet.random_bodies(count, seed=cfg.seed * 1_000_003 + draw):
            genotype = make_genotype(cfg, body, num_classes)
            genotype.expected_latency_ms = round(predict_genotype_latency(genotype, lut), 4)
            prices.append(genotype.expected_latency_ms)
            draw += 1
            if abs(genotype.expected_latency_ms / target_ms - 1) <= cfg.sample_band:
                in_band += 1
                yield draw - 1, genotype


def draw_candidates(cfg: SearchConfig, supernet, num_classes: int, lut: dict, target_ms: float,
                    measured: Callable[[int, Genotype], float] | None = None) -> list[tuple[int, Genotype]]:
    """The first `sample_candidates` of `priced_draws`; with `measured` (draw, genotype -> measured
    latency / target), only those measured within `sample_measure_band` (default `sample_band`)."""
    band = cfg.sample_band if cfg.sample_measure_band is None else cfg.sample_measure_band
    kept: list[tuple[int, Genotype]] = []
    for draw, genotype in priced_draws(cfg, supernet, num_classes, lut, target_ms):
        if measured is None or abs(measured(draw, genotype) - 1) <= band:
            kept.append((draw, genotype))
        if len(kept) == cfg.sample_candidates:
            break
    log.info("kept %d draws priced within ±%.0f %% of %.2f ms%s", len(kept), 100 * cfg.sample_band, target_ms,
             f" and measured within ±{100 * band:.0f} %" if measured else "")
    return kept


class Measured:
    """`measured` for draw_candidates: a candidate timed against the target's baseline (the
    calibration's protocol, `target_measure_rounds` rounds; `workbench.nas.target.baseline_ratio_timer`)
    and divided by the target's fraction. Timings are kept in `measurements.json` (`store`), so a
    resumed selection reuses them instead of timing again (a second timing could keep other draws)."""

    def __init__(self, cfg: SearchConfig, run: RunDir, target: dict, num_classes: int,
                 time_ratio: Callable | None = None):
        from workbench.jsonio import read_json
        from workbench.nas.target import baseline_ratio_timer

        self.cfg, self.fraction, self.path = cfg, target["fraction"], run.path / MEASUREMENTS
        self.store: dict[str, dict] = read_json(self.path) if self.path.exists() else {}
        self.timer = time_ratio or baseline_ratio_timer(cfg, target["baseline"], num_classes, cfg.device)

    def __call__(self, draw: int, genotype: Genotype) -> float:
        key = str(draw)
        if key not in self.store:
            if len(self.store) >= self.cfg.sample_measure_max:
                seen = ", ".join(f"{v['miss_pct']:+.1f} %" for v in self.store.values())
                raise ConfigError(f"sample_measure: {len(self.store)} timings spent (sample_measure_max) before "
                                  f"{self.cfg.sample_candidates} candidates were measured within the band "
                                  f"(measured: {seen}); widen sample_measure_band or move the target")
            ratio, load = self.timer(genotype)
            self.store[key] = {"ratio": round(ratio, 5), "miss_pct": round(100 * (ratio / self.fraction - 1), 2),
                               "price_ms": genotype.expected_latency_ms, **load}
            atomic_write_json(self.path, self.store)
            log.info("candidate draw %d: measured %+.1f %% from the target", draw, self.store[key]["miss_pct"])
        return self.store[key]["ratio"] / self.fraction


def survivors(scores: dict[int, float], keep: float) -> list[int]:
    """The best ceil(keep x n) candidates of a rung (at least one), best first; ties go to the
    earlier draw, so the choice never depends on dict order."""
    ranked = sorted(scores, key=lambda i: (-scores[i], i))
    return ranked[:max(1, math.ceil(keep * len(ranked)))]


def _fixed_fields(cfg: SearchConfig, genotype_path: Path, epochs: int, resume: bool) -> dict:
    """The retrain fields a candidate takes from the search (not from `sample_retrain`)."""
    return {"genotype": str(genotype_path), "dataset": cfg.dataset,
            "data_root": cfg.data_root or f"datasets/synth-{cfg.dataset}", "train_split": cfg.train_split,
            "holdout": cfg.sample_holdout, "epochs": epochs, "crop_size": list(cfg.crop_size),
            "batch_size": cfg.sample_batch_size, "recipe": cfg.sample_recipe, "device": cfg.device,
            "threads": cfg.threads or None, "num_workers": cfg.num_workers, "seed": cfg.seed,
            "resume": resume, "overwrite": False}


def check_retrain_fields(cfg: SearchConfig) -> None:
    """`sample_retrain` may set any other retrain field (SearchConfig.validate calls this, so a bad
    one is refused before anything is written, timed or trained)."""
    import dataclasses

    from workbench.seg.retrain import RetrainConfig

    known = {f.name for f in dataclasses.fields(RetrainConfig)}
    fixed = set(_fixed_fields(cfg, Path(), 1, False)) | {"baseline"}
    for given in cfg.sample_retrain:
        key = RetrainConfig.ALIASES.get(given, given)
        if key in fixed:
            raise ConfigError(f"sample_retrain: {given!r} is set by the selection itself (see sample_* and the "
                              "search's own fields)")
        if key not in known:
            raise ConfigError(f"sample_retrain: unknown retrain field {given!r}")


def _candidate_config(cfg: SearchConfig, genotype_path: Path, epochs: int, resume: bool) -> dict:
    return {**cfg.sample_retrain, **_fixed_fields(cfg, genotype_path, epochs, resume)}


def train_candidate(cfg: SearchConfig, genotype_path: Path, run_dir: Path, epochs: int) -> float:
    """Held-out mIoU of one candidate after `epochs` (a finished run is read back, not retrained)."""
    from workbench.seg.retrain import run_retrain

    run = RunDir(run_dir)
    record = run.record() if run.exists() else {}
    if record.get("status") == "finished" and record.get("kind") == CANDIDATE_KIND:
        return float(record["metrics"]["miou"])
    result = run_retrain(_candidate_config(cfg, genotype_path, epochs, resume=run.config_path.exists()),
                         run_dir, kind=CANDIDATE_KIND)
    return float(result["metrics"]["miou"])


def run_selection(cfg: SearchConfig, run: RunDir, supernet, lut: dict, target: dict, num_classes: int,
                  time_ratio: Callable | None = None) -> tuple[Genotype, dict]:
    """Draw (and with `sample_measure` time), train rung by rung, keep the best: (the winner's
    genotype, the selection's record). `time_ratio` replaces the baseline timer (tests)."""
    folder = run.path / "candidates"
    table_path = run.path / "candidates.json"
    measured = Measured(cfg, run, target, num_classes, time_ratio) if cfg.sample_measure else None
    screened = None
    if cfg.sample_prefilter:  # the draws one-shot scores on a trained supernet rank best
        from workbench.nas.one_shot import prefilter

        drawn, screened = prefilter(cfg, supernet, num_classes, lut, float(target["ms"]), measured,
                                    store=run.path / PREFILTER)
    else:
        drawn = draw_candidates(cfg, supernet, num_classes, lut, float(target["ms"]), measured)
    entries = []
    for index, (draw, genotype) in enumerate(drawn):
        path = folder / f"c{index:02d}.json"
        if not path.exists():
            save_genotype(genotype, path)
        entries.append({"candidate": index, "draw": draw, "genotype": str(path.relative_to(run.path)),
                        "price_ms": genotype.expected_latency_ms,
                        "price_vs_target_pct": round(100 * (genotype.expected_latency_ms / target["ms"] - 1), 2),
                        "scores": {}})
        if measured is not None:
            entries[-1]["measured_vs_target_pct"] = measured.store[str(draw)]["miss_pct"]
        if screened is not None:
            entries[-1]["one_shot_miou"] = screened["scores"][str(draw)]
    truncate_jsonl(run.metrics_path, lambda r: False)  # rungs are re-logged from the candidates' records
    alive = list(range(len(entries)))
    for rung, epochs in enumerate(cfg.sample_rungs):
        scores = {}
        for i in alive:
            scores[i] = train_candidate(cfg, folder / f"c{i:02d}.json", folder / f"r{rung}-c{i:02d}", epochs)
            entries[i]["scores"][str(rung)] = round(scores[i], 6)
            atomic_write_json(table_path, {"target_ms": target["ms"], "rungs": list(cfg.sample_rungs),
                                           "candidates": entries, **({"prefilter": screened} if screened else {})})
        best = survivors(scores, 1.0)[0]
        last_rung = rung == len(cfg.sample_rungs) - 1
        run.log_metrics({"epoch": rung, "phase": "select", "rung_epochs": epochs, "candidates": len(alive),
                         "best_candidate": best, "best_score": scores[best],
                         "median_score": sorted(scores.values())[len(scores) // 2],
                         "expected_latency_ms": entries[best]["price_ms"]})
        log.info("rung %d (%d epochs): %d candidates, best c%02d held-out mIoU %.4f", rung, epochs, len(alive),
                 best, scores[best])
        alive = [best] if last_rung else survivors(scores, cfg.sample_keep)
    winner = alive[0]
    genotype = load_genotype(folder / f"c{winner:02d}.json")
    summary = {"winner": winner, "draw": entries[winner]["draw"], "score": entries[winner]["scores"],
               "candidates": len(entries), "rungs": list(cfg.sample_rungs), "keep": cfg.sample_keep,
               "holdout": cfg.sample_holdout, "recipe": cfg.sample_recipe}
    if measured is not None:
        summary.update({"measured_miss_pct": entries[winner]["measured_vs_target_pct"],
                        "timings": len(measured.store)})
    if screened is not None:
        summary["prefilter"] = {"supernet": screened["supernet"], "drawn": screened["drawn"],
                                "one_shot_miou": entries[winner]["one_shot_miou"]}
    return genotype, summary

