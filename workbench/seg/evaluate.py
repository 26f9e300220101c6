"""Evaluation: full-resolution inference and mIoU of a model or of a retrained run's checkpoint.

Images whose size is not a multiple of the network's output stride (CamVid's 360x480) are padded
at the bottom/right and the logits cropped back, so every labelled pixel is scored at full
resolution. `eval_size` instead resizes the input and upsamples the logits back to the label size.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from workbench.config import field, from_dict, to_dict
from workbench.device import resolve_device, set_threads
from workbench.errors import CheckpointError, ConfigError
from workbench.jsonio import atomic_write_json
from workbench.outputs import check_output
from workbench.runs import RunDir
from workbench.seg.distributed import DistInfo, all_reduce_sum

log = logging.getLogger(__name__)


@torch.inference_mode()
def infer(model: nn.Module, images: torch.Tensor, size_divisor: int,
          eval_size: tuple[int, int] | None = None) -> torch.Tensor:
    """Logits [N, C, H, W] at the size of `images` [N, 3, H, W]."""
    h, w = images.shape[-2:]
    if eval_size is not None:
        x = F.interpolate(images, size=tuple(eval_size), mode="bilinear", align_corners=False)
        logits = model(x)
    else:
        ph, pw = -h % size_divisor, -w % size_divisor
        x = F.pad(images, (0, pw, 0, ph)) if (ph or pw) else images
        logits = model(x)
        if logits.shape[-2:] == x.shape[-2:]:
            logits = logits[..., :h, :w]
    if logits.shape[-2:] != (h, w):
        logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
    return logits


def evaluate_model(model: nn.Module, dataset, device: torch.device, size_divisor: int,
                   eval_size: tuple[int, int] | None = None, info: DistInfo | None = None,
                   desc: str = "eval") -> dict:
    """mIoU etc. over a dataset; under torchrun each process scores a shard and the confusion
    matrices are summed, so the result is the same as a single-process evaluation."""
    from workbench.metrics.segmentation import ConfusionMatrix

    info = info or DistInfo()
    model.eval()
    cm = ConfusionMatrix(dataset.num_classes, ignore_index=dataset.ignore_index)
    indices = range(info.rank, len(dataset), info.world_size)
    for i in tqdm(indices, desc=desc, disable=not info.is_main, leave=False):
        image, label = dataset[i]
        pred = infer(model, image[None].to(device), size_divisor, eval_size).argmax(1)[0]
        cm.update(pred, label.to(pred.device))
    if info.enabled:
        for name in ("matrix", "unmatched"):
            total = all_reduce_sum(torch.as_tensor(getattr(cm, name), dtype=torch.int64), info)
            setattr(cm, name, total.numpy())
    return cm.compute()


# --- evaluating a retrained run -----------------------------------------------------------------


@dataclass
class EvaluateConfig:
    run: str = field(help="retrain run directory (holds config.json, genotype.json, checkpoints/)")
    split: str = field("val", help="split to score")
    data_root: str | None = field(None, help="dataset root (default: the run's)")
    dataset: str | None = field(None, help="cityscapes or camvid (default: the run's)")
    checkpoint: str | None = field(None, help="checkpoint file (default: RUN/checkpoints/last.pt)")
    eval_size: tuple[int, int] | None = field(None, help="resize inputs to HxW (default: full resolution)")
    device: str = field("auto", help="cpu, cuda or auto")
    threads: int | None = field(None, help="CPU threads")


def load_run_model(run: str | Path, device: torch.device, checkpoint: str | Path | None = None):
    """(model with trained weights, spec, the run's retrain config dict) of a retrain run."""
    from workbench.seg.model import build_from_spec, check_fingerprint, model_spec
    from workbench.seg.weight_ema import deployed_weights

    run = RunDir(run)
    cfg = run.read_config()
    if not cfg:
        raise ConfigError(f"run: {run.path} has no config.json (not a retrain run directory)")
    kind = run.record().get("kind")
    if kind not in (None, "retrain", "baseline"):
        hint = f"; retrain its genotype first (workbench retrain --genotype {run.genotype_path} ...)" \
            if kind == "search" else ""
        raise ConfigError(f"run: {run.path} is a {kind} run, not a retrain run{hint}")
    genotype = run.genotype_path if run.genotype_path.exists() else cfg.get("genotype")
    spec = model_spec(genotype=None if cfg.get("baseline") else genotype, baseline=cfg.get("baseline"),
                      num_classes=cfg.get("num_classes"))
    ckpt_path = Path(checkpoint) if checkpoint else run.checkpoint_dir / "last.pt"
    if not ckpt_path.is_file():
        raise CheckpointError(f"{ckpt_path}: checkpoint not found" + ("" if checkpoint else " (train the run first)"))
    state = _load(ckpt_path)
    check_fingerprint(state, spec, ckpt_path)
    model = build_from_spec(spec)
    model.load_state_dict(deployed_weights(state))
    return model.to(device).eval(), spec, cfg


def _load(path: Path) -> dict:
    from workbench.runs import load_state

    state = load_state(path)
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{path}: not a workbench retrain checkpoint (no 'model' entry)")
    return state


def run_inputs(cfg) -> list:
    """What evaluate/predict read: the run's records and checkpoints, the checkpoint and the data."""
    run = RunDir(cfg.run)
    data_root = cfg.data_root or (run.read_config() if run.config_path.is_file() else {}).get("data_root")
    return [*run.input_files(), cfg.checkpoint, data_root]


def load_run_for_split(cfg) -> tuple:
    """The retrained model of `cfg.run` and the split it is applied to, checked to agree.

    Shared by evaluate and predict: dataset and data root default to the run's own.
    Returns (model, spec, train_config, dataset, device).
    """
    from workbench.data.segmentation import build_seg_dataset

    set_threads(cfg.threads)
    device = resolve_device(cfg.device)
    model, spec, train_cfg = load_run_model(cfg.run, device, cfg.checkpoint)
    name = cfg.dataset or train_cfg.get("dataset", "cityscapes")
    root = cfg.data_root or train_cfg.get("data_root")
    dataset = build_seg_dataset(name, root, cfg.split, train=False)
    if dataset.num_classes != spec.num_classes:
        raise ConfigError(f"dataset: {name} has {dataset.num_classes} classes but the network "
                          f"predicts {spec.num_classes}")
    return model, spec, train_cfg, dataset, device


def run_evaluate(config: EvaluateConfig | dict, run_dir: str | Path | None = None) -> dict:
    """Score a retrained run's checkpoint on a split; writes `evaluation_{split}.json` into run_dir
    (default: the retrain run itself). Returns {'miou', 'pixel_acc', 'mean_acc', 'per_class_iou', ...}."""

    cfg = from_dict(EvaluateConfig, config, source="evaluate")
    out = Path(run_dir or cfg.run) / f"evaluation_{cfg.split}.json"
    check_output(out, inputs=run_inputs(cfg))
    model, spec, train_cfg, dataset, device = load_run_for_split(cfg)
    dataset_name = cfg.dataset or train_cfg.get("dataset", "cityscapes")
    root = cfg.data_root or train_cfg.get("data_root")
    eval_size = cfg.eval_size or (tuple(train_cfg["eval_size"]) if train_cfg.get("eval_size") else None)
    result = evaluate_model(model, dataset, device, model.size_divisor, eval_size, desc=f"eval {cfg.split}")
    result = {"miou": float(result["miou"]), "pixel_acc": float(result["pixel_acc"]),
              "mean_acc": float(result.get("mean_acc", float("nan"))),
              "per_class_iou": dict(zip(dataset.class_names, map(float, result["per_class_iou"]))),
              "split": cfg.split, "dataset": dataset_name, "data_root": str(root),
              "images": len(dataset), "eval_size": eval_size, "config": to_dict(cfg)}
    if RunDir(out.parent).exists():  # into a run directory: not while another process writes it
        with RunDir(out.parent).lock():
            atomic_write_json(out, result)
    else:
        atomic_write_json(out, result)
    log.info("%s %s: mIoU %.4f, pixel acc %.4f (%d images) -> %s", spec.name, cfg.split,
             result["miou"], result["pixel_acc"], len(dataset), out)
    return result
