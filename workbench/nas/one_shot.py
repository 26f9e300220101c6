"""One-shot selection (`strategy: one_shot`): train a single-path supernet, then score candidates
priced near the target on its shared weights and keep the best.

Why: a supernet trained on single sampled paths (`weight_paths: sampled`) for long enough ranks
networks as retraining them does, where the relaxed supernet of the gradient search does not
(benchmarks/results/search_length.md: Kendall tau +0.28 after 64,000 training images, +0.06 after
16,000, -0.13 for the relaxed supernets). Scoring a candidate then costs seconds, not a training run
(Guo et al. 2020, "Single Path One-Shot NAS"; Yu et al. 2020 on why the ranking is the thing to check).

The candidates are `selection.draw_candidates`' (the `sample_*` band, count and optional measured
gate). Each runs alone on the trained supernet (`exact_weights`), its batch-norm statistics
re-estimated on `one_shot_calib` images of the weight half (reset, then a cumulative average), and
is scored (mIoU) on the architecture half, which single-path training never trains on. The
search's own supernet is not changed (a copy is scored). `candidates.json` records every score.
"""

from __future__ import annotations

import copy
import logging

import torch
from torch.utils.data import DataLoader, Dataset, Subset

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


def select_one_shot(search, w_data: Dataset, a_data: Dataset, measured=None) -> tuple[Genotype, dict]:
    """Score the priced candidates on `search`'s trained supernet: (the best one's genotype, the
    selection's record). `measured`: selection's timing gate (`sample_measure`), or None."""
    from workbench.nas.selection import draw_candidates

    cfg, run, device = search.cfg, search.run, search.device
    drawn = draw_candidates(cfg, search.model, search.num_classes, search.lut, float(search.target["ms"]), measured)
    gen = torch.Generator().manual_seed(cfg.seed)
    picks = torch.randperm(len(w_data), generator=gen)[: cfg.one_shot_calib].tolist()
    calib = [x.to(device) for x, _ in DataLoader(Subset(w_data, picks), batch_size=cfg.batch_size)]
    held_out = DataLoader(a_data, batch_size=cfg.batch_size)  # read per candidate, not held in memory
    model = copy.deepcopy(search.model)
    entries = []
    for index, (draw, genotype) in enumerate(drawn):
        weights = model.exact_weights(genotype.body)
        recalibrate_bn(model, weights, calib)
        score = one_shot_miou(model, weights, held_out, search.num_classes)
        entries.append({"candidate": index, "draw": draw, "one_shot_miou": round(score, 6),
                        "price_ms": genotype.expected_latency_ms,
                        "price_vs_target_pct": round(100 * (genotype.expected_latency_ms / search.target["ms"] - 1), 2),
                        "genotype": genotype.to_dict()})
        if measured is not None:
            entries[-1]["measured_vs_target_pct"] = measured.store[str(draw)]["miss_pct"]
        log.info("candidate %d (draw %d, %.2f ms): one-shot mIoU %.4f", index, draw, genotype.expected_latency_ms,
                 score)
    best = max(range(len(entries)), key=lambda i: (entries[i]["one_shot_miou"], -i))
    atomic_write_json(run.path / "candidates.json", {"target_ms": search.target["ms"], "strategy": "one_shot",
                                                     "calib_images": len(picks), "held_out_images": len(a_data),
                                                     "winner": best, "candidates": entries})
    summary = {"winner": best, "draw": entries[best]["draw"], "one_shot_miou": entries[best]["one_shot_miou"],
               "candidates": len(entries)}
    if measured is not None:
        summary["measured_miss_pct"] = entries[best]["measured_vs_target_pct"]
    return drawn[best][1], summary
