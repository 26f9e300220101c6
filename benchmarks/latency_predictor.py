"""LUT-predicted vs measured end-to-end latency of derived networks at 512x1024 on this CPU.

Genotypes: random architectures of the gas, lgcnet and autortnet search spaces (random alphas through the
DARTS derivation rule, so every op and edge pattern occurs) plus the genotype.json of any --run-dir
given. For each: prediction = `predict_genotype_latency` (stem + head + per-cell preprocessing,
node additions and output conv + kept ops); measurement = end-to-end forward of
`build_network(genotype)` on one image, same threads. Both sides time in rounds that visit every LUT
entry (or every network) in turn, the median of `--repeats` calls per round, the fastest round kept;
networks are interleaved, so a burst of load on the machine spoils one round of many networks rather
than every repeat of one. The networks are rebuilt every round with at least the calibration's
protocol (`CALIBRATION_PROTOCOL`, as the calibration's own networks and the study bench are). Each
network's round spread is reported, and so is the measurement's own repeatability: the fastest odd
round against the fastest even round (`split_half_rel_diff`), a floor under any predictor's error. The op-sum alone (kept ops only) is
reported too, to show what the per-cell fixed costs add, and the uncalibrated piece-sum to show what the
calibration (measured / piece-sum on separate reference networks, see workbench.nas.latency) adds.
The calibration's networks are timed again in the checked networks' rounds, and each network is also
judged against them, per round (`same_moment_*`): the table's relative prices, free of the machine's
drift between rounds, which the fastest-round comparison is not. And the calibration is fitted again
on those same-round timings (`same_run_*`: its scale from the calibration networks' fastest rounds in
the checked networks' run), so the prices and the measurement share one moment of the machine.

    python benchmarks/latency_predictor.py [--size 512x1024] [--threads 2] [--per-preset 4] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def random_genotypes(preset: str, count: int, size: tuple[int, int], seed: int) -> list:
    import torch

    from workbench.nas.search import build_supernet, make_genotype, resolve_config

    cfg = resolve_config({"preset": preset, "input_size": size})
    model = build_supernet(cfg, 19)
    out = []
    gen = torch.Generator().manual_seed(seed)
    for _ in range(count):
        with torch.no_grad():
            for p in model.arch.alphas.values():
                p.copy_(torch.randn(p.shape, generator=gen) * 2.0)
        out.append(make_genotype(cfg, model.derive(), 19))
    return out, cfg, model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="512x1024")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (the LUT is measured on the same device)")
    parser.add_argument("--runtime", default="eager", choices=("eager", "compile", "onnxruntime", "cudagraphs"),
                        help="what both the table's pieces and the networks are timed in (cudagraphs: CUDA only)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"),
                        help="weights and inputs of both the table's pieces and the networks")
    parser.add_argument("--per-preset", type=int, default=4, help="random genotypes per preset")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per round (networks and LUT)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; each item keeps its fastest round median")
    parser.add_argument("--calibrate", type=int, default=2,
                        help="reference networks per preset for the LUT calibration (0 = uncalibrated)")
    parser.add_argument("--run-dir", action="append", default=[], help="also check this search run's genotype")
    parser.add_argument("--cache-dir", default=None, help="LUT cache (default: a fresh temporary directory)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "latency_predictor.json"))
    args = parser.parse_args()

    import torch

    from workbench.config import parse_size
    from workbench.device import device_fingerprint, latency_dtype
    from workbench.loadcheck import OtherLoad
    from workbench.nas.genotypes import load_genotype
    from workbench.nas.latency import table as latency
    from workbench.nas.latency.timing import NOISY_SPREAD, measure_built, spread
    from workbench.nas.network import build_network

    size = parse_size(args.size)
    torch.set_num_threads(args.threads)
    cache = args.cache_dir or tempfile.mkdtemp(prefix="lut")
    items = []
    for i, preset in enumerate(("gas", "lgcnet", "autortnet")):
        genotypes, cfg, model = random_genotypes(preset, args.per_preset, size, seed=i)
        items += [(f"{preset}-random-{j}", g) for j, g in enumerate(genotypes)]
    for run_dir in args.run_dir:
        items.append((f"run:{run_dir}", load_genotype(Path(run_dir) / "genotype.json")))
    probes = [p for _, g in items for p in latency.genotype_probes(g, size)]
    lut = latency.build_lut(probes, size, args.device, args.threads, warmup=args.warmup, repeats=args.repeats,
                            cache_dir=cache, rounds=args.rounds, runtime=args.runtime, dtype=args.dtype)
    first = lut
    refs = []
    if args.calibrate:
        # reference networks for the calibration: other random genotypes than the ones checked below
        refs = [g for i, preset in enumerate(("gas", "lgcnet", "autortnet"))
                for g in random_genotypes(preset, args.calibrate, size, seed=1000 + i)[0]]
        probes = [p for g in refs for p in latency.genotype_probes(g, size)]
        lut = latency.build_lut(probes + [p for _, g in items for p in latency.genotype_probes(g, size)], size,
                                args.device, args.threads, warmup=args.warmup, repeats=args.repeats, cache_dir=cache,
                                rounds=args.rounds, runtime=args.runtime, dtype=args.dtype)
        latency.calibrate(lut, refs, args.device, args.warmup, args.repeats, args.rounds)
        print(f"calibration scale {lut['calibration']['scale']:.3f} from {len(refs)} reference networks")
        for key in ("table_spread", "max_spread"):
            lut[key] = max(lut[key], first[key])
        lut["noisy_entries"] += first["noisy_entries"]
    print(f"latency table: {len(lut['entries'])} entries, slowest / fastest rounds {lut['table_spread']:.2f}x "
          f"summed, up to {lut['max_spread']:.2f}x for one entry ({lut['noisy_entries']} above "
          f"{NOISY_SPREAD}x)")
    # the checked networks are timed as the calibration's networks are (and the study bench's):
    # rebuilt every round, at least the calibration's protocol
    protocol = [max(v, floor) for v, floor in zip((args.warmup, args.repeats, args.rounds),
                                                  latency.CALIBRATION_PROTOCOL)]
    builders = {name: (lambda g=g: build_network(g)) for name, g in items}
    # the calibration's networks again, in the same rounds as the checked ones: the reference for the
    # same-moment ratios below
    builders.update({f"reference-{i}": (lambda g=g: build_network(g)) for i, g in enumerate(refs)})
    with OtherLoad() as load:
        timed = measure_built(builders, size, args.device, *protocol, args.runtime, dtype=args.dtype)
    reference_rounds = [sum(r) for r in zip(*(timed[f"reference-{i}"] for i in range(len(refs))))]
    reference_predicted = sum(latency.predict_genotype_latency(g, lut) for g in refs)
    # the calibration fitted again on the calibration networks' fastest rounds in *these* rounds: a
    # calibration timed in the same run as the networks it prices (a slow moment during the table's
    # own calibration then does not carry over into every price)
    same_run_scale = statistics.median(min(timed[f"reference-{i}"]) / latency.piece_sum(g, lut)
                                       for i, g in enumerate(refs)) if refs else None
    rows = []
    for name, g in items:
        predicted = latency.predict_genotype_latency(g, lut)
        piece_sum = latency.piece_sum(g, lut)
        op_sum = sum(lut["entries"][p.key] for p in latency.genotype_probes(g, size) if p.key.startswith("op/"))
        measured = min(timed[name])
        rows.append({"name": name, "predicted_ms": predicted, "measured_ms": measured, "op_sum_ms": op_sum,
                     "piece_sum_ms": piece_sum, "rel_error": abs(predicted - measured) / measured,
                     "uncalibrated_rel_error": abs(piece_sum - measured) / measured,
                     "op_sum_rel_error": abs(op_sum - measured) / measured,
                     "round_medians_ms": [round(t, 3) for t in timed[name]], "spread": spread(timed[name]),
                     "split_half_rel_diff": split_half(timed[name])})
        if refs:
            rows[-1].update(same_moment(timed[name], reference_rounds, predicted / reference_predicted))
            rows[-1].update({"same_run_predicted_ms": piece_sum * same_run_scale,
                             "same_run_rel_error": abs(piece_sum * same_run_scale - measured) / measured})
        print(f"{name:20s} predicted {predicted:8.2f} ms  measured {measured:8.2f} ms  "
              f"error {100 * rows[-1]['rel_error']:5.1f}%  (op-sum only {100 * rows[-1]['op_sum_rel_error']:5.1f}%, "
              f"round spread {rows[-1]['spread']:.2f}x)", flush=True)
    errors = [r["rel_error"] for r in rows]
    out = {"machine": device_fingerprint(args.device, args.threads, latency_dtype(args.dtype), runtime=args.runtime),
           "input_size": list(size), "runtime": args.runtime, "dtype": args.dtype,
           "lut_entries": len(lut["entries"]), "warmup": args.warmup, "repeats": args.repeats, "rounds": args.rounds,
           "lut_table_spread": lut["table_spread"], "lut_max_spread": lut["max_spread"],
           "lut_noisy_entries": lut["noisy_entries"],
           "genotypes": rows, "mean_rel_error": statistics.mean(errors), "max_rel_error": max(errors),
           "calibration": lut.get("calibration"),
           "uncalibrated_mean_rel_error": statistics.mean(r["uncalibrated_rel_error"] for r in rows),
           "op_sum_mean_rel_error": statistics.mean(r["op_sum_rel_error"] for r in rows),
           "network_protocol": protocol, "network_other_load": load.share,
           "measurement_split_half_mean": statistics.mean(r["split_half_rel_diff"] for r in rows),
           "round_profile": round_profile([timed[name] for name, _ in items])}
    if refs:
        out.update({"same_moment_reference": f"the {len(refs)} calibration networks, summed per round",
                    "same_moment_mean_rel_error": statistics.mean(r["same_moment_rel_error"] for r in rows),
                    "same_moment_max_rel_error": max(r["same_moment_rel_error"] for r in rows),
                    "same_moment_split_half_mean": statistics.mean(r["same_moment_split_half"] for r in rows),
                    "same_run_scale": same_run_scale,
                    "same_run_mean_rel_error": statistics.mean(r["same_run_rel_error"] for r in rows),
                    "same_run_max_rel_error": max(r["same_run_rel_error"] for r in rows),
                    "reference_round_medians_ms": [[round(t, 3) for t in timed[f"reference-{i}"]]
                                                   for i in range(len(refs))]})
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"mean relative error {100 * out['mean_rel_error']:.1f}%, max {100 * out['max_rel_error']:.1f}% "
          f"(uncalibrated {100 * out['uncalibrated_mean_rel_error']:.1f}%, op-sum only "
          f"{100 * out['op_sum_mean_rel_error']:.1f}%) -> {args.out}")
    print(f"the measurement itself: fastest odd round vs fastest even round differ by "
          f"{100 * out['measurement_split_half_mean']:.1f}% on average; rounds / fastest (median over networks): "
          f"{out['round_profile']}")
    if refs:
        print(f"against the calibration networks timed in the same rounds: mean error "
              f"{100 * out['same_moment_mean_rel_error']:.1f}%, max {100 * out['same_moment_max_rel_error']:.1f}%; "
              f"the measured ratio's split halves differ by {100 * out['same_moment_split_half_mean']:.1f}%")
        print(f"calibrated on the calibration networks timed in these rounds (scale {same_run_scale:.3f}): mean "
              f"error {100 * out['same_run_mean_rel_error']:.1f}%, max {100 * out['same_run_max_rel_error']:.1f}%")


def split_half(round_medians: list[float]) -> float:
    """|fastest odd round - fastest even round| / the smaller: how far the measurement itself moves
    between two interleaved halves of one run (a floor under any predictor's error)."""
    odd, even = min(round_medians[0::2]), min(round_medians[1::2])
    return abs(odd - even) / min(odd, even)


def same_moment(round_medians: list[float], reference_rounds: list[float], predicted_ratio: float) -> dict:
    """The network against a reference timed in the same rounds: measured = the median over rounds of
    network / reference, predicted = the table's price of the network / the reference's. A drift of
    the machine's speed moves both sides of a round alike, so this judges the table's relative prices
    (what a search compares networks and a latency target by), not its conversion to ms."""
    ratios = [t / r for t, r in zip(round_medians, reference_rounds)]
    measured = statistics.median(ratios)
    odd, even = statistics.median(ratios[0::2]), statistics.median(ratios[1::2])
    return {"same_moment_measured_ratio": measured, "same_moment_predicted_ratio": predicted_ratio,
            "same_moment_rel_error": abs(predicted_ratio - measured) / measured,
            "same_moment_split_half": abs(odd - even) / min(odd, even)}


def round_profile(timed: list[list[float]]) -> list[float]:
    """Per round, the median over networks of that round / the network's fastest: a drift of the
    machine's speed during the run shows as a trend, a burst of load as one high value."""
    return [round(statistics.median(t[k] / min(t) for t in timed), 3) for k in range(len(timed[0]))]


if __name__ == "__main__":
    main()
