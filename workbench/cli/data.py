"""`workbench data synth|check`: generate synthetic datasets, validate dataset trees."""

from __future__ import annotations

import argparse
from pathlib import Path

from workbench.cli.args import size
from workbench.errors import ConfigError

KINDS = ("cityscapes", "camvid", "davis")
DEFAULT_COUNT = {"cityscapes": 200, "camvid": 100, "davis": 10}


def _synth(args: argparse.Namespace) -> int:
    from workbench import steps

    out = Path(args.out or f"datasets/synth-{args.kind}")
    if args.count is not None and args.count < 1:
        raise ConfigError(f"--count: must be at least 1, got {args.count}")
    count = args.count or DEFAULT_COUNT[args.kind]
    root = steps.synth_data(args.kind, out, count=count, size=args.size, frames=args.frames, seed=args.seed,
                            val_count=args.val_count, workers=args.workers)
    print(f"wrote synth-{args.kind} to {root}")
    return 0


def format_summary(summary: dict) -> str:
    lines = [f"{summary['kind']} at {summary['root']}: OK"]
    for split, info in summary["splits"].items():
        sizes = ", ".join(f"{k} ({v})" for k, v in info["sizes"].items())
        if summary["kind"] == "davis":
            objs = ", ".join(f"{k}: {v}" for k, v in info["objects"].items())
            lines.append(f"  {split}: {info['sequences']} sequences, {info['frames']} frames "
                         f"({info['annotated_frames']} annotated), sizes {sizes}")
            lines.append(f"    objects per sequence: {objs}")
        else:
            lines.append(f"  {split}: {info['images']} images, sizes {sizes}, "
                         f"{info['classes_present']}/{info['num_classes']} classes present, "
                         f"ignore {100 * info['ignore_fraction']:.1f}%")
            top = sorted(info["class_fraction"].items(), key=lambda kv: -kv[1])
            lines.append("    " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in top))
    return "\n".join(lines)


def _check(args: argparse.Namespace) -> int:
    from workbench import steps

    print(format_summary(steps.check_data(args.kind, args.root, args.split)))
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
    p.add_argument("--size", type=size, default=None,
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
