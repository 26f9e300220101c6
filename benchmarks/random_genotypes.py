"""Random architectures from a preset's space: the control a searched network must beat.

Random architecture parameters (N(0, 2^2), the supernet's own `random_bodies`) derived exactly as
a search derives its genotype, at the preset's widths. Li & Talwalkar (2019) showed random
architectures from a good space are a strong baseline; a searched network that does not beat them
at equal latency owes its accuracy to the space, not to the search.

    python benchmarks/random_genotypes.py --preset autortnet --count 8 --seed 123 \
        --set input_size=128x256 crop_size=128x256 dataset=camvid --out benchmarks/results/random_genotypes
"""

from __future__ import annotations

import argparse
from pathlib import Path

from workbench.config import parse_overrides
from workbench.nas.genotypes import save_genotype
from workbench.nas.search import build_supernet, make_genotype, resolve_config
from workbench.nas.search_data import NUM_CLASSES


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="autortnet")
    p.add_argument("--count", type=int, default=8)
    p.add_argument("--seed", type=int, default=123)
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="search config fields")
    p.add_argument("--out", default="benchmarks/results/random_genotypes")
    args = p.parse_args()
    cfg = resolve_config({"preset": args.preset, **parse_overrides(args.set)})
    classes = NUM_CLASSES[cfg.dataset]
    for i, body in enumerate(build_supernet(cfg, classes).random_bodies(args.count, seed=args.seed)):
        path = save_genotype(make_genotype(cfg, body, classes), Path(args.out) / f"{args.preset}-random{i}.json")
        print(path)


if __name__ == "__main__":
    main()
