"""Random architectures from a preset's space: the control a searched network must beat.

Random architecture parameters (N(0, 2^2), the supernet's own `random_bodies`) derived exactly as
a search derives its genotype, at the preset's widths. Li & Talwalkar (2019) showed random
architectures from a good space are a strong baseline; a searched network that does not beat them
at equal latency owes its accuracy to the space, not to the search.

    python benchmarks/random_genotypes.py --preset autortnet --count 8 --seed 123 \
        --set input_size=128x256 crop_size=128x256 dataset=camvid --out benchmarks/results/random_genotypes

At a latency level, keep only the draws a search's own table prices within ±band of its target
(in draw order, the first --keep of them), named NAME-s0, NAME-s1, ... for one retrain seed each:

    python benchmarks/random_genotypes.py --preset autortnet --count 11 --seed 123 \
        --set input_size=128x256 dataset=camvid nodes=2 channels=32 \
        --lut runs/headline/level-fpn/autortnet-c32-t0.9-fpn050-s0/search --keep 5 \
        --name autortnet-c32-random --out benchmarks/results/headline/random
"""

from __future__ import annotations

import argparse
from pathlib import Path

from workbench.config import parse_overrides
from workbench.jsonio import read_json
from workbench.nas.genotypes import save_genotype
from workbench.nas.latency.table import predict_genotype_latency
from workbench.nas.search import build_supernet, make_genotype, resolve_config
from workbench.nas.search_data import NUM_CLASSES


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="autortnet")
    p.add_argument("--count", type=int, default=8)
    p.add_argument("--seed", type=int, default=123)
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="search config fields")
    p.add_argument("--out", default="benchmarks/results/random_genotypes")
    p.add_argument("--lut", type=Path, default=None,
                   help="a search run: keep the draws its latency_lut.json prices within --band of its target")
    p.add_argument("--band", type=float, default=0.1)
    p.add_argument("--keep", type=int, default=5)
    p.add_argument("--name", default=None, help="with --lut: files NAME-s0.json, NAME-s1.json, ...")
    args = p.parse_args()
    cfg = resolve_config({"preset": args.preset, **parse_overrides(args.set)})
    classes = NUM_CLASSES[cfg.dataset]
    target = lut = None
    if args.lut:
        lut = args.lut / "latency_lut.json"
        target = read_json(args.lut / "run_record.json")["target"]["ms"]
    kept = 0
    for i, body in enumerate(build_supernet(cfg, classes).random_bodies(args.count, seed=args.seed)):
        genotype = make_genotype(cfg, body, classes)
        if lut is None:
            print(save_genotype(genotype, Path(args.out) / f"{args.preset}-random{i}.json"))
            continue
        genotype.expected_latency_ms = round(predict_genotype_latency(genotype, lut), 4)
        miss = genotype.expected_latency_ms / target - 1
        keep = abs(miss) <= args.band and kept < args.keep
        print(f"draw {i}: priced {genotype.expected_latency_ms:.2f} ms against {target:.2f} ms ({100 * miss:+.1f} %)"
              + (" kept" if keep else ""))
        if keep:
            print(save_genotype(genotype, Path(args.out) / f"{args.name or args.preset + '-random'}-s{kept}.json"))
            kept += 1


if __name__ == "__main__":
    main()
