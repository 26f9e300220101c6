"""`workbench data synth|check`: generate synthetic datasets, validate dataset trees."""

from __future__ import annotations

import argparse
from pathlib import Path

from workbench.errors import ConfigError

KINDS = ("cityscapes", "camvid", "davis")


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW such as 256x512, got {text!r}") from None
    return h, w


def _synth(args: argparse.Namespace) -> int:
    from workbench.data.synth import generate

    out = Path(args.out or f"datasets/synth-{args.kind}")
    if args.count is not None and args.count < 1:
        raise ConfigError(f"--count: must be at least 1, got {args.count}")
    count = args.count or {"cityscapes": 200, "camvid": 100, "davis": 10}[args.kind]
    root = generate(args.kind, out, count=count, size=args.size, frames=args.frames, seed=args.seed,
                    val_count=args.val_count, workers=args.workers)
    print(f"wrote synth-{args.kind} to {root}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from workbench.data.check import check_dataset, format_summary

    summary = check_dataset(args.kind, Path(args.root), args.split)
    print(format_summary(summary))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="synthetic datasets and dataset validation")
    dsub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)

    p = dsub.add_parser("synth", help="generate a synthetic dataset in its real format")
    p.add_argument("kind", choices=KINDS)
    p.add_argument("--out", default=None, help="output root (default datasets/synth-KIND)")
    p.add_argument("--count", type=int, default=None,
                   help="training images / sequences (default 200 / 100 / 10)")
    p.add_argument("--val-count", type=int, default=None, help="validation images / sequences (default count/4)")
    p.add_argument("--size", type=_size, default=None,
                   help="HxW (default 256x512 cityscapes, 360x480 camvid, 480x854 davis)")
    p.add_argument("--frames", type=int, default=None, help="frames per video (davis, default 25)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1, help="render in this many processes (same files)")
    p.set_defaults(func=_synth)

    p = dsub.add_parser("check", help="validate a dataset tree and print a summary")
    p.add_argument("kind", choices=KINDS)
    p.add_argument("--root", required=True, help="dataset root")
    p.add_argument("--split", default=None, help="split to check (default: every split present)")
    p.set_defaults(func=_check)
