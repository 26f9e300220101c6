"""One-shot selection (`strategy: one_shot`): train a single-path supernet, then score candidates
priced near the target on its shared weights and keep the best.

Why: a supernet trained on single sampled paths (`weight_paths: sampled`) for long enough ranks
networks as retraining them does, where the relaxed supernet of the gradient search does not
(benchmarks/results/search_length.md: Kendall tau +0.28 after 64,000 training images, +0.06 after
16,000, -0.13 for the relaxed supernets). Scoring a candidate then costs seconds, not a training run
(Guo et al. 2020, "Single Path One-Shot NAS"; Yu et al. 2020 on why the ranking is the thing to check).

The candidates are `selection.draw_candidates`' (the `sample_*` band and count). Each runs alone on
the trained supernet (`exact_weights`), its batch-norm statistics re-estimated on `one_shot_calib`
images of the weight half (reset, then a cumulative average), and is scored (mIoU) on the
architecture half, which single-path training never trains on (`score_candidates`; a copy of the
supernet is scored). With `sample_measure` the candidates are timed after scoring, best score
first, and the first measured within the band is kept (a timing, about 20 s here, costs several scores).
`candidates.json` records every score and timing.

`one_shot_supernet` names a finished single-path search whose supernet is scored instead of
training one (train once, select many); `prefilter` uses the same scores to choose which priced
draws `strategy: sample` trains (`sample_prefilter`).
"""

from __future__ import annotations

import copy
import hashlib
import logging
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from workbench.errors import ConfigError
from workbench.jsonio import atomic_write_json
from workbench.nas.genotypes import Genotype

log = logging.getLogger(__name__)


def recalibrate_bn(model: torch.nn.Module, weights, batches: list[torch.Tensor]) -> None:
    """Every batch norm's statistics re-estimated for the network `weights` select: reset, then the
    cumulative average over `batches` (momentum None); the model is left in eval mode."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        for x in batches:
            model(x, weights)
    model.eval()


@torch.no_grad()
def one_shot_miou(model: torch.nn.Module, weights, batches, num_classes: int) -> float:
    """mIoU of the network `weights` select over (images, labels) batches (a list or a DataLoader)."""
    from workbench.metrics.segmentation import ConfusionMatrix

    cm = ConfusionMatrix(num_classes)
    device = next(model.parameters()).device
    for x, y in batches:
        cm.update(model(x.to(device), weights).argmax(1).cpu(), y)
    miou = cm.compute()["miou"]
    return 0.0 if miou is None or miou != miou else float(miou)


# settings that decide the supernet's weights' shapes and meaning, and which images it trained on
_SAME_AS_SUPERNET = ("preset", "space", "dataset", "data_root", "train_split")


def check_supernet(cfg, path: str | Path) -> dict:
    """The provenance (path, the seed whose halves it trained on, epochs, images) of the finished
    `weight_paths: sampled` search run at `path`, checked against this search's `cfg`: a run of
    another space or data, or not finished, is one ConfigError, raised before anything is written."""
    from workbench.config import from_dict, to_dict
    from workbench.nas.presets import SearchConfig, upgrade_stored
    from workbench.runs import RunDir

    source = RunDir(path)
    if not source.config_path.exists() or source.record().get("kind") != "search":
        raise ConfigError(f"one_shot_supernet: {path}: not a search run directory (no search config.json)")
    try:
        stored = from_dict(SearchConfig, upgrade_stored(source.read_config()))
    except (ConfigError, ValueError) as exc:
        raise ConfigError(f"one_shot_supernet: {path}: config.json: {exc}") from None
    if stored.weight_paths != "sampled":
        raise ConfigError(f"one_shot_supernet: {path}: trained with weight_paths {stored.weight_paths!r}; only a "
                          "supernet trained on single sampled paths ranks networks one at a time")
    ours, theirs = to_dict(cfg), to_dict(stored)
    for key in _SAME_AS_SUPERNET:
        if ours[key] != theirs[key]:
            raise ConfigError(f"one_shot_supernet: {path}: its {key} is {theirs[key]!r}, this search's "
                              f"{ours[key]!r}; score on a supernet of the same space and data")
    if source.record().get("status") != "finished":
        raise ConfigError(f"one_shot_supernet: {path}: the run is {source.record().get('status')!r}, not finished")
    if not (source.checkpoint_dir / "last.pt").exists():
        raise ConfigError(f"one_shot_supernet: {path}: no checkpoints/last.pt")
    images = stored.epochs * stored.batch_size * (stored.steps_per_epoch or 0)
    return {"path": str(path), "seed": stored.seed, "epochs": stored.epochs, "images": images or None}


def load_supernet(search, path: str | Path) -> dict:
    """`check_supernet`, then its trained weights loaded into `search.model`; the provenance gains
    the checkpoint's sha256 (of the bytes loaded: the file is read once)."""
    from workbench.runs import RunDir, load_state

    provenance = check_supernet(search.cfg, path)
    checkpoint = RunDir(path).checkpoint_dir / "last.pt"
    raw = checkpoint.read_bytes()
    search.model.load_state_dict(load_state(checkpoint, data=raw)["model"])
    digest = hashlib.sha256(raw).hexdigest()
    log.info("scoring on the supernet of %s (seed %d, %d epochs)", path, provenance["seed"], provenance["epochs"])
    return {**provenance, "checkpoint_sha256": digest}


def score_candidates(cfg, model: torch.nn.Module, drawn: list, w_data: Dataset, a_data: Dataset, num_classes: int,
                     device: torch.device) -> tuple[list[float], int]:
    """One-shot mIoU of each drawn (draw, genotype) on the trained supernet `model` (a copy is
    scored): batch norm re-estimated on `one_shot_calib` weight-half images (drawn by `cfg.seed`),
    mIoU on the architecture half. Returns (scores, calibration images used)."""
    gen = torch.Generator().manual_seed(cfg.seed)
    picks = torch.randperm(len(w_data), generator=gen)[: cfg.one_shot_calib].tolist()
    calib = [x.to(device) for x, _ in DataLoader(Subset(w_data, picks), batch_size=cfg.batch_size)]
    held_out = DataLoader(a_data, batch_size=cfg.batch_size)  # read per candidate, not held in memory
    model = copy.deepcopy(model)
    scores = []
    for index, (draw, genotype) in enumerate(drawn):
        weights = model.exact_weights(genotype.body)
        recalibrate_bn(model, weights, calib)
        scores.append(one_shot_miou(model, weights, held_out, num_classes))
        log.info("candidate %d (draw %d, %.2f ms): one-shot mIoU %.4f", index, draw, genotype.expected_latency_ms,
                 scores[-1])
    return scores, len(picks)


def select_one_shot(search, w_data: Dataset, a_data: Dataset, measured=None) -> tuple[Genotype, dict]:
    """Score the priced candidates on `search`'s trained supernet: (the best one's genotype, the
    selection's record). `measured`: selection's timing gate (`sample_measure`), or None."""
    from workbench.nas.selection import draw_candidates

    cfg, run = search.cfg, search.run
    drawn = draw_candidates(cfg, search.model, search.num_classes, search.lut, float(search.target["ms"]))
    scores, calib_images = score_candidates(cfg, search.model, drawn, w_data, a_data, search.num_classes,
                                            search.device)
    entries = [{"candidate": index, "draw": draw, "one_shot_miou": round(score, 6),
                "price_ms": genotype.expected_latency_ms,
                "price_vs_target_pct": round(100 * (genotype.expected_latency_ms / search.target["ms"] - 1), 2),
                "genotype": genotype.to_dict()} for index, ((draw, genotype), score) in enumerate(zip(drawn, scores))]
    ranked = sorted(range(len(entries)), key=lambda i: (-entries[i]["one_shot_miou"], i))
    best = ranked[0] if measured is None else _best_measured(cfg, ranked, entries, drawn, measured)
    atomic_write_json(run.path / "candidates.json", {"target_ms": search.target["ms"], "strategy": "one_shot",
                                                     "calib_images": calib_images, "held_out_images": len(a_data),
                                                     "winner": best, "candidates": entries})
    summary = {"winner": best, "draw": entries[best]["draw"], "one_shot_miou": entries[best]["one_shot_miou"],
               "candidates": len(entries)}
    if measured is not None:
        summary.update(measured_miss_pct=entries[best]["measured_vs_target_pct"], score_rank=ranked.index(best) + 1,
                       timings=sum("measured_vs_target_pct" in e for e in entries))
    return drawn[best][1], summary


def prefilter(cfg, supernet: torch.nn.Module, num_classes: int, lut: dict, target_ms: float,
              measured=None, store: Path | None = None) -> tuple[list, dict]:
    """`strategy: sample` with `sample_prefilter`: draw that many priced candidates, score each
    one-shot on the trained supernet `one_shot_supernet`, and hand the best `sample_candidates`
    (with `measured`, the best-scored measured within the band) to the training rungs. Returns
    (the kept draws, best score first; the prefilter's record).

    `store` (the run's prefilter.json) keeps the record and the kept genotypes, so a resumed
    selection reads them back instead of scoring every draw again (minutes); it is refused if the
    supernet's checkpoint changed since (its sha256), as a resume that mixed two supernets would be."""
    import dataclasses
    from types import SimpleNamespace

    from workbench.device import resolve_device
    from workbench.nas.search_data import build_datasets, split_halves
    from workbench.nas.selection import draw_candidates

    if store is not None and store.exists():
        return _stored_prefilter(cfg, store)
    drawn = draw_candidates(dataclasses.replace(cfg, sample_candidates=cfg.sample_prefilter), supernet, num_classes,
                            lut, target_ms)
    device = resolve_device(cfg.device)
    holder = SimpleNamespace(cfg=cfg, model=copy.deepcopy(supernet).to(device))
    source = load_supernet(holder, cfg.one_shot_supernet)
    w_data, a_data = split_halves(build_datasets(cfg)[0], source["seed"])
    scores, calib_images = score_candidates(cfg, holder.model, drawn, w_data, a_data, num_classes, device)
    band = cfg.sample_band if cfg.sample_measure_band is None else cfg.sample_measure_band
    kept = []
    for i in sorted(range(len(drawn)), key=lambda i: (-scores[i], i)):
        if measured is None or abs(measured(*drawn[i]) - 1) <= band:
            kept.append(i)
        if len(kept) == cfg.sample_candidates:
            break
    record = {"supernet": source, "drawn": len(drawn), "calib_images": calib_images, "kept": [drawn[i][0] for i in kept],
              "scores": {str(draw): round(score, 6) for (draw, _), score in zip(drawn, scores)}}
    log.info("prefilter: %d of %d priced draws kept by one-shot score (%.4f-%.4f)", len(kept), len(drawn),
             min(scores[i] for i in kept), max(scores[i] for i in kept))
    if store is not None:
        atomic_write_json(store, {"record": record, "kept": [{"draw": drawn[i][0], "genotype": drawn[i][1].to_dict()}
                                                             for i in kept]})
    return [drawn[i] for i in kept], record


def _stored_prefilter(cfg, store: Path) -> tuple[list, dict]:
    """The kept draws and record an interrupted selection's prefilter wrote (see `prefilter`)."""
    from workbench.errors import CheckpointError, GenotypeError
    from workbench.jsonio import read_json
    from workbench.nas.genotypes import load_genotype
    from workbench.runs import RunDir

    try:
        saved = read_json(store)
        record, kept = saved["record"], [(int(k["draw"]), load_genotype(k["genotype"])) for k in saved["kept"]]
        scored_on = record["supernet"]["checkpoint_sha256"]
    except (ValueError, KeyError, TypeError, GenotypeError) as exc:
        raise CheckpointError(f"{store}: unreadable prefilter record ({exc.__class__.__name__}: {exc}); "
                              "start the selection again (overwrite)") from None
    checkpoint = RunDir(cfg.one_shot_supernet).checkpoint_dir / "last.pt"
    if hashlib.sha256(checkpoint.read_bytes()).hexdigest() != scored_on:
        raise ConfigError(f"one_shot_supernet: {cfg.one_shot_supernet}: its checkpoint changed since this selection "
                          f"scored its draws ({store}); a resume would mix two supernets: start it again (overwrite)")
    log.info("prefilter: %d kept draws read back from %s (not scored again)", len(kept), store)
    return kept, record


def _best_measured(cfg, ranked: list[int], entries: list[dict], drawn, measured) -> int:
    """The first of `ranked` (best score first) measured within the band; each timing recorded."""
    band = cfg.sample_band if cfg.sample_measure_band is None else cfg.sample_measure_band
    for i in ranked:
        draw = entries[i]["draw"]
        if str(draw) not in measured.store and len(measured.store) >= cfg.sample_measure_max:
            break
        ratio = measured(draw, drawn[i][1])
        entries[i]["measured_vs_target_pct"] = measured.store[str(draw)]["miss_pct"]
        if abs(ratio - 1) <= band:
            return i
    seen = ", ".join(f"{e['measured_vs_target_pct']:+.1f} %" for e in entries if "measured_vs_target_pct" in e)
    raise ConfigError(f"sample_measure: no candidate measured within ±{100 * band:.0f} % of the target in "
                      f"{len(measured.store)} timings (sample_measure_max {cfg.sample_measure_max}; measured: "
                      f"{seen}); widen sample_measure_band, draw more candidates or move the target")
