"""`workbench retrain | evaluate | predict | bench | export`.

Flags map one to one onto the step configs; `--set key=value` reaches any other config field.
"""

from __future__ import annotations

import argparse
import json

from workbench.cli.args import explicit


def _source(p: argparse.ArgumentParser, required: bool = True) -> None:
    group = p.add_mutually_exclusive_group(required=required)
    group.add_argument("--genotype", help="genotype.json of a search run")
    group.add_argument("--baseline", help="hand-designed baseline (see `workbench bench --list-baselines`)")


def _retrain(args: argparse.Namespace) -> int:
    from workbench import steps

    cfg = explicit(args, ("genotype", "baseline", "width", "depth", "init_from", "recipe", "dataset", "data_root", "epochs", "crop_size",
                          "batch_size", "lr", "device", "seed", "num_workers", "eval_size", "threads"),
                   flags=("resume", "overwrite"))
    if args.preset:
        cfg = {**steps.retrain_preset(args.preset), **cfg}  # what the command line gives wins
    record = steps.retrain(cfg, args.run_dir)
    if record:
        m = record.get("metrics", {})
        print(f"{record.get('name')}: mIoU {m.get('miou', float('nan')):.4f}, pixel acc "
              f"{m.get('pixel_acc', float('nan')):.4f}, {m.get('params_m', 0):.2f} M params -> {args.run_dir}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from workbench import steps

    cfg = explicit(args, {"run_dir": "run", "split": "split", "data_root": "data_root", "dataset": "dataset",
                          "checkpoint": "checkpoint", "eval_size": "eval_size", "device": "device"}, overrides=None)
    result = steps.evaluate(cfg, args.out_dir)
    print(f"{result['dataset']} {result['split']}: mIoU {result['miou']:.4f}, "
          f"pixel acc {result['pixel_acc']:.4f} ({result['images']} images)")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from workbench import steps

    cfg = explicit(args, {"run_dir": "run", "out": "out", "split": "split", "data_root": "data_root",
                          "dataset": "dataset", "checkpoint": "checkpoint", "eval_size": "eval_size",
                          "device": "device"}, overrides=None)
    result = steps.predict(cfg)
    print(f"wrote {result['count']} predictions to {result['out']}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from workbench import steps

    if args.list_baselines:
        print("\n".join(f"{name}  ({what})" for name, what in steps.list_baselines().items()))
        return 0
    cfg = explicit(args, ("genotype", "baseline", "run", "size", "device", "threads", "repeats", "warmup", "rounds",
                          "lut", "dtype", "num_classes", "runtime"), flags=("overwrite", "lut_same_run"),
                   overrides=None)
    if args.no_memory:
        cfg["memory"] = False
    result = steps.benchmark(cfg, args.run_dir, json_out=args.json)
    lat, dev = result["latency_ms"], result["device"]
    print(f"{result['network']['name']} @ {result['size'][0]}x{result['size'][1]}, batch 1, {result['dtype']}, "
          f"{dev['name']} ({dev['device_type']}, {result['threads']} threads, torch {result['torch']})")
    print(f"  latency  {lat['median']:.2f} ms median (p10 {lat['p10']:.2f}, p90 {lat['p90']:.2f}; "
          f"{lat['repeats']} runs after {lat['warmup']} warm-up)  ->  {result['fps']:.1f} FPS")
    print(f"  FLOPs    {result['gflops']:.4g} GFLOPs ({result['gmacs']:.4g} GMACs), "
          f"{result['achieved_gflops_per_s']:.1f} GFLOP/s achieved")
    print(f"  params   {result['params_m']:.3f} M")
    if result["memory"] and result["memory"].get("peak_mb") is not None:
        print(f"  memory   {result['memory']['peak_mb']:.1f} MiB peak ({result['memory']['method']})")
    lut = result["lut"]
    print(f"  LUT      {lut['predicted_ms']:.2f} ms predicted ({result['lut_error_pct']:+.1f}% vs measured)"
          if lut["predicted_ms"] is not None else f"  LUT      n/a ({lut['note']})")
    if lut.get("same_run"):
        same = lut["same_run"]
        print(f"  LUT      {same['predicted_ms']:.2f} ms priced with the calibration networks timed beside it "
              f"(scale {same['scale']:.3f}, the table's {same['table_scale']:.3f}): {same['error_pct']:+.1f}% vs "
              f"{same['measured_ms']:.2f} ms measured in those rounds"
              + (f" [other processes used {100 * same['other_load']:.0f}% of the machine]" if same["busy"] else ""))
    return 0


def _export(args: argparse.Namespace) -> int:
    from workbench import steps

    cfg = explicit(args, {"run_dir": "run", "format": "format", "out": "out", "size": "size",
                          "checkpoint": "checkpoint", "opset": "opset"}, overrides=None)
    result = steps.export(cfg)
    print(json.dumps(result))
    return 0


def _pretrain(args: argparse.Namespace) -> int:
    from workbench import steps

    cfg = explicit(args, ("genotype", "width", "depth", "data_root", "image_size", "epochs", "batch_size", "lr", "device",
                          "threads", "seed", "num_workers"), flags=("resume", "overwrite"))
    record = steps.pretrain(cfg, args.run_dir)
    m = record.get("metrics", {})
    print(f"pretrain: val top-1 {m.get('top1', float('nan')):.4f}, top-5 {m.get('top5', float('nan')):.4f} "
          f"-> {args.run_dir} (retrain --init-from {args.run_dir})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("retrain", help="train a derived network or a baseline from scratch, evaluate mIoU",
                       description="Single process, or `torchrun --nproc_per_node=N -m workbench retrain ...` "
                                   "for DistributedDataParallel (batch size is global).")
    _source(p)
    p.add_argument("--width", type=float, help="width multiplier of the genotype (as `workbench scale`; recorded)")
    p.add_argument("--depth", type=int, help="each layer of the genotype repeated N times (as `workbench scale`; recorded)")
    p.add_argument("--recipe", help="retrain recipe: plain-v1 (default), fast-v1, fast-v2, fast-v3, fast-v4 or "
                                    "fasterseg-v1 (workbench.seg.recipes)")
    p.add_argument("--preset", help="paper-scale retrain settings: gas-paper, lgcnet-paper or autortnet-paper "
                   "(workbench.nas.paper_presets.PAPER_RETRAIN); flags given here win")
    p.add_argument("--init-from", help="a `workbench pretrain` run directory: start from its stem and body")
    p.add_argument("--dataset", choices=["cityscapes", "camvid"])
    p.add_argument("--data-root")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--epochs", type=int)
    p.add_argument("--crop-size", help="training crop HxW, e.g. 512x1024")
    p.add_argument("--crop", dest="crop_size", help=argparse.SUPPRESS)  # 0.1 name
    p.add_argument("--batch-size", type=int, help="global batch size (default: the recipe's)")
    p.add_argument("--lr", type=float, help="peak learning rate (default: the recipe's)")
    p.add_argument("--device", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--threads", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--num-workers", type=int, help="data-loader worker processes")
    p.add_argument("--workers", type=int, dest="num_workers", help=argparse.SUPPRESS)  # 0.1 name
    p.add_argument("--eval-size", help="evaluate at HxW instead of full resolution")
    p.add_argument("--resume", action="store_true",
                   help="continue from RUN_DIR/checkpoints/last.pt (with the stored configuration)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier run in RUN_DIR")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", nargs="+", help="any other RetrainConfig field")
    p.set_defaults(func=_retrain)

    p = sub.add_parser("pretrain", help="pretrain a derived network's body as an ImageFolder classifier",
                       description="ImageNet layout: DATA_ROOT/train/<class>/*, DATA_ROOT/val/<class>/*. Reports "
                                   "top-1/top-5; resumable; `retrain --init-from RUN_DIR` starts from it.")
    p.add_argument("--genotype", required=True, help="genotype.json of a search run")
    p.add_argument("--width", type=float, help="width multiplier (as `workbench scale`); retrain at the same")
    p.add_argument("--depth", type=int, help="layer repeats (as `workbench scale --depth`); retrain at the same")
    p.add_argument("--data-root", required=True)
    p.add_argument("--run-dir", required=True)
    p.add_argument("--image-size", type=int, help="square training crop / validation size (default 224)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--device", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--threads", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--num-workers", type=int)
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoints/last.pt")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier run in RUN_DIR")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", nargs="+", help="any other PretrainConfig field")
    p.set_defaults(func=_pretrain)

    p = sub.add_parser("evaluate", help="score a retrained run's checkpoint on a split")
    p.add_argument("--run-dir", required=True, help="retrain run directory")
    p.add_argument("--split")
    p.add_argument("--data-root")
    p.add_argument("--dataset", choices=["cityscapes", "camvid"])
    p.add_argument("--checkpoint", help="another checkpoint of the same architecture")
    p.add_argument("--eval-size")
    p.add_argument("--device")
    p.add_argument("--out-dir", help="where evaluation_{split}.json goes (default: the run dir)")
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("predict", help="write prediction PNGs that `workbench eval seg` scores")
    p.add_argument("--run-dir", required=True, help="retrain run directory")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--split")
    p.add_argument("--data-root")
    p.add_argument("--dataset", choices=["cityscapes", "camvid"])
    p.add_argument("--checkpoint")
    p.add_argument("--eval-size")
    p.add_argument("--device")
    p.set_defaults(func=_predict)

    p = sub.add_parser("bench", help="latency / FPS / FLOPs / params / memory of a network at one size")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--genotype", help="genotype.json")
    group.add_argument("--baseline", help="baseline name")
    group.add_argument("--run", help="a retrain run directory")
    group.add_argument("--list-baselines", action="store_true", help="print the baseline names")
    p.add_argument("--size", help="HxW: 512x1024, 768x1536, 1024x2048 (papers)")
    p.add_argument("--device")
    p.add_argument("--dtype", choices=["float32", "float16", "bfloat16"])
    p.add_argument("--runtime", choices=["eager", "compile", "onnxruntime", "cudagraphs"],
                   help="the runtime the network ships in (default eager); a LUT of another runtime is not used")
    p.add_argument("--threads", type=int)
    p.add_argument("--repeats", type=int)
    p.add_argument("--warmup", type=int)
    p.add_argument("--rounds", type=int, help="timing rounds; the fastest round's numbers count (default 3)")
    p.add_argument("--num-classes", type=int)
    p.add_argument("--lut", help="latency_lut.json (default: beside the genotype)")
    p.add_argument("--lut-same-run", action="store_true",
                   help="also time the table's calibration networks beside this one and price it at that "
                        "moment's scale (within 5 %% in 7 of 7 runs on a 2-vCPU VM; see the latency predictor page)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    p.add_argument("--json", help="write the full result here")
    p.add_argument("--run-dir", help="also record a 'benchmark' run directory")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier benchmark in --run-dir")
    p.set_defaults(func=_bench)

    p = sub.add_parser("export", help="export a retrained run to TorchScript or ONNX (verified on reload)")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--format", choices=["torchscript", "onnx"], required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--size", help="export input HxW (default: the run's crop)")
    p.add_argument("--checkpoint")
    p.add_argument("--opset", type=int)
    p.set_defaults(func=_export)
