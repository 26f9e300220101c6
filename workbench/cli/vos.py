"""`workbench vos train` and `workbench vos segment`."""

from __future__ import annotations

import argparse
import json

from workbench.cli.args import explicit
from workbench.config import parse_overrides


def _train(args: argparse.Namespace) -> int:
    from workbench import steps

    cfg = explicit(args, ("data_root", "device", "seed", "epochs", "steps_per_epoch", "batch_size", "threads",
                          "backbone", "backbone_weights", "dataset", "init_from"),
                   flags=("resume", "overwrite"))
    if args.no_attention:
        cfg["attention"] = False
    rec = steps.train_vos(cfg, args.run_dir)
    print(f"vos train finished: loss {rec['metrics'].get('loss', float('nan')):.4f}; "
          f"checkpoint in {args.run_dir}/checkpoints/last.pt")
    return 0


def _segment(args: argparse.Namespace) -> int:
    from workbench import steps

    cfg = explicit(args, {"run_dir": "model", "data_root": "data_root", "split": "split", "video": "video",
                          "first_mask": "first_mask", "method": "method", "device": "device", "threads": "threads",
                          "max_frames": "max_frames", "start": "start", "masks": "masks"},
                   flags=("overwrite", "overlay"), overrides=None)
    if args.tracker_set:
        cfg["tracker"] = parse_overrides(args.tracker_set)
    rec = steps.segment_video(cfg, args.out)
    for method, res in rec.get("methods_results", {}).items():
        jf = f"J&F {res['jf']:.3f}  J {res['j_mean']:.3f}  F {res['f_mean']:.3f}  " \
            if "jf" in res else ""
        print(f"{method:8s} {jf}fps {res['fps']:.2f}  -> {args.out}/{method}/")
    if args.json:
        print(json.dumps(rec.get("metrics", {})))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("vos", help="one-pass video object segmentation (OVS-Net)")
    vs = p.add_subparsers(dest="vos_command", metavar="VOS_COMMAND")
    p.set_defaults(func=lambda a: (p.print_help(), 1)[1])

    t = vs.add_parser("train", help="train OVS-Net on a DAVIS-format train split")
    t.add_argument("--data-root", required=True, help="dataset root (DAVIS or YouTube-VOS layout)")
    t.add_argument("--init-from", help="a `vos train` run to start from (stage 2 after the static-image stage)")
    t.add_argument("--dataset", choices=["davis", "youtube-vos", "static"], help="layout of --data-root (default "
                   "davis; static: still images with instance masks, a COCO JSON or images/ + masks/); "
                   "mix sources with --set 'mix=[{dataset: youtube-vos, data_root: D, weight: 2}]'")
    t.add_argument("--run-dir", required=True, help="where checkpoints and records go")
    t.add_argument("--epochs", type=int)
    t.add_argument("--steps-per-epoch", type=int, help="optimizer steps per epoch")
    t.add_argument("--iters-per-epoch", type=int, dest="steps_per_epoch", help=argparse.SUPPRESS)  # 0.1 name
    t.add_argument("--batch-size", type=int)
    t.add_argument("--device")
    t.add_argument("--threads", type=int)
    t.add_argument("--seed", type=int)
    t.add_argument("--resume", action="store_true",
                   help="continue from the last checkpoint (with the stored configuration)")
    t.add_argument("--overwrite", action="store_true", help="replace an earlier run in --run-dir")
    t.add_argument("--no-attention", action="store_true", help="ablation: no mask-guided attention")
    t.add_argument("--backbone", help="tiny (default), resnet18, resnet50 or mobilenet_v3_large (torchvision + FPN)")
    t.add_argument("--backbone-weights", help="torchvision ImageNet state dict (.pth) for the backbone; "
                                              "nothing is downloaded")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", nargs="+", help="any VosTrainConfig field")
    t.set_defaults(func=_train)

    s = vs.add_parser("segment", help="segment a DAVIS split or a video; write PNGs, J&F, fps")
    s.add_argument("--run-dir", help="the trained model (a `vos train` run directory)")
    s.add_argument("--data-root", help="DAVIS-format dataset root")
    s.add_argument("--split", default="val")
    s.add_argument("--video", help="a video file (mp4/avi) or a folder of frames")
    s.add_argument("--first-mask", help="the first frame's mask: indexed, grayscale or RGB PNG (object ids/colours)")
    s.add_argument("--masks", help="folder of later masks named by frame (00012.png): objects entering there")
    s.add_argument("--start", type=int, help="first frame of --video to segment (--first-mask is its mask)")
    s.add_argument("--max-frames", type=int, help="segment at most this many frames of --video")
    s.add_argument("--out", required=True, help="run directory for results: OUT/<method>/<seq>/")
    s.add_argument("--method", default="onepass", choices=["onepass", "offline", "premvos", "copy", "all"],
                   help="all: onepass, offline and copy; premvos: the PReMVOS-style offline baseline")
    s.add_argument("--device", default="auto")
    s.add_argument("--threads", type=int)
    s.add_argument("--tracker-set", action="append", metavar="KEY=VALUE",
                   help="TrackerConfig override, e.g. reacquire_sim=0.8")
    s.add_argument("--overlay", action="store_true", help="also write OUT/<method>/<video>.mp4 with the masks blended in")
    s.add_argument("--json", action="store_true", help="also print the metrics as JSON")
    s.add_argument("--overwrite", action="store_true", help="replace an earlier segmentation in --out")
    s.set_defaults(func=_segment)
