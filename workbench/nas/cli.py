"""`workbench lut build`, `workbench search`, `workbench derive`."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from workbench.config import parse_overrides, parse_size

log = logging.getLogger(__name__)


def _values(args: argparse.Namespace, **explicit) -> dict:
    """The preset name, --set overrides and the flags given: what the user asked for."""
    items = [x for group in args.set for x in (group if isinstance(group, list) else [group])]
    values = parse_overrides(items)
    values.update({k: v for k, v in explicit.items() if v is not None})
    return {"preset": args.preset, **values}


def _config(args: argparse.Namespace, **explicit):
    from workbench.nas.search import resolve_config

    return resolve_config(_values(args, **explicit))


def _lut_build(args: argparse.Namespace) -> int:
    from workbench.nas import latency
    from workbench.nas.genotypes import load_genotype
    from workbench.nas.search import NUM_CLASSES, lut_for
    from workbench.outputs import check_output
    from workbench.runs import atomic_write_json

    check_output(args.out, inputs=[args.genotype])
    size = parse_size(args.size, "--size")
    cfg = _config(args, input_size=size, device=args.device, threads=args.threads, dataset=args.dataset,
                  lut_repeats=args.repeats, lut_warmup=args.warmup, lut_rounds=args.rounds,
                  lut_cache_dir=args.cache_dir)
    if args.genotype:
        g = load_genotype(args.genotype)
        lut = latency.build_lut(latency.genotype_probes(g, size), size, cfg.device, cfg.threads, cfg.lut_warmup,
                                cfg.lut_repeats, cfg.lut_cache_dir or None, meta={"preset": g.preset},
                                rounds=cfg.lut_rounds)
    else:
        lut = lut_for(cfg, NUM_CLASSES[cfg.dataset])
    atomic_write_json(args.out, lut)
    print(f"latency table: {len(lut['entries'])} entries ({lut['measured']} measured, {lut['cached']} cached) "
          f"for {lut['fingerprint']['name']} at {size[0]}x{size[1]} -> {args.out}")
    if args.genotype:
        print(f"predicted latency of {args.genotype}: {latency.predict_genotype_latency(g, lut):.2f} ms")
    return 0


def _search(args: argparse.Namespace) -> int:
    from workbench.nas.search import run_search

    values = _values(args, dataset=args.dataset, data_root=args.data_root, epochs=args.epochs,
                     latency_weight=args.latency_weight, target_latency_ms=args.target_latency_ms,
                     device=args.device, seed=args.seed, resume=args.resume or None, threads=args.threads,
                     overwrite=args.overwrite or None)
    record = run_search(values, args.run_dir)
    run_dir = Path(args.run_dir)
    from workbench.nas.genotypes import load_genotype

    print(load_genotype(run_dir / "genotype.json"))
    m = record.get("metrics", {})
    print(f"search finished: expected latency {m.get('expected_latency_ms')} ms, supernet val mIoU "
          f"{m.get('miou')}; run directory {run_dir.resolve()}")
    return 0


def _derive(args: argparse.Namespace) -> int:
    from workbench.nas.search import rederive

    genotype = rederive(args.run_dir)
    print(genotype)
    print(f"wrote {Path(args.run_dir) / 'genotype.json'}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from workbench.nas.presets import PRESETS

    lut_parser = sub.add_parser("lut", help="latency lookup tables")
    lut_parser.set_defaults(func=lambda args: lut_parser.print_help() or 1)
    lut = lut_parser.add_subparsers(dest="lut_command", metavar="ACTION")
    p = lut.add_parser("build", help="time every op of a preset's supernet on this device")
    p.add_argument("--preset", default="gas", choices=sorted(PRESETS))
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
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", nargs="+",
                   help="override a preset field")
    p.set_defaults(func=_lut_build)

    p = sub.add_parser("search", help="architecture search (GAS / LGCNet / AutoRTNet presets)")
    p.add_argument("--preset", default="gas", choices=sorted(PRESETS))
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
