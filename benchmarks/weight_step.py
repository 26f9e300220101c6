"""What one weight step of a search costs, by what it trains: relaxed or one sampled network.

Four step kinds on one supernet and one fixed batch, timed round-robin in one process (each round
runs every kind once, so load hits all alike), median over rounds:

- `relaxed_alpha_grad`: the relaxed supernet with the alphas in the graph (the weight step before
  2026-12-05, which computed an alpha gradient its optimizer never used);
- `relaxed`: the same with the relaxed weights as constants (today's `weight_paths: relaxed`);
- `one_hot_dense`: one sampled network's one-hot weights as tensors (every op runs, multiplied by 0);
- `sampled_exact`: the same networks through `exact_weights` (today's `weight_paths: sampled`).

The networks are drawn once (`random_bodies`, seed 0) and cycled, so every round sees the same ones.

    python benchmarks/weight_step.py [--config SEARCH/config.json | --preset autortnet] [--threads 2]
        [--rounds 8] [--batch 4] [--out benchmarks/results/weight_step.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workbench.config import from_dict  # noqa: E402
from workbench.device import cpu_model  # noqa: E402
from workbench.nas.presets import SearchConfig, upgrade_stored  # noqa: E402
from workbench.nas.search import build_supernet, resolve_config  # noqa: E402

KINDS = ("relaxed_alpha_grad", "relaxed", "one_hot_dense", "sampled_exact")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, help="a search's config.json (its space and sizes)")
    ap.add_argument("--preset", default="autortnet", help="used when --config is not given")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/weight_step.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.config:
        cfg = from_dict(SearchConfig, upgrade_stored(json.loads(args.config.read_text())), source=str(args.config))
    else:
        cfg = resolve_config({"preset": args.preset})
    torch.manual_seed(0)
    model = build_supernet(cfg, 11).train()
    h, w = cfg.crop_size
    x, y = torch.randn(args.batch, 3, h, w), torch.randint(0, 11, (args.batch, h, w))
    bodies = model.random_bodies(args.rounds, seed=0)
    exact = [model.exact_weights(b) for b in bodies]
    dense = [type(e)(list(e), e.path, e.scale) if hasattr(e, "path") else [torch.tensor(c) for c in e] for e in exact]

    def step(kind: str, i: int) -> float:
        model.zero_grad(set_to_none=True)
        if kind == "relaxed_alpha_grad":
            weights = model.arch_weights(sample=True)
        elif kind == "relaxed":
            with torch.no_grad():
                weights = model.arch_weights(sample=True)
        else:
            weights = (dense if kind == "one_hot_dense" else exact)[i % len(exact)]
        t0 = time.perf_counter()
        F.cross_entropy(model(x, weights), y).backward()
        return time.perf_counter() - t0

    for kind in KINDS:  # warm-up
        step(kind, 0)
    times: dict[str, list[float]] = {k: [] for k in KINDS}
    for r in range(args.rounds):
        for kind in KINDS:
            times[kind].append(step(kind, r))
    med = {k: statistics.median(v) for k, v in times.items()}
    out = {"date": time.strftime("%Y-%m-%d"), "cpu": cpu_model(), "torch": torch.__version__,
           "threads": args.threads, "rounds": args.rounds, "batch": args.batch, "crop": [h, w],
           "config": str(args.config) if args.config else args.preset, "space": cfg.space.name,
           "command": "python benchmarks/weight_step.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "median_s": med, "seconds": times,
           "ratios": {"relaxed_alpha_grad / relaxed": med["relaxed_alpha_grad"] / med["relaxed"],
                      "relaxed / sampled_exact": med["relaxed"] / med["sampled_exact"],
                      "one_hot_dense / sampled_exact": med["one_hot_dense"] / med["sampled_exact"]}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({"median_s": med, "ratios": out["ratios"]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
