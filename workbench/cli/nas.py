"""`workbench lut build`, `workbench search`, `workbench derive`, `workbench scale`."""

from __future__ import annotations

import argparse
from pathlib import Path

from workbench.cli.args import explicit


def _values(args: argparse.Namespace, flags: tuple[str, ...] = (), **names: str) -> dict:
    """The preset name, the flags given and the --set overrides: what the user asked for."""
    return {"preset": args.preset, **explicit(args, names, flags=flags)}


def _lut_build(args: argparse.Namespace) -> int:
    from workbench import steps

    values = _values(args, size="input_size", device="device", threads="threads", dataset="dataset",
                     repeats="lut_repeats", warmup="lut_warmup", rounds="lut_rounds", cache_dir="lut_cache_dir",
                     runtime="lut_runtime", dtype="lut_dtype")
    lut = steps.build_lut(values, args.out, args.genotype)
    size = lut["input_size"]
    print(f"latency table: {len(lut['entries'])} entries ({lut['measured']} measured, {lut['cached']} cached) "
          f"for {lut['fingerprint']['name']} at {size[0]}x{size[1]}, {lut['fingerprint']['dtype']}, "
          f"{lut['fingerprint']['runtime']} -> {args.out}")
    if args.genotype:
        print(f"predicted latency of {args.genotype}: {lut['predicted_ms']:.2f} ms")
    return 0


def _search(args: argparse.Namespace) -> int:
    from workbench import steps

    values = _values(args, dataset="dataset", data_root="data_root", epochs="epochs",
                     latency_weight="latency_weight", target_latency_ms="target_latency_ms", device="device",
                     seed="seed", threads="threads", flags=("resume", "overwrite"))
    record = steps.search(values, args.run_dir)
    if not record:  # a process other than rank 0 under torchrun: rank 0 reports
        return 0
    run_dir = Path(args.run_dir)
    print(steps.describe_genotype(run_dir / "genotype.json"))
    m = record.get("metrics", {})
    print(f"search finished: expected latency {m.get('expected_latency_ms')} ms, supernet val mIoU "
          f"{m.get('miou')}; run directory {run_dir.resolve()}")
    return 0


def _derive(args: argparse.Namespace) -> int:
    from workbench import steps

    print(steps.derive(args.run_dir))
    print(f"wrote {Path(args.run_dir) / 'genotype.json'}")
    return 0


def _scale(args: argparse.Namespace) -> int:
    from workbench import steps

    out = steps.scale_genotype(args.genotype, args.width, args.out, depth=args.depth)
    print(steps.describe_genotype(out))
    print(f"wrote {out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from workbench import steps

    presets = steps.preset_names()

    lut_parser = sub.add_parser("lut", help="latency lookup tables")
    lut_parser.set_defaults(func=lambda args: lut_parser.print_help() or 1)
    lut = lut_parser.add_subparsers(dest="lut_command", metavar="ACTION")
    p = lut.add_parser("build", help="time every op of a preset's supernet on this device")
    p.add_argument("--preset", default="gas", choices=presets)
    p.add_argument("--size", required=True, help="target input size HxW, e.g. 512x1024")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--threads", type=int, default=None, help="fixed intra-op thread count (CPU)")
    p.add_argument("--dataset", default=None, choices=["cityscapes", "camvid"], help="sets the class count")
    p.add_argument("--genotype", default=None, help="time the pieces of this genotype instead of a supernet")
    p.add_argument("--out", default="latency_lut.json")
    p.add_argument("--cache-dir", default=None, help="per-device cache (default ~/.cache/workbench/lut)")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--warmup", type=int, default=None)
    p.add_argument("--rounds", type=int, default=None,
                   help="timing rounds over all entries; each entry keeps its fastest round median")
    p.add_argument("--runtime", default=None, choices=("eager", "compile", "onnxruntime", "cudagraphs"),
                   help="time the pieces in this runtime (default eager; part of the table's fingerprint)")
    p.add_argument("--dtype", default=None, choices=("float32", "float16", "bfloat16"),
                   help="time the pieces in this dtype (default float32; part of the table's fingerprint)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", nargs="+",
                   help="override a preset field")
    p.set_defaults(func=_lut_build)

    p = sub.add_parser("search", help="architecture search (GAS / LGCNet / AutoRTNet presets)")
    p.add_argument("--preset", default="gas", choices=presets)
    p.add_argument("--dataset", default=None, choices=["cityscapes", "camvid", "random"])
    p.add_argument("--data-root", default=None)
    p.add_argument("--run-dir", required=True)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--latency-weight", type=float, default=None, help="lambda of the latency term")
    p.add_argument("--target-latency-ms", type=float, default=None)
    p.add_argument("--device", default=None, help="cpu, cuda or auto")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--resume", action="store_true",
                   help="continue from the run directory's checkpoint (with its stored configuration)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier run in the run directory")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", nargs="+",
                   help="override any preset field, e.g. --set channels=24 fusion=false")
    p.set_defaults(func=_search)

    p = sub.add_parser("derive", help="re-derive genotype.json from a search run's last checkpoint")
    p.add_argument("--run-dir", required=True)
    p.set_defaults(func=_derive)

    p = sub.add_parser("scale", help="a genotype widened and/or deepened (retrain it like any genotype)")
    p.add_argument("genotype", help="genotype.json")
    p.add_argument("--width", type=float, default=1.0, help="width multiplier, e.g. 2 or 3 (default 1)")
    p.add_argument("--depth", type=int, default=1, help="each layer repeated N times, as DARTS's deeper "
                   "evaluation network (a repeat of a downsampling cell keeps its stride; default 1)")
    p.add_argument("--out", required=True, help="the scaled genotype.json to write")
    p.set_defaults(func=_scale)
