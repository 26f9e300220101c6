"""The steps of the workbench: every user action is one function here.

The CLI (`workbench.cli`), the notebooks and batch sweeps (`workbench.lab`) call these and
nothing else of the core, so no logic lives only in a front door. A step takes a config (its
dataclass, or a plain dict validated here) and, where it writes a run, the run directory.
Imports are lazy so that importing `workbench.steps` stays cheap in a notebook.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


# -- data and metrics ---------------------------------------------------------------------------
def synth_data(kind: str, out: str | Path, **options: Any) -> Path:
    """Generate a synthetic dataset ('cityscapes', 'camvid' or 'davis') in its real format."""
    from workbench.data.synth import generate

    return generate(kind, out, **options)


def check_data(kind: str, root: str | Path, split: str | None = None) -> dict:
    """Read every file of a dataset tree through the training loaders; a summary per split."""
    from workbench.data.check import check_dataset

    return check_dataset(kind, Path(root), split)


def _json_result(result: dict, json_out: str | Path | None) -> dict:
    if json_out is not None:
        from workbench.jsonio import atomic_write_json

        atomic_write_json(json_out, result)
    return result


def evaluate_predictions(dataset: str, root: str | Path, split: str, pred_dir: str | Path,
                         json_out: str | Path | None = None) -> dict:
    """mIoU, per-class IoU and pixel accuracy of prediction PNGs (the official evaluator's numbers);
    also written to json_out when given."""
    from workbench.metrics.segmentation import evaluate_predictions as evaluate
    from workbench.outputs import check_output

    if json_out is not None:
        check_output(json_out, inputs=[root, pred_dir])
    return _json_result(evaluate(dataset, root, split, pred_dir), json_out)


def evaluate_vos(root: str | Path, split: str, results_dir: str | Path, sequences: list[str] | None = None,
                 resolution: str = "480p", json_out: str | Path | None = None, layout: str = "davis") -> dict:
    """J&F of a results tree; also written to json_out. layout 'davis': DAVIS 2017 (the official
    toolkit's numbers); 'youtube-vos': each object from its first annotated frame on."""
    from workbench.errors import ConfigError
    from workbench.metrics.davis import evaluate_vos as evaluate
    from workbench.metrics.youtube_vos import evaluate_youtube_vos
    from workbench.outputs import check_output

    if layout not in ("davis", "youtube-vos"):
        raise ConfigError(f"layout: unknown {layout!r} (davis or youtube-vos)")
    if json_out is not None:
        check_output(json_out, inputs=[root, results_dir])
    if layout == "youtube-vos":
        return _json_result(evaluate_youtube_vos(root, split, results_dir, videos=sequences), json_out)
    return _json_result(evaluate(root, split, results_dir, sequences=sequences, resolution=resolution), json_out)


def class_names(dataset: str) -> list[str]:
    """The train-id class names of 'cityscapes' or 'camvid'."""
    from workbench.metrics.segmentation import class_names as names

    return names(dataset)


def copy_first_frame(root: str | Path, split: str, out: str | Path, resolution: str = "480p") -> Path:
    """The trivial VOS baseline: every frame gets the first-frame mask."""
    from workbench.metrics.baselines import copy_first_frame as copy
    from workbench.outputs import check_output

    check_output(out, kind="dir", inputs=[root])
    return copy(root, split, out, resolution=resolution)


def most_frequent_class(dataset: str, root: str | Path, split: str, out: str | Path,
                        train_split: str = "train") -> int:
    """The trivial segmentation baseline: the train split's most frequent class everywhere."""
    from workbench.metrics.baselines import most_frequent_class as most_frequent
    from workbench.outputs import check_output

    check_output(out, kind="dir", inputs=[root])
    return most_frequent(dataset, root, split, out, train_split=train_split)


# -- architecture search ------------------------------------------------------------------------
def build_lut(config: dict, out: str | Path | None = None, genotype: str | Path | None = None) -> dict:
    """Time a search space's pieces (or one genotype's) on this device; write latency_lut.json to out."""
    from workbench.nas.search import build_table

    return build_table(config, out, genotype)


def preset_names() -> list[str]:
    """The named search presets (gas, lgcnet, autortnet, ...)."""
    from workbench.nas.presets import PRESETS

    return sorted(PRESETS)


def search(config: Any, run_dir: str | Path) -> dict:
    """Architecture search (GAS / LGCNet / AutoRTNet presets); returns the run record."""
    from workbench.nas.search import run_search

    return run_search(config, run_dir)


def derive(run_dir: str | Path):
    """Re-derive genotype.json from a search run's last checkpoint; returns the genotype."""
    from workbench.nas.rederive import rederive

    return rederive(run_dir)


def scale_genotype(genotype: str | Path, width: float, out: str | Path, depth: int = 1) -> Path:
    """Write a widened and/or deepened copy of a genotype (`workbench.nas.genotypes.scale_width`,
    `scale_depth`)."""
    from workbench.errors import ConfigError
    from workbench.nas.genotypes import save_genotype, scale_depth, scale_width

    if width == 1.0 and depth == 1:
        raise ConfigError("width/depth: give a width multiplier other than 1 or a depth of 2 or more")
    scaled = scale_width(genotype, width) if width != 1.0 else genotype
    scaled = scale_depth(scaled, depth) if depth != 1 else scaled
    if Path(out).resolve() == Path(genotype).resolve():
        raise ConfigError(f"{out}: the output would overwrite the input genotype")
    return save_genotype(scaled, out)


def describe_genotype(path: str | Path) -> str:
    """A genotype file as readable text (cells, ops, strides, expected latency)."""
    from workbench.nas.genotypes import load_genotype

    return str(load_genotype(path))


def predict_latency(genotype: str | Path, lut: str | Path | dict) -> float:
    """The latency table's prediction (ms) for a genotype."""
    from workbench.nas.latency.table import predict_genotype_latency

    return predict_genotype_latency(genotype, lut)


# -- retrain, evaluate, deploy ------------------------------------------------------------------
def retrain(config: Any, run_dir: str | Path) -> dict:
    """Train a derived network (from genotype.json) or a baseline from scratch; evaluate mIoU."""
    from workbench.seg.retrain import run_retrain

    return run_retrain(config, run_dir)


def pretrain(config: Any, run_dir: str | Path) -> dict:
    """Pretrain a derived network's stem and body as an ImageFolder classifier (top-1/top-5)."""
    from workbench.seg.pretrain import run_pretrain

    return run_pretrain(config, run_dir)


def evaluate(config: Any, run_dir: str | Path | None = None) -> dict:
    """Evaluate a retrained run's checkpoint on a split (mIoU, per-class IoU)."""
    from workbench.seg.evaluate import run_evaluate

    return run_evaluate(config, run_dir)


def predict(config: Any) -> dict:
    """Write a retrained run's predictions as the PNGs the evaluators read."""
    from workbench.seg.predict import run_predict

    return run_predict(config)


def benchmark(config: Any, run_dir: str | Path | None = None, json_out: str | Path | None = None) -> dict:
    """Latency, FPS, FLOPs, params, memory and LUT-predicted latency of a network; also written to
    json_out when given."""
    from workbench.config import from_dict
    from workbench.outputs import check_output
    from workbench.seg.benchmark import BenchmarkConfig, benchmark_inputs, run_benchmark

    if json_out is not None:
        check_output(json_out, inputs=benchmark_inputs(from_dict(BenchmarkConfig, config, source="bench")))
    return _json_result(run_benchmark(config, run_dir), json_out)


def export(config: Any) -> dict:
    """Export a retrained run to TorchScript or ONNX, verified on reload."""
    from workbench.seg.export import run_export

    return run_export(config)


def list_baselines() -> dict[str, str]:
    """Hand-designed baselines by name, with their architecture and encoder."""
    from workbench.seg.baselines import BASELINES

    return {name: f"{arch} + {enc}" for name, (arch, enc, _) in BASELINES.items()}


# -- video object segmentation ------------------------------------------------------------------
def train_vos(config: Any, run_dir: str | Path) -> dict:
    """Train the one-pass VOS network (OVS-Net) on a DAVIS-format split."""
    from workbench.vos.train import run_train

    return run_train(config, run_dir)


def segment_video(config: Any, run_dir: str | Path) -> dict:
    """Segment videos one-pass (and baselines), write DAVIS PNGs, score J&F and fps."""
    from workbench.vos.segment import run_segment

    return run_segment(config, run_dir)


# -- runs, frontier, studies --------------------------------------------------------------------
def frontier(config: Any, run_dir: str | Path) -> dict:
    """Collect runs into an accuracy-latency frontier record (frontier.json)."""
    from workbench.frontier import run_frontier

    return run_frontier(config, run_dir)


def list_runs(root: str | Path) -> list[dict]:
    """One row per run directory under root (unreadable runs included, with the reason)."""
    from workbench.runs import list_runs as rows

    return rows(root)


def runs_table(root: str | Path) -> str:
    """The runs under root as a text table."""
    from workbench.runs import format_table, list_runs

    return format_table(list_runs(root))


def retrain_preset(name: str) -> dict:
    """The paper-scale retrain settings of a search preset (`gas-paper`, ...), to start a config from."""
    from workbench.errors import ConfigError
    from workbench.nas.paper_presets import PAPER_RETRAIN

    if name not in PAPER_RETRAIN:
        raise ConfigError(f"preset: unknown retrain preset {name!r} (known: {', '.join(sorted(PAPER_RETRAIN))})")
    return dict(PAPER_RETRAIN[name])


def bench_study(root: str | Path, size: tuple[int, int] | None = None, threads: int | None = None, rounds: int = 7,
                repeats: int = 10, warmup: int = 3, device: str = "cpu", baselines: tuple[str, ...] = ()) -> dict:
    """Time every retrained network of a study together, round-robin (ROOT/study_latency.json)."""
    from workbench.study.bench import bench_study as bench

    return bench(root, size, threads, rounds, repeats, warmup, device, tuple(baselines))


def summarize_study(root: str | Path, json_out: str | Path | None = None, k: float = 2.0) -> dict:
    """Judge the seed papers' claims from a study's run directories (ablations.json)."""
    from workbench.study.claims import summarize

    return summarize(root, json_out, k)
