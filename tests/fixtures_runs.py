"""Realistic fake run directories written through the contract's schemas (for widget/report tests).

Every file goes through `workbench.runs.RunDir`, so a fixture run looks exactly like what the core
steps write: run_record.json, config.json, metrics.jsonl, alphas.jsonl, genotype.json, DAVIS PNGs.
The numbers are deterministic functions of the epoch so tests can compute expected values by hand.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from workbench.data.io import write_indexed_png, write_rgb
from workbench.jsonio import atomic_write_json
from workbench.runs import RunDir

OPS = ["none", "skip_connect", "sep_conv_3x3", "dil_sep_conv_3x3_d2", "max_pool_3x3"]


def darts_edges(nodes: int = 4, n_inputs: int = 2) -> list[list[int]]:
    """Every earlier node feeds every intermediate node (DARTS cell)."""
    return [[j, i] for i in range(n_inputs, n_inputs + nodes) for j in range(i)]


def softmax(row: list[float]) -> list[float]:
    m = max(row)
    e = [math.exp(v - m) for v in row]
    return [v / sum(e) for v in e]


def cell_alpha(epoch: int, edge_index: int, cell_index: int, n_ops: int) -> list[float]:
    """Raw alphas drift toward op (edge + cell) % n_ops as epochs pass."""
    favourite = (edge_index + cell_index) % n_ops
    return [0.5 * (epoch + 1) if k == favourite else 0.05 * k for k in range(n_ops)]


def alphas_record(epoch: int, *, cells: int = 3, with_fusion: bool = True,
                  with_hyper: bool = False, layers: int = 6) -> dict:
    records = []
    kinds = ["normal", "reduction", "normal", "normal"]
    for c in range(cells):
        edges = darts_edges(4, 2)
        alpha = [cell_alpha(epoch, e, c, len(OPS)) for e in range(len(edges))]
        records.append({"index": c, "kind": kinds[c % len(kinds)], "stride": 8 if c else 4, "ops": OPS,
                        "edges": edges, "alpha": alpha, "alpha_gcn": None,
                        "weights": [softmax(a) for a in alpha]})
    extra = [("fusion", 3)] if with_fusion else []
    extra += [("aggregation", 2)] if with_hyper else []
    for kind, n_inputs in extra:
        edges = darts_edges(2, n_inputs)
        alpha = [cell_alpha(epoch, e, len(records), len(OPS)) for e in range(len(edges))]
        records.append({"index": len(records), "kind": kind, "stride": 8, "ops": OPS, "edges": edges,
                        "alpha": alpha, "alpha_gcn": None, "weights": [softmax(a) for a in alpha]})
    hyper = None
    if with_hyper:
        hyper = {"choices": ["keep", "down", "prune"], "scales": [4, 8, 16, 32],
                 "weights": [softmax([1.0 + (layer % 2) * epoch * 0.3, 1.0 + ((layer + 1) % 2) * epoch * 0.3,
                                      0.5]) for layer in range(layers)]}
    return {"epoch": epoch, "temperature": max(0.1, 1.0 - 0.2 * epoch), "gamma": 0.5,
            "cells": records, "hyper": hyper}


def genotype_from_alphas(rec: dict, preset: str, num_classes: int = 19) -> dict:
    """Keep the two strongest non-'none' incoming edges per node (DARTS derivation)."""
    def derive(cell: dict) -> tuple[list[dict], list[int]]:
        ops = cell["ops"]
        by_node: dict[int, list[tuple[float, dict]]] = {}
        for (src, dst), w in zip(cell["edges"], cell["weights"]):
            k = max((i for i in range(len(ops)) if ops[i] != "none"), key=lambda i: w[i])
            by_node.setdefault(dst, []).append((w[k], {"from": src, "to": dst, "op": ops[k]}))
        edges = [e for dst in sorted(by_node) for _, e in sorted(by_node[dst], key=lambda t: -t[0])[:2]]
        return edges, sorted(by_node)

    cells, fusion, aggregation = [], None, None
    for cell in rec["cells"]:
        edges, nodes = derive(cell)
        if cell["kind"] in ("normal", "reduction"):
            cells.append({"index": cell["index"], "kind": cell["kind"], "stride": cell["stride"],
                          "channels": 48, "nodes": len(nodes), "edges": edges, "concat": nodes})
        else:
            n_inputs = min(nodes)
            block = {"kind": cell["kind"], "stride": 8, "channels": 64, "inputs": list(range(n_inputs)),
                     "nodes": len(nodes), "edges": edges, "concat": nodes}
            fusion, aggregation = (block, aggregation) if cell["kind"] == "fusion" else (fusion, block)
    hyper = None
    if rec.get("hyper"):  # the path the chain cells imply: a pruned layer first, then one layer per cell
        path = [{"layer": 0, "choice": "prune", "stride": 4}]
        path += [{"layer": i + 1, "choice": "down" if c["kind"] == "reduction" else "keep", "stride": c["stride"]}
                 for i, c in enumerate(cells)]
        hyper = {"scales": rec["hyper"]["scales"], "path": path}
        fusion = None  # AutoRTNet fuses with its aggregation cell only
    return {"schema": "workbench.genotype", "version": 1, "preset": preset, "num_classes": num_classes,
            "input_size": [64, 128], "stem_channels": 32, "head_channels": 64, "ops": OPS,
            "cells": cells, "fusion": fusion, "hyper": hyper, "aggregation": aggregation,
            "expected_latency_ms": 12.3}


def make_search_run(path: str | Path, *, preset: str = "lgcnet", epochs: int = 4, latency_weight: float = 0.1,
                    seed: int = 0, with_hyper: bool | None = None, initial: bool = True) -> RunDir:
    """A finished search run with per-epoch metrics, alphas (with an epoch -1 line) and a genotype."""
    with_hyper = preset == "autortnet" if with_hyper is None else with_hyper
    run = RunDir(path)
    run.write_config({"preset": preset, "epochs": epochs, "latency_weight": latency_weight, "seed": seed,
                      "dataset": "cityscapes", "data_root": "datasets/synth-cityscapes"})
    run.start("search", preset=preset, latency_weight=latency_weight, seed=seed, dataset="cityscapes")
    first = -1 if initial else 0
    for epoch in range(first, epochs):
        rec = alphas_record(epoch, with_hyper=with_hyper, with_fusion=preset != "gas")
        run.log_alphas(rec)
        if epoch >= 0:
            run.log_metrics({"epoch": epoch, "phase": "search", "train_loss": 2.0 / (epoch + 1),
                             "arch_loss": 2.2 / (epoch + 1), "val_miou": 0.1 + 0.05 * epoch,
                             "expected_latency_ms": 20.0 - epoch, "temperature": rec["temperature"],
                             "epoch_time_s": 1.5})
    atomic_write_json(run.genotype_path, genotype_from_alphas(rec, preset))
    run.update(metrics={"val_miou": 0.1 + 0.05 * (epochs - 1), "expected_latency_ms": 20.0 - (epochs - 1)},
               artifacts={"genotype": "genotype.json"})
    run.finish()
    return run


def make_retrain_run(path: str | Path, *, miou: float, latency_ms: float, preset: str = "lgcnet",
                     latency_weight: float | None = 0.1, seed: int = 0, baseline: str | None = None,
                     genotype: dict | None = None, epochs: int = 3, status: str = "finished",
                     separate_benchmark: bool = False) -> RunDir:
    """A retrain (or hand-designed baseline) run with mIoU and a measured latency, either in its own
    record or (separate_benchmark) in a 'benchmark' sub-run whose config names it, as
    `run_benchmark({"run": ...}, RUN/benchmark)` writes."""
    run = RunDir(path)
    kind = "baseline" if baseline else "retrain"
    run.write_config({"genotype": None if baseline else "genotype.json", "baseline": baseline, "epochs": epochs,
                      "seed": seed, "dataset": "cityscapes"})
    run.start(kind, preset=baseline or preset, latency_weight=None if baseline else latency_weight,
              seed=seed, dataset="cityscapes")
    for epoch in range(epochs):
        run.log_metrics({"epoch": epoch, "phase": "train", "loss": 1.5 / (epoch + 1), "lr": 0.01 * (1 - epoch / epochs)})
        run.log_metrics({"epoch": epoch, "phase": "val", "miou": miou * (epoch + 1) / epochs, "pixel_acc": 0.5})
    artifacts = {"checkpoint": "checkpoints/last.pt"}
    if genotype is not None:
        atomic_write_json(run.genotype_path, genotype)
        artifacts["genotype"] = "genotype.json"
    measured = {"latency_ms": latency_ms, "fps": 1000.0 / latency_ms, "params_m": 1.2, "gflops": 3.4}
    run.update(metrics={"miou": miou, "pixel_acc": 0.5, **({} if separate_benchmark else measured)},
               artifacts=artifacts)
    if separate_benchmark:
        bench = RunDir(run.path / "benchmark")
        bench.write_config({"run": str(run.path), "size": [64, 128], "device": "cpu"})
        bench.start("benchmark", network="genotype", device={"name": "test-cpu", "threads": 1})
        bench.update(metrics=measured)
        bench.finish()
    if status == "failed":
        run.finish("failed", error="RuntimeError: out of memory")
    elif status != "running":
        run.finish(status)
    return run


def make_sweep(root: str | Path) -> dict[str, RunDir]:
    """Four searched+retrained architectures and two baselines with a known Pareto front.

    (latency, miou): a (10, .50) b (20, .60) c (15, .45)* d (30, .58)* base1 (8, .40) base2 (25, .65).
    Dominated (*): c by a, d by b. Pareto: base1, a, b, base2.
    """
    root = Path(root)
    genotype = genotype_from_alphas(alphas_record(3), "lgcnet")
    runs = {}
    for name, lat, miou, lw in [("a", 10.0, 0.50, 0.3), ("b", 20.0, 0.60, 0.1), ("c", 15.0, 0.45, 0.2),
                                ("d", 30.0, 0.58, 0.0)]:
        runs[name] = make_retrain_run(root / name / "retrain", miou=miou, latency_ms=lat, latency_weight=lw,
                                      genotype=genotype, separate_benchmark=name == "a")
    runs["base1"] = make_retrain_run(root / "base1", miou=0.40, latency_ms=8.0, baseline="fast_scnn")
    runs["base2"] = make_retrain_run(root / "base2", miou=0.65, latency_ms=25.0, baseline="bisenetv2")
    runs["broken"] = make_retrain_run(root / "broken", miou=0.9, latency_ms=1.0, status="failed")
    return runs


def make_davis(root: str | Path, *, sequences: tuple[str, ...] = ("blob",), frames: int = 6,
               size: tuple[int, int] = (48, 64)) -> Path:
    """A tiny DAVIS-2017-format tree: two square objects moving right, one frame per step."""
    root = Path(root)
    h, w = size
    for seq in sequences:
        for t in range(frames):
            image = np.full((h, w, 3), 40, np.uint8)
            mask = np.zeros((h, w), np.uint8)
            mask[8:20, 4 + 3 * t:16 + 3 * t] = 1
            mask[28:40, 30 + 2 * t:40 + 2 * t] = 2
            image[mask == 1] = (200, 60, 60)
            image[mask == 2] = (60, 200, 60)
            write_rgb(root / "JPEGImages" / "480p" / seq / f"{t:05d}.jpg", image)
            write_indexed_png(root / "Annotations" / "480p" / seq / f"{t:05d}.png", mask)
    (root / "ImageSets" / "2017").mkdir(parents=True, exist_ok=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("".join(s + "\n" for s in sequences))
    return root


def make_vos_run(path: str | Path, davis_root: str | Path, *, sequence: str = "blob", lag: int = 1) -> RunDir:
    """A finished vos_segment run whose predictions lag the ground truth by `lag` frames after frame 0."""
    from workbench.data.io import read_indexed_png

    run = RunDir(path)
    davis_root = Path(davis_root)
    run.write_config({"data_root": str(davis_root), "split": "val", "resolution": "480p"})
    run.start("vos_segment", dataset="davis", seed=0)
    ann = sorted((davis_root / "Annotations" / "480p" / sequence).glob("*.png"))
    for t, src in enumerate(ann):
        gt = read_indexed_png(ann[max(0, t - lag) if t else 0])
        write_indexed_png(run.path / "onepass" / sequence / src.name, gt)
        write_indexed_png(run.path / "copy" / sequence / src.name, read_indexed_png(ann[0]))
    results = {"onepass": {"jf": 0.7, "j_mean": 0.72, "f_mean": 0.68, "fps": 30.0},
               "copy": {"jf": 0.4, "j_mean": 0.42, "f_mean": 0.38, "fps": 900.0}}
    run.update(metrics=dict(results["onepass"]), methods_results=results,
               artifacts={"predictions_onepass": "onepass", "predictions_copy": "copy"})
    run.finish()
    return run


def make_sweep_with_frontier(root: str | Path) -> Path:
    """make_sweep, then its frontier run in ROOT/frontier (what the frontier notebook writes)."""
    from workbench.frontier import run_frontier

    root = Path(root)
    make_sweep(root)
    run_frontier({"roots": [str(root)]}, root / "frontier")
    return root
