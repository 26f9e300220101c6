"""`workbench eval seg|vos` and `workbench baseline copy-first-frame|most-frequent`."""

from __future__ import annotations

import argparse
import math


def _fmt(value: float) -> str:
    return "   n/a" if value is None or math.isnan(value) else f"{100 * value:6.2f}"


def format_seg(result: dict) -> str:
    """Per-class IoU table plus the summary lines (percent)."""
    width = max(len(n) for n in result["class_names"]) + 2
    lines = [f"{'class':<{width}}{'IoU':>6}  {'acc':>6}"]
    for name in result["class_names"]:
        lines.append(f"{name:<{width}}{_fmt(result['per_class_iou'][name])}  "
                     f"{_fmt(result['per_class_acc'][name])}")
    lines.append("-" * (width + 14))
    lines.append(f"{'mIoU':<{width}}{_fmt(result['miou'])}")
    lines.append(f"{'pixel acc':<{width}}{_fmt(result['pixel_acc'])}")
    lines.append(f"{'mean acc':<{width}}{_fmt(result['mean_acc'])}")
    lines.append(f"({result['dataset']} {result['split']}, {result['num_images']} images, percent; IoU n/a: "
                 "class in neither ground truth nor prediction, left out of mIoU; acc n/a: not in ground truth)")
    return "\n".join(lines)


def format_vos(result: dict) -> str:
    """Per-object table plus the global row, DAVIS style (percent)."""
    cols = ("J&F", "J_mean", "J_recall", "J_decay", "F_mean", "F_recall", "F_decay")
    width = max([len(n) for n in result["objects"]] + [len("global")]) + 2
    header = f"{'object':<{width}}" + "".join(f"{c:>9}" for c in cols)
    lines = [header]
    for name, row in result["objects"].items():
        lines.append(f"{name:<{width}}" + "".join(f"{_fmt(row[c]):>9}" for c in cols))
    lines.append("-" * len(header))
    lines.append(f"{'global':<{width}}" + "".join(f"{_fmt(result['global'][c]):>9}" for c in cols))
    lines.append(f"({len(result['sequences'])} sequences, {len(result['objects'])} objects, percent; "
                 "global = mean over objects)")
    return "\n".join(lines)


def _eval_seg(args: argparse.Namespace) -> int:
    from workbench import steps

    result = steps.evaluate_predictions(args.dataset, args.root, args.split, args.pred, json_out=args.json)
    print(format_seg(result))
    return 0


def _eval_vos(args: argparse.Namespace) -> int:
    from workbench import steps

    result = steps.evaluate_vos(args.root, args.split, args.results, sequences=args.sequences,
                                resolution=args.resolution, json_out=args.json, layout=args.layout)
    print(format_vos(result))
    return 0


def _copy_first_frame(args: argparse.Namespace) -> int:
    from workbench import steps

    out = steps.copy_first_frame(args.root, args.split, args.out, resolution=args.resolution)
    print(f"first-frame copies written to {out}")
    return 0


def _most_frequent(args: argparse.Namespace) -> int:
    from workbench import steps

    train_id = steps.most_frequent_class(args.dataset, args.root, args.split, args.out,
                                         train_split=args.train_split)
    name = steps.class_names(args.dataset)[train_id]
    print(f"most frequent class in {args.train_split}: {name} "
          f"(train id {train_id}); predictions written to {args.out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    ev = sub.add_parser("eval", help="score prediction files (segmentation mIoU, DAVIS J&F)")
    ev_sub = ev.add_subparsers(dest="eval_command", metavar="KIND", required=True)

    p = ev_sub.add_parser("seg", help="confusion matrix, per-class IoU, mIoU, pixel accuracy")
    p.add_argument("--dataset", required=True, choices=["cityscapes", "camvid"])
    p.add_argument("--root", required=True, help="dataset root")
    p.add_argument("--split", default="val")
    p.add_argument("--pred", required=True, help="prediction PNGs (Cityscapes labelIds "
                   "{city}_{seq}_{frame}*.png anywhere below; CamVid class indices named like the annotation)")
    p.add_argument("--json", help="also write the full result as JSON here")
    p.set_defaults(func=_eval_seg)

    p = ev_sub.add_parser("vos", help="DAVIS 2017 (or YouTube-VOS) semi-supervised J and F, per object and global")
    p.add_argument("--root", required=True, help="DAVIS root (JPEGImages/, Annotations/, ImageSets/), or a "
                   "YouTube-VOS root (<split>/Annotations/, <split>/meta.json) with --layout youtube-vos")
    p.add_argument("--layout", choices=("davis", "youtube-vos"), default="davis",
                   help="davis: the objects of frame 0, frames 1..n-2; youtube-vos: each object from its first "
                        "annotated frame (meta.json) on, the last frame included")
    p.add_argument("--split", default="val")
    p.add_argument("--results", required=True, help="results tree {seq}/{frame}.png (palette indices)")
    p.add_argument("--sequences", nargs="+", help="only these sequences (default: the split's)")
    p.add_argument("--resolution", default="480p")
    p.add_argument("--json", help="also write the full result as JSON here")
    p.set_defaults(func=_eval_vos)

    bl = sub.add_parser("baseline", help="trivial baselines: first-frame copy (VOS), most frequent class")
    bl_sub = bl.add_subparsers(dest="baseline_command", metavar="NAME", required=True)

    p = bl_sub.add_parser("copy-first-frame", help="DAVIS: the first-frame mask for every frame")
    p.add_argument("--root", required=True)
    p.add_argument("--split", default="val")
    p.add_argument("--out", required=True)
    p.add_argument("--resolution", default="480p")
    p.set_defaults(func=_copy_first_frame)

    p = bl_sub.add_parser("most-frequent", help="segmentation: the train split's most frequent class everywhere")
    p.add_argument("--dataset", required=True, choices=["cityscapes", "camvid"])
    p.add_argument("--root", required=True)
    p.add_argument("--split", default="val")
    p.add_argument("--out", required=True)
    p.add_argument("--train-split", default="train")
    p.set_defaults(func=_most_frequent)
