"""Where the latency gradient lands: on `none` (which derivation never picks) before the fix, on
derivable ops after it. Pure arithmetic on a latency table, no timing.

"Before" prices the supernet with the op weights softmaxed over every op, `none` included at
zero cost (the formula before the fix). "After" is `workbench.nas.latency.expected`: weights
renormalized over the derivable ops. For random architecture weights of a preset's supernet, this
reports the share of the latency term's gradient that falls on `none`. Then it takes
`--steps` Adam steps on the latency term alone, from the same start, and prices the network that
derivation would pick (per edge the strongest derivable op), to show whether the pressure moved the
derived network at all.

    python benchmarks/none_leak.py --lut LUT.json --preset lgcnet --size 128x256 \
        --json benchmarks/results/none_leak.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
from pathlib import Path

import torch

from workbench.nas.latency.table import load_lut
from workbench.nas.operations import NONE
from workbench.nas.search import build_supernet, resolve_config


def priced(model, weights: list[torch.Tensor], before: bool) -> torch.Tensor:
    w = torch.cat(weights)
    if before:  # every op's softmax weight, none costing 0: what the term was before the fix
        return model.fixed_ms + (w * model.table).sum()
    return model(weights)


def derived_ms(model, weights: list[torch.Tensor], none: int) -> float:
    w = torch.cat(weights).detach().clone()
    w[:, none] = -1.0  # derivation never picks none
    pick = w.argmax(dim=1)
    return float(model.fixed_ms + model.table[torch.arange(len(pick)), pick].sum())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lut", required=True, help="latency_lut.json of the preset's space at --size")
    p.add_argument("--preset", default="lgcnet")
    p.add_argument("--size", default="128x256")
    p.add_argument("--dataset", default="camvid")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--lr", type=float, default=0.03)
    p.add_argument("--json", default="benchmarks/results/none_leak.json")
    args = p.parse_args()
    h, w = (int(v) for v in args.size.split("x"))
    cfg = resolve_config({"preset": args.preset, "input_size": [h, w], "dataset": args.dataset})
    supernet = build_supernet(cfg, 11 if args.dataset == "camvid" else 19)
    model = supernet.latency_model(load_lut(args.lut))
    ops = list(model.ops)
    none = ops.index(NONE)
    rows = []
    for seed in range(args.seeds):
        row = {"seed": seed}
        for name, before in (("before", True), ("after", False)):
            gen = torch.Generator().manual_seed(seed)
            alphas = torch.randn(model.table.shape[0], len(ops), generator=gen).mul_(1e-3).requires_grad_()
            start = None
            opt = torch.optim.Adam([alphas], lr=args.lr, betas=(0.5, 0.999))
            for step in range(args.steps + 1):
                weights = [alphas.softmax(dim=-1)]
                loss = priced(model, weights, before)
                opt.zero_grad()
                loss.backward()
                if step == 0:
                    g = alphas.grad.abs()
                    start = {"none_share_of_gradient": float(g[:, none].sum() / g.sum()),
                             "derived_ms": derived_ms(model, weights, none)}
                if step < args.steps:
                    opt.step()
            row[name] = {**start, "derived_ms_after_steps": derived_ms(model, [alphas.softmax(-1)], none),
                         "none_weight_after_steps": float(alphas.softmax(-1)[:, none].mean())}
        rows.append(row)
        print(json.dumps(row), flush=True)

    def mean(side: str, key: str) -> float:
        return statistics.mean(r[side][key] for r in rows)

    summary = {side: {k: mean(side, k) for k in ("none_share_of_gradient", "derived_ms", "derived_ms_after_steps",
                                                  "none_weight_after_steps")} for side in ("before", "after")}
    out = {"date": datetime.date.today().isoformat(), "preset": args.preset, "size": [h, w], "lut": args.lut,
           "steps": args.steps, "lr": args.lr, "ops": ops, "summary": summary, "seeds": rows,
           "command": f"python benchmarks/none_leak.py --lut {args.lut} --preset {args.preset} --size {args.size} "
                      f"--seeds {args.seeds} --steps {args.steps}"}
    Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
