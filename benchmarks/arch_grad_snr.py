"""How much signal the architecture gradient carries at a search's last checkpoint.

A first-order search moves each alpha by Adam steps on the task-loss gradient of one small
architecture batch. If that gradient is mostly noise (its mean over batches small beside its
spread), each step is a coin flip and only the sum over many steps can decide an operation; a
weight decay on the alphas then forgets the older steps. This script measures both, per cell-op
alpha, at the state the search ended in (`checkpoints/last.pt`, weights and alphas as derived):

- the task-loss gradient on `--batches` architecture batches of the search's own size, drawn from
  the search's own architecture half of the data; per alpha its mean and spread over batches;
- `snr_batch_rms`: the root-mean-square signal-to-noise of one batch's gradient, with the pure-noise
  part of the sample mean taken out (E[mean^2] = mu^2 + sigma^2 / n), so 0 means pure noise; a search
  with `arch_batches` k averages k such batches per step (`decision_images`), about sqrt(k) times it;
- `noise_floor_median_snr`: what the median |mean| / spread reads for pure noise with this many
  batches (0.674 / sqrt(n)), beside the measured median;
- `weight_decay_memory_steps`: 1 / (lr x weight_decay / sqrt(v)) from the Adam state, the number of
  steps after which the decay has pulled an alpha's past moves back by 1/e (Adam adds the decay to
  the gradient before it divides by sqrt(v), and v is set by the noise).

Descriptive; it reads a finished search and writes nothing into it.

    python benchmarks/arch_grad_snr.py runs/.../search --batches 32 --json snr.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

from workbench.config import from_dict
from workbench.errors import ConfigError, WorkbenchError
from workbench.nas.latency.table import load_lut
from workbench.nas.presets import SearchConfig, upgrade_stored
from workbench.nas.search import Search
from workbench.nas.search_data import build_datasets, loader, split_halves
from workbench.runs import RunDir

# pure noise: the median of |N(0, 1/n)| is 0.6745 / sqrt(n)
HALF_NORMAL_MEDIAN = 0.6745


def summarize(grads: torch.Tensor) -> dict:
    """Signal-to-noise of per-batch gradients `grads` [batches, elements] (elements with spread)."""
    n = grads.shape[0]
    mean, std = grads.mean(0), grads.std(0)
    keep = std > 0
    mean, std = mean[keep], std[keep]
    ratio = mean.abs() / std
    excess = (ratio.pow(2) - 1.0 / n).mean().item()
    return {"batches": n, "elements": int(keep.sum()),
            "median_abs_mean": float(mean.abs().median()), "median_std": float(std.median()),
            "median_snr": float(ratio.median()), "noise_floor_median_snr": HALF_NORMAL_MEDIAN / math.sqrt(n),
            "snr_batch_rms": math.sqrt(max(excess, 0.0)),
            "sign_agreement_consecutive": float((torch.sign(grads[1:]) == torch.sign(grads[:-1])).float().mean())}


def adam_memory_steps(optimizer_state: dict) -> float | None:
    """Median over alphas of 1 / (lr * weight_decay / sqrt(v_hat)); None without weight decay."""
    group = optimizer_state["param_groups"][0]
    lr, wd, beta2 = group["lr"], group["weight_decay"], group["betas"][1]
    if not wd:
        return None
    rates = []
    for state in optimizer_state["state"].values():
        v_hat = state["exp_avg_sq"] / (1 - beta2 ** float(state["step"]))
        rates.append((lr * wd / (v_hat.sqrt() + group["eps"])).flatten())
    return 1.0 / float(torch.cat(rates).median())


def gradient_samples(search_dir: Path, batches: int) -> tuple[torch.Tensor, dict]:
    """Per-batch task-loss gradients on the cell-op alphas of a finished search, and its facts."""
    try:
        stored = json.loads((search_dir / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{search_dir / 'config.json'}: unreadable ({exc})") from None
    cfg = from_dict(SearchConfig, upgrade_stored(stored), source=str(search_dir / "config.json"))
    state = RunDir(search_dir).load_checkpoint()  # as the workbench loads checkpoints: tensors only
    train, _, num_classes = build_datasets(cfg)
    scratch = RunDir(Path(tempfile.gettempdir()) / "arch_grad_snr")  # the Search needs one; never written into
    search = Search(cfg, scratch, load_lut(search_dir / "latency_lut.json"), num_classes, torch.device("cpu"))
    search.load(state)
    model = search.model
    model.train()  # as in the architecture step (batch statistics) ...
    for module in model.modules():  # ... without moving the running statistics
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.momentum = 0.0
    params = [p for name, p in model.arch.named_parameters() if name.split(".")[-1].startswith("cell")]
    _, a_data = split_halves(train, cfg.seed)
    rows, epoch = [], 1000
    while len(rows) < batches:
        for images, labels in loader(a_data, cfg, epoch, 1, 0, 1):
            logits = model(images, model.arch_weights(sample=True))
            loss = F.cross_entropy(logits.float(), labels, ignore_index=255)
            grads = torch.autograd.grad(loss, params)
            rows.append(torch.cat([g.flatten() for g in grads]))
            if len(rows) == batches:
                break
        epoch += 1
    median_alpha = float(torch.cat([p.detach().flatten() for p in params]).abs().median())
    steps = [float(s["step"]) for s in state["arch_optimizer"]["state"].values()]
    facts = {"run": str(search_dir), "batch_images": cfg.batch_size, "arch_batches": cfg.arch_batches,
             "decision_images": cfg.batch_size * cfg.arch_batches, "arch_lr": cfg.arch_lr,
             "arch_weight_decay": cfg.arch_weight_decay, "architecture_steps": int(max(steps, default=0)),
             "median_abs_alpha": median_alpha, "median_weight_decay_pull": cfg.arch_weight_decay * median_alpha,
             "weight_decay_memory_steps": adam_memory_steps(state["arch_optimizer"])}
    return torch.stack(rows), facts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("searches", nargs="+", type=Path, help="finished search run directories")
    ap.add_argument("--batches", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, help="write {run: summary} here")
    args = ap.parse_args(argv)
    if args.batches < 2:
        print("error: --batches: needs at least 2", file=sys.stderr)
        return 2
    for path in args.searches:
        if not (path / "checkpoints" / "last.pt").is_file():
            print(f"error: {path}: not a finished search (no checkpoints/last.pt)", file=sys.stderr)
            return 2
    torch.set_num_threads(args.threads)
    out = {}
    try:
        for path in args.searches:
            grads, facts = gradient_samples(path, args.batches)
            out[str(path)] = {**facts, **summarize(grads)}
            print(json.dumps(out[str(path)]))
    except WorkbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        try:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(out, indent=1) + "\n")
        except OSError as exc:
            print(f"error: {args.json}: cannot write ({exc.strerror})", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
