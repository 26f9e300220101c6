"""Does the search's supernet rank architectures as retraining them alone does?

Five declared attempts at the FPN level left the gradient search no better than the hand-designed
network, while selection by training (each candidate trained briefly on its own) won it. The last
attempt (`gradient_fpn_archbatch.yaml`) made the alphas decide on a clean architecture gradient and
still derived networks that spread 0.387-0.449 when retrained. What is left to blame is the step
every weight-sharing search takes on faith: that a network's quality *inside the supernet* ranks
networks as they rank when retrained alone (Yu et al. 2020, "Evaluating the search phase of NAS").
This script measures that rank correlation on the networks the project has already retrained.

For each finished search (its `checkpoints/last.pt`: shared weights and alphas) and each genotype of
the same space with a retrained mIoU (`--compare`, the committed `study_compare.py` records):

- `one_shot_miou`: the supernet run with the one-hot weights that select exactly that genotype
  (`encode_body`, decode_body's inverse), its batch-norm statistics re-estimated for that network
  on `--calib-images` training images (reset, then a cumulative average, as single-path one-shot
  NAS does), scored on the whole val split the retrains were scored on;
- `alpha_logprob`: the log-probability the supernet's final relaxed weights give the genotype (the
  path's choices, each selected edge's op and the aggregation stride): what the gradient search
  believes of it.

Against the retrained mIoU: Kendall's tau-b (`scipy.stats.kendalltau`) with a bootstrap 95 % interval
over genotypes (2,000 resamples, seed 0), per supernet and for the mean score over supernets; the
supernets' agreement with each other (mean pairwise tau of their one-shot scores); and the noise
ceiling: about the tau a perfect ranker would reach against one retrain per network (simulated as
two retrains' agreement, a little below it), from the retrained values and the same-architecture
seed spread (the hand-designed baseline's std over seeds in the same records).

Declared before its first run (2026-12-05, 2-vCPU Intel Xeon family 6 model 167; this file's commit
is the record; nothing is tuned after it):
  (1) "the supernet ranks networks as retraining does" if the tau of the mean one-shot score over the
      supernets against retrained mIoU has its 95 % interval above 0; "it does not" if the interval's
      upper end is below half the noise ceiling (a ranker half as good as a perfect one ruled out);
      otherwise inconclusive.
  (2) the same rule for the mean alpha log-probability (how the gradient search itself ranks them).
  (3) descriptive: each supernet's tau, the supernets' agreement with each other, and where each
      supernet's own derived network falls in its one-shot ranking.
  Added after the declaration (after the first supernet's taus had been read), descriptive only,
  in no verdict: `relaxed_miou`, the
  relaxed supernet's own val mIoU as the search scored it (stored statistics), beside its derived
  network's one-shot mIoU (how much of the supernet's accuracy belongs to the mixture).

    python benchmarks/supernet_ranking.py runs/archbatch/level-fpn-archbatch/*/search \\
        --compare 'benchmarks/results/search_length/arch_batches/compare_run1.json:ab13:benchmarks/results/search_length/arch_batches/genotypes/{name}.json' \\
        ... --json supernet_ranking.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy import stats
from torch.utils.data import DataLoader, Subset

from workbench.config import from_dict
from workbench.data.segmentation import build_seg_dataset
from workbench.errors import CheckpointError, ConfigError, WorkbenchError
from workbench.jsonio import atomic_write_json
from workbench.nas.genotypes import load_genotype
from workbench.nas.one_shot import one_shot_miou, recalibrate_bn
from workbench.nas.presets import SearchConfig, upgrade_stored
from workbench.nas.search import build_supernet
from workbench.nas.spaces.hyper.trellis import DOWN, local_probs
from workbench.runs import RunDir


def load_supernet(search_dir: Path) -> tuple[torch.nn.Module, SearchConfig, int]:
    """A finished search's supernet with its last checkpoint's weights and alphas (loaded as the
    workbench loads every checkpoint: tensors only)."""
    run = RunDir(search_dir)
    if not run.config_path.is_file() or not run.record_path.is_file():
        raise ConfigError(f"{search_dir}: not a readable search run directory (no config.json or run_record.json)")
    cfg = from_dict(SearchConfig, upgrade_stored(run.read_config()), source=str(run.config_path))
    if cfg.space.name != "hyper":
        raise ConfigError(f"{search_dir}: space {cfg.space.name!r}; this script reads AutoRTNet ('hyper') searches")
    state = run.load_checkpoint()
    if state is None:
        raise CheckpointError(f"{run.checkpoint_dir / 'last.pt'}: no checkpoint")
    num_classes = int(run.record()["num_classes"])
    model = build_supernet(cfg, num_classes)
    model.load_state_dict(state["model"])
    return model, cfg, num_classes


def retrained(specs: list[str]) -> tuple[dict[str, dict], list[float]]:
    """{name: {"genotype", "miou", "arm"}} from `record:arm:genotype-pattern` specs, and the seed
    values of every other arm whose runs share one architecture (the baselines)."""
    nets, baseline = {}, set()
    for spec in specs:
        if spec.count(":") < 2:
            raise ConfigError(f"--compare: {spec!r}: expected RECORD:ARM:GENOTYPE_PATTERN")
        record, arm, pattern = spec.split(":", 2)
        try:
            arms = json.loads(Path(record).read_text())["stats"]
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(f"{record}: not a study_compare record ({exc})") from None
        if arm not in arms:
            raise ConfigError(f"--compare: {record} has no arm {arm!r} (has {', '.join(arms)})")
        for run in arms[arm]["runs"]:
            name = Path(run["run"]).parent.name
            seed = re.search(r"-s(\d+)$", name)
            path = Path(pattern.format(name=name, seed=seed.group(1) if seed else ""))
            if not path.is_file():
                raise ConfigError(f"--compare: {path}: no genotype for {name}")
            nets.setdefault(name, {"genotype": str(path), "miou": float(run["miou"]), "arm": arm})
        for other, st in arms.items():
            # a set: records share runs, and a seed retrained in another study on the same machine
            # gives the same value bit for bit (a replica, not another draw of the seed noise)
            if other != arm and other.startswith(("fpn", "pspnet")):
                baseline.update(float(r["miou"]) for r in st["runs"])
    return nets, sorted(baseline)


@torch.no_grad()
def alpha_logprob(model, onehot) -> float:
    """log p(genotype) under the supernet's relaxed weights: each layer's path choice with the
    probability the relaxed network gives it there (`local_probs`: masked to the choices that still
    reach the output stride, renormalized; what the decoding's Viterbi scores), the chosen op on
    every selected edge, and the aggregation stride (a sum of logs)."""
    relaxed = model.arch_weights(sample=False)
    local = local_probs(model.space, relaxed.path)
    total, scale = 0.0, 0
    for layer, row in enumerate(onehot.path):
        choice = int(row.argmax())
        total += math.log(max(float(local[layer, scale][choice]), 1e-30))
        scale += choice == DOWN
    for w, r in zip(onehot, relaxed):
        total += float((w * r.clamp_min(1e-30).log()).sum())
    if onehot.scale is not None:
        total += float((onehot.scale * relaxed.scale.clamp_min(1e-30).log()).sum())
    return total


def tau_with_interval(x: list[float], y: list[float], resamples: int = 2000) -> dict:
    x, y = np.asarray(x), np.asarray(y)
    tau = stats.kendalltau(x, y).statistic
    rng = np.random.default_rng(0)
    boot = []
    for _ in range(resamples):
        idx = rng.integers(0, len(x), len(x))
        t = stats.kendalltau(x[idx], y[idx]).statistic
        if not math.isnan(t):
            boot.append(t)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return {"tau": float(tau), "ci95": [float(lo), float(hi)], "p": float(stats.kendalltau(x, y).pvalue),
            "spearman": float(stats.spearmanr(x, y).statistic), "n": len(x)}


def noise_ceiling(values: list[float], noise_std: float, draws: int = 2000) -> float:
    """Mean tau between the retrained values and the same values re-drawn with one more retrain's
    seed noise: the test-retest agreement of two retrains, a little below what a perfect ranker
    scores against one retrain per network (so half of it sets the bar for "does not rank" low, if anything)."""
    rng, v = np.random.default_rng(1), np.asarray(values)
    return float(np.mean([stats.kendalltau(v, v + rng.normal(0, math.sqrt(2) * noise_std, len(v))).statistic
                          for _ in range(draws)]))


def verdict(interval: list[float], ceiling: float) -> str:
    if interval[0] > 0:
        return "ranks networks as retraining does"
    if interval[1] < ceiling / 2:
        return "does not rank networks as retraining does"
    return "inconclusive"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("searches", nargs="+", type=Path, help="finished AutoRTNet search run directories")
    ap.add_argument("--compare", action="append", required=True,
                    help="RECORD:ARM:GENOTYPE_PATTERN ({name} = the run's directory name, {seed} its seed)")
    ap.add_argument("--calib-images", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, required=True, help="results (rewritten after every supernet; resumed)")
    args = ap.parse_args(argv)
    if args.calib_images < args.batch or args.batch < 1:
        print("error: --calib-images: needs at least one batch of --batch images", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    try:
        nets, baseline = retrained(args.compare)
        genotypes = {name: load_genotype(n["genotype"]) for name, n in nets.items()}
        out = json.loads(args.json.read_text()) if args.json.is_file() else {}
        out.update({"date": time.strftime("%Y-%m-%d"), "command": " ".join(sys.argv), "networks": nets,
                    "baseline_seed_values": baseline})
        out.setdefault("supernets", {})
        for search_dir in args.searches:
            if str(search_dir) in out["supernets"]:
                continue
            model, cfg, num_classes = load_supernet(search_dir)
            val = list(DataLoader(build_seg_dataset(cfg.dataset, cfg.data_root, cfg.val_split, train=False),
                                  batch_size=args.batch))
            # the relaxed supernet as the search scored it (its own weights and stored statistics)
            relaxed = one_shot_miou(model.eval(), model.arch_weights(sample=False), val, num_classes)
            train = build_seg_dataset(cfg.dataset, cfg.data_root, cfg.train_split, train=False)
            perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[: args.calib_images]
            calib = [x for x, _ in DataLoader(Subset(train, perm.tolist()), batch_size=args.batch)]
            own = load_genotype(search_dir / "genotype.json").body.to_dict()
            rows, t0 = {}, time.time()
            for name, g in genotypes.items():
                onehot = model.exact_weights(g.body)  # encode_body, run without what it leaves out
                recalibrate_bn(model, onehot, calib)
                rows[name] = {"one_shot_miou": one_shot_miou(model, onehot, val, num_classes),
                              "alpha_logprob": alpha_logprob(model, onehot),
                              "own_derived": g.body.to_dict() == own}
                print(f"{search_dir.parent.name} {name}: one-shot {rows[name]['one_shot_miou']:.4f} "
                      f"logp {rows[name]['alpha_logprob']:.2f} retrained {nets[name]['miou']:.4f}", flush=True)
            out["supernets"][str(search_dir)] = {"scores": rows, "relaxed_miou": relaxed,
                                                 "seconds": round(time.time() - t0, 1),
                                                 "val_images": sum(len(y) for _, y in val)}
            atomic_write_json(args.json, out)
    except WorkbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out["analysis"] = analyse(out)
    atomic_write_json(args.json, out)
    print(json.dumps(out["analysis"], indent=1))
    return 0


def analyse(out: dict) -> dict:
    """The declared verdicts (module docstring) from the scores in `out`."""
    names = sorted(out["networks"])
    miou = [out["networks"][n]["miou"] for n in names]
    sups = list(out["supernets"].values())
    base = out["baseline_seed_values"]
    noise = float(np.std(base, ddof=1)) if len(base) > 1 else 0.0
    ceiling = noise_ceiling(miou, noise)
    res = {"networks": len(names), "retrain_noise_std": noise, "retrained_spread_std": float(np.std(miou, ddof=1)),
           "noise_ceiling_tau": ceiling, "per_supernet": {}}
    for key in ("one_shot_miou", "alpha_logprob"):
        per = [[s["scores"][n][key] for n in names] for s in sups]
        mean = np.mean(per, axis=0).tolist()
        res[key] = {**tau_with_interval(mean, miou), "supernets": len(per)}
        res[key]["verdict"] = verdict(res[key]["ci95"], ceiling)
        res[key]["supernet_agreement_tau"] = (float(np.mean([stats.kendalltau(a, b).statistic
                                                              for a, b in itertools.combinations(per, 2)]))
                                              if len(per) > 1 else None)
    for path, s in out["supernets"].items():
        one = [s["scores"][n]["one_shot_miou"] for n in names]
        order = sorted(names, key=lambda n: -s["scores"][n]["one_shot_miou"])
        own = [n for n in names if s["scores"][n]["own_derived"]]
        res["per_supernet"][path] = {
            "one_shot": tau_with_interval(one, miou),
            "alpha_logprob": tau_with_interval([s["scores"][n]["alpha_logprob"] for n in names], miou),
            "one_shot_range": [min(one), max(one)],
            "relaxed_miou": s.get("relaxed_miou"),
            "own_derived_one_shot": {n: s["scores"][n]["one_shot_miou"] for n in own},
            "own_derived_rank": {n: order.index(n) + 1 for n in own},
            "top_pick": {"name": order[0], "retrained_miou": out["networks"][order[0]]["miou"],
                         "retrained_rank": sorted(miou, reverse=True).index(out["networks"][order[0]]["miou"]) + 1}}
    return res


if __name__ == "__main__":
    sys.exit(main())
