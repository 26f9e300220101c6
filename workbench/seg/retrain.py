"""Retrain a derived network (genotype.json) or a baseline from scratch and evaluate its mIoU.

How it trains is a named recipe (`workbench.seg.recipes`): `plain-v1` (the default) is SGD with
a poly learning rate per iteration, random scale/crop/flip, cross entropy, fp32; other recipes
add a warm-up and cosine schedule, AdamW, OHEM, distillation from a cached teacher
(`workbench.seg.teacher`), a timed choice of memory format and precision
(`workbench.seg.throughput`) and decoded-once images. A checkpoint is written after every epoch and carries the
architecture fingerprint. Resume guarantee: every epoch re-seeds all RNGs from (seed, epoch,
rank), so a run killed at any point and resumed from its last checkpoint ends with exactly the same
weights and metrics as an uninterrupted run on the same machine, thread count and process count
(tested with a real SIGKILL).

Multi-process: under `torchrun` the model is wrapped in DistributedDataParallel; `batch_size` is
the global batch, split evenly over the processes, so the number of optimizer steps and the
learning-rate schedule do not depend on the process count. Only rank 0 writes files.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from workbench.allocator import loaded_allocator
from workbench.config import field, from_dict, resume_config, to_dict
from workbench.device import resolve_device, seed_everything, set_threads
from workbench.errors import ConfigError, check_finite
from workbench.jsonio import atomic_write_json, read_json, truncate_jsonl
from workbench.outputs import check_output
from workbench.runs import RunDir
from workbench.seg import distributed as dist_utils
from workbench.seg import recipes, throughput
from workbench.seg.aux_heads import AuxHeads, TrainingNet
from workbench.seg.evaluate import evaluate_model
from workbench.seg.losses import Objective
from workbench.seg.model import build_from_spec, check_fingerprint, check_size, count_params, model_spec
from workbench.seg.weight_ema import build_ema, ema_state, load_ema_state

log = logging.getLogger(__name__)


@dataclass
class RetrainConfig:
    ALIASES: ClassVar[dict[str, str]] = {"crop": "crop_size", "workers": "num_workers"}  # 0.1 names

    genotype: str | None = field(None, help="genotype.json of a search run (or give baseline)")
    baseline: str | None = field(None, help="hand-designed baseline name (workbench.seg.baselines)")
    width: float = field(1.0, min=0.0, help="width multiplier of the genotype's channels, as `workbench scale`")
    depth: int = field(1, min=1, max=16, help="each layer of the genotype repeated this many times, as `workbench scale`")
    init_from: str | None = field(None, help="a `workbench pretrain` run: start from its stem and body")
    dataset: Literal["cityscapes", "camvid"] = field("cityscapes", help="dataset format")
    data_root: str = field("datasets/synth-cityscapes", help="dataset root directory")
    train_split: str = field("train", help="training split")
    val_split: str = field("val", help="split scored after training")
    holdout: float = field(0.0, min=0.0, max=0.5, help="hold this fraction of train_split out of training and "
                                                       "score it instead of val_split (architecture selection)")
    epochs: int = field(100, min=1, help="training epochs")
    crop_size: tuple[int, int] = field((512, 1024), help="training crop HxW (divisible by the output stride)")
    batch_size: int | None = field(None, min=1, help="global batch size, split over torchrun processes (default: the recipe's)")
    recipe: str = field("plain-v1", help="retrain recipe (workbench.seg.recipes); fields left unset take its values")
    optimizer: str | None = field(None, help="sgd or adamw (default: the recipe's)")
    lr: float | None = field(None, min=0.0, help="peak learning rate (default: the recipe's)")
    schedule: str | None = field(None, help="poly, cosine or exp, per iteration after the warm-up")
    poly_power: float | None = field(None, min=0.0, help="poly learning-rate exponent")
    exp_final: float | None = field(None, min=0.0, max=1.0, help="exp schedule: the last step's lr / the peak")
    warmup: float | None = field(None, min=0.0, help="linear warm-up over this fraction of the steps")
    momentum: float | None = field(None, min=0.0, max=1.0, help="SGD momentum (AdamW beta1)")
    weight_decay: float | None = field(None, min=0.0, help="weight decay")
    scale_range: tuple[float, float] | None = field(None, help="random scale range")
    flip: bool | None = field(None, help="random horizontal flip")
    loss: str | None = field(None, help="ce or ohem (online hard example mining)")
    ohem_thresh: float | None = field(None, help="OHEM: hard when p(true class) is below this")
    ohem_min_kept: float | None = field(None, help="OHEM: fraction of valid pixels always kept")
    teacher: str | None = field(None, help="distillation teacher: a baseline name (trained once, cached)")
    teacher_epochs: int | None = field(None, min=1, help="teacher's epochs (default: the student's)")
    teacher_seed: int | None = field(None, min=0, help="teacher's seed (shared by students of every seed)")
    distill_weight: float | None = field(None, min=0.0, help="weight of the distillation KL (0: off)")
    distill_temperature: float | None = field(None, help="distillation temperature T")
    aux_weight: float | None = field(None, min=0.0, help="weight of each auxiliary head's loss (0: no heads)")
    aux_strides: tuple[int, ...] | None = field(None, help="strides of the body stages auxiliary heads read")
    ema_decay: float | None = field(None, help="keep an average of the weights with this decay (0: off)")
    memory_format: str | None = field(None, help="contiguous, channels_last or auto (timed at run start)")
    precision: str | None = field(None, help="fp32, bf16 (autocast forward) or auto (timed at run start)")
    preload: bool | None = field(None, help="decode every image once into memory")
    eval_size: tuple[int, int] | None = field(None, help="evaluation input HxW (default: full resolution)")
    eval_every: int = field(0, min=0, help="also evaluate every N epochs (0: only after the last)")
    device: str = field("auto", help="cpu, cuda, cuda:N or auto")
    threads: int | None = field(None, min=1, help="CPU threads per process")
    num_workers: int = field(0, min=0, help="data-loader worker processes")
    seed: int = field(0, min=0, help="seed of weights, sampling and augmentation")
    sync_bn: bool = field(True, help="SyncBatchNorm under multi-GPU torchrun")
    amp: bool = field(False, help="bfloat16 autocast for the training forward on CUDA (= precision bf16)")
    resume: bool = field(False, help="continue from RUN_DIR/checkpoints/last.pt")
    overwrite: bool = field(False, help="replace an earlier run in the run directory")
    name: str | None = field(None, help="run name (default: the directory name)")

    def validate(self) -> None:
        if (self.genotype is None) == (self.baseline is None):
            raise ConfigError("genotype/baseline: give exactly one of a genotype file or a baseline name")
        if not (0 < self.width < float("inf")):
            raise ConfigError(f"width: must be a positive finite number, got {self.width!r}")
        if self.width != 1.0 and self.baseline is not None:
            raise ConfigError(f"width: scales a searched genotype, not the baseline {self.baseline!r}")
        if self.depth != 1 and self.baseline is not None:
            raise ConfigError(f"depth: deepens a searched genotype, not the baseline {self.baseline!r}")
        if self.init_from and self.baseline is not None:
            raise ConfigError("init_from: pretrained weights are for a searched genotype, not a baseline")
        recipes.resolve(self)  # unknown recipe, bad choices and ranges: one ConfigError naming the field


def poly_lr(base_lr: float, step: int, max_steps: int, power: float) -> float:
    return base_lr * (1 - min(step, max_steps) / max_steps) ** power


def _search_fields(genotype_path: str, genotype: dict) -> dict:
    """preset / latency_weight of the search run that produced the genotype, when known."""
    out = {"preset": genotype.get("preset"), "latency_weight": None}
    folder = Path(genotype_path).parent
    for name in ("run_record.json", "config.json"):
        path = folder / name
        if path.exists():
            try:
                rec = read_json(path)
            except (OSError, ValueError):
                continue
            # a selection or one-shot search's config carries a λ it never used
            for key in ("preset", "latency_weight") if rec.get("strategy", "gradient") == "gradient" else ("preset",):
                if out.get(key) is None and rec.get(key) is not None:
                    out[key] = rec[key]
    return out


def _train_step(model, optimizer, images, labels, ignore_index: int, amp: bool = False,
                where: str = "train loss", objective: Objective | None = None) -> float:
    """One optimizer step. The forward (student and teacher) runs under bf16 autocast when `amp`;
    the loss is always computed in fp32."""
    with torch.autocast(device_type=images.device.type, dtype=torch.bfloat16, enabled=amp):
        logits = model(images)
        teacher_logits = objective.teacher_logits(images) if objective is not None else None
    logits, aux_logits = logits if isinstance(logits, tuple) else (logits, None)  # a TrainingNet's heads
    logits = logits.float()
    if logits.shape[-2:] != labels.shape[-2:]:
        logits = F.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=False)
    if objective is None:
        loss = F.cross_entropy(logits, labels, ignore_index=ignore_index)
    else:
        loss = objective(logits, labels, teacher_logits, aux_logits)
    value = check_finite(float(loss.detach()), where)  # before the step: the weights stay finite
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return value


def build_optimizer(params, values: dict) -> torch.optim.Optimizer:
    """SGD (momentum, weight decay) or AdamW (beta1 = momentum, decoupled weight decay)."""
    if values["optimizer"] == "adamw":
        return torch.optim.AdamW(params, lr=values["lr"], betas=(values["momentum"], 0.999),
                                 weight_decay=values["weight_decay"])
    return torch.optim.SGD(params, lr=values["lr"], momentum=values["momentum"],
                           weight_decay=values["weight_decay"])


def run_retrain(config: RetrainConfig | dict, run_dir: str | Path, kind: str | None = None) -> dict:
    """Train from scratch (or resume), evaluate on the val split; returns the run record. `kind`
    names the run's kind instead of 'retrain'/'baseline' (a selection's candidates are not retrains
    a study benchmarks)."""
    cfg = from_dict(RetrainConfig, config, source="retrain")
    run = RunDir(run_dir)
    own_copy = cfg.genotype is not None and Path(cfg.genotype).resolve() == run.genotype_path.resolve()
    check_output(run.path, kind="run", inputs=[cfg.data_root, None if own_copy and cfg.resume else cfg.genotype])
    set_threads(cfg.threads)
    info, device = dist_utils.setup(resolve_device(cfg.device))
    try:
        if not info.is_main:  # rank 0 owns the run directory
            return _retrain(cfg, run, device, info, kind)
        with run.claim(resume=cfg.resume, overwrite=cfg.overwrite):
            if cfg.resume and run.config_path.exists():
                cfg, _ = resume_config(RetrainConfig, run.read_config(), config, source=f"resume {run.path}",
                                       unset_is_stored=recipes.RECIPE_FIELDS)  # stored resolved, given None
            try:
                return _retrain(cfg, run, device, info, kind)
            except BaseException as exc:
                rec = run.record()
                if rec.get("status") == "running" and rec.get("pid") == os.getpid():  # started by this call
                    run.finish("interrupted" if isinstance(exc, KeyboardInterrupt) else "failed",
                               error=f"{exc.__class__.__name__}: {exc}")
                raise
    finally:
        dist_utils.cleanup()


def _retrain(cfg: RetrainConfig, run: RunDir, device: torch.device, info: dist_utils.DistInfo,
             kind: str | None = None) -> dict:
    from workbench.data.segmentation import build_seg_dataset, holdout_split

    values, recipe_record = recipes.resolve(cfg)
    cfg = dataclasses.replace(cfg, **values)  # every recipe value explicit: config.json shows what ran
    if cfg.batch_size % info.world_size:
        raise ConfigError(f"batch_size: {cfg.batch_size} is not divisible by the {info.world_size} processes")
    train_set = build_seg_dataset(cfg.dataset, cfg.data_root, cfg.train_split, train=True, crop_size=cfg.crop_size,
                                  scale_range=cfg.scale_range, flip=cfg.flip, preload=cfg.preload)
    if cfg.holdout:
        scored = build_seg_dataset(cfg.dataset, cfg.data_root, cfg.train_split, train=False, preload=cfg.preload)
        train_set, val_set = holdout_split(train_set, scored, cfg.holdout)
    else:
        val_set = build_seg_dataset(cfg.dataset, cfg.data_root, cfg.val_split, train=False, preload=cfg.preload)
    spec = model_spec(genotype=cfg.genotype, baseline=cfg.baseline, num_classes=train_set.num_classes,
                      width=cfg.width, depth=cfg.depth)
    torch.manual_seed(cfg.seed)  # same initial weights in every process
    model = build_from_spec(spec)
    check_size(cfg.crop_size, model.size_divisor, "crop_size")
    aux = AuxHeads(model, cfg.aux_strides, spec.num_classes, cfg.crop_size) if cfg.aux_weight > 0 else None
    trainable = TrainingNet(model, aux) if aux is not None else model  # what the optimizer and DDP see
    if cfg.eval_size:
        check_size(cfg.eval_size, model.size_divisor, "eval_size")
    per_process = cfg.batch_size // info.world_size
    steps_per_epoch = (len(train_set) // info.world_size) // per_process
    if steps_per_epoch == 0:
        raise ConfigError(f"batch_size: {cfg.batch_size} is larger than the {len(train_set)} training images "
                          f"of {cfg.data_root} ({cfg.train_split})")
    max_steps = cfg.epochs * steps_per_epoch
    params_m = count_params(model) / 1e6
    teacher_info, teacher = _teacher(cfg, values, info, spec.num_classes, device)
    objective = Objective.from_values(values, train_set.ignore_index, teacher)

    optimizer = build_optimizer(trainable.parameters(), values)
    start_epoch, step = 0, 0
    state = run.load_checkpoint() if cfg.resume else None
    if cfg.init_from and state is None:  # a resumed run has them in its own checkpoint
        from workbench.seg.pretrain import load_pretrained_body

        log.info("stem and body from %s (%d tensors)", cfg.init_from, load_pretrained_body(model, cfg.init_from))
    if state is not None:
        check_fingerprint(state, spec, run.checkpoint_dir / "last.pt")
        model.load_state_dict(state["model"])
        if aux is not None:
            aux.load_state_dict(state["aux_heads"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, step = int(state["epoch"]) + 1, int(state["step"])
        log.info("resuming %s from epoch %d (step %d)", run.path, start_epoch, step)
    trainable.to(device)
    for group in optimizer.state.values():  # optimizer state follows the parameters' device
        for k, v in group.items():
            if torch.is_tensor(v):
                group[k] = v.to(device)
    speed = _throughput_choice(cfg, run, state, trainable, objective, values, per_process, spec.num_classes,
                               device, info)
    throughput.prepare(trainable, speed["memory_format"])
    if teacher is not None:
        throughput.prepare(teacher, speed["memory_format"])
    amp = speed["precision"] == "bf16"

    if info.is_main:
        if state is None:
            truncate_jsonl(run.metrics_path, lambda r: False)
        else:
            truncate_jsonl(run.metrics_path, lambda r: r.get("epoch", -1) < start_epoch)
        config_dict = to_dict(cfg)
        config_dict.update(num_classes=spec.num_classes, recipe_version=recipe_record["version"])
        run.write_config(config_dict)
        fields = {"dataset": cfg.dataset, "seed": cfg.seed, "world_size": info.world_size,
                  "preset": None, "latency_weight": None, "architecture": spec.fingerprint,
                  "recipe": recipe_record, "throughput": speed, "teacher": teacher_info,
                  "aux_heads": aux.describe() if aux is not None else None}
        artifacts = {"checkpoint": "checkpoints/last.pt"}
        if spec.kind == "genotype":
            fields.update(_search_fields(cfg.genotype, spec.genotype), genotype_source=str(cfg.genotype),
                          width_multiplier=spec.genotype.get("width_multiplier") or 1.0,
                          depth_multiplier=spec.genotype.get("depth_multiplier") or 1, init_from=cfg.init_from)
            if Path(cfg.genotype).resolve() != run.genotype_path.resolve():
                atomic_write_json(run.genotype_path, spec.genotype)  # the run is self-contained
            artifacts["genotype"] = "genotype.json"
        else:
            fields.update(baseline=spec.name)
        run.start(kind or ("retrain" if spec.kind == "genotype" else "baseline"), cfg.name, **fields)
        run.update(artifacts=artifacts, metrics={"params_m": params_m},
                   steps_per_epoch=steps_per_epoch, max_steps=max_steps)
    dist_utils.barrier(info)

    net = trainable
    if info.enabled:
        if device.type == "cuda" and cfg.sync_bn:
            trainable = torch.nn.SyncBatchNorm.convert_sync_batchnorm(trainable)
            model = trainable.model if aux is not None else trainable
        unused = dist_utils.unused_parameters(trainable, model.size_divisor, device)
        if unused and info.is_main:
            log.warning("retrain: %d parameters reach no output (%s, ...): DDP looks for unused "
                        "parameters in every step", len(unused), unused[0])
        net = torch.nn.parallel.DistributedDataParallel(
            trainable, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=bool(unused))
    ema = build_ema(model, cfg.ema_decay)  # the run's network when on (weight_ema.py)
    if ema is not None and state is not None:
        load_ema_state(ema, state, str(run.checkpoint_dir / "last.pt"))
    deployed = ema.module if ema is not None else model

    last_val = None
    scored_name = f"held-out {cfg.train_split}" if cfg.holdout else cfg.val_split
    for epoch in range(start_epoch, cfg.epochs):
        # Everything random in this epoch (sampling order, augmentation, dropout) depends only on
        # (seed, epoch, rank): this is what makes resume exact.
        seed_everything(cfg.seed * 1_000_003 + epoch * 1009 + info.rank)
        loader = _loader(train_set, cfg, info, epoch, per_process, device)
        net.train()
        t0, total, count = time.time(), 0.0, 0
        lr = recipes.learning_rate(values, step, max_steps)
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not info.is_main, leave=False)
        for images, labels in bar:
            lr = recipes.learning_rate(values, step, max_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            images = throughput.to_format(images.to(device, non_blocking=True), speed["memory_format"])
            loss = _train_step(net, optimizer, images, labels.to(device, non_blocking=True),
                               train_set.ignore_index, amp=amp,
                               where=f"train loss at epoch {epoch + 1}, step {step + 1}", objective=objective)
            if ema is not None:
                ema.update_parameters(model)
            total, count, step = total + loss, count + 1, step + 1
            bar.set_postfix(loss=f"{loss:.3f}")
        sums = dist_utils.all_reduce_sum(torch.tensor([total, count], dtype=torch.float64), info)
        mean_loss = float(sums[0] / max(sums[1], 1))
        epoch_time = time.time() - t0
        if info.is_main:
            run.log_metrics({"epoch": epoch, "phase": "train", "loss": mean_loss, "lr": lr,
                             "step": step, "epoch_time_s": round(epoch_time, 3)})
            log.info("epoch %d/%d: loss %.4f, lr %.5f, %.1fs", epoch + 1, cfg.epochs, mean_loss, lr, epoch_time)
        dist_utils.sync_buffers(model, info)  # the checkpoint and the evaluation use rank 0's statistics
        if ema is not None:
            dist_utils.sync_buffers(deployed, info)
        if epoch == cfg.epochs - 1 or (cfg.eval_every and (epoch + 1) % cfg.eval_every == 0):
            result = evaluate_model(deployed, val_set, device, model.size_divisor, cfg.eval_size, info,
                                    desc=f"eval {scored_name}")
            last_val = {"epoch": epoch, "phase": "val", "miou": float(result["miou"]),
                        "pixel_acc": float(result["pixel_acc"])}
            if ema is not None:  # the raw weights' score beside the average's
                raw = evaluate_model(model, val_set, device, model.size_divisor, cfg.eval_size, info,
                                     desc=f"eval {scored_name} (raw weights)")
                last_val.update(miou_raw=float(raw["miou"]), pixel_acc_raw=float(raw["pixel_acc"]))
            if info.is_main:
                run.log_metrics(last_val)
                log.info("epoch %d/%d: %s mIoU %.4f%s", epoch + 1, cfg.epochs, scored_name, last_val["miou"],
                         f" (raw weights {last_val['miou_raw']:.4f})" if ema is not None else "")
        if info.is_main:
            run.save_checkpoint({"model": _unwrap(model).state_dict(), "optimizer": optimizer.state_dict(),
                                 "epoch": epoch, "step": step, "fingerprint": spec.fingerprint,
                                 "architecture": {"kind": spec.kind, "name": spec.name},
                                 "num_classes": spec.num_classes, "world_size": info.world_size,
                                 "throughput": {k: speed[k] for k in ("memory_format", "precision")},
                                 **({"aux_heads": aux.state_dict()} if aux is not None else {}),
                                 **(ema_state(ema) if ema is not None else {})})
        dist_utils.barrier(info)

    if last_val is None:  # resumed after the last epoch had finished
        vals = [r for r in run.metrics() if r.get("phase") == "val"]
        if vals:
            last_val = vals[-1]
        else:
            result = evaluate_model(deployed, val_set, device, model.size_divisor, cfg.eval_size, info)
            last_val = {"miou": float(result["miou"]), "pixel_acc": float(result["pixel_acc"])}
    record = {}
    if info.is_main:
        raw = {k: last_val[k] for k in ("miou_raw", "pixel_acc_raw") if k in last_val}
        run.update(metrics={"miou": last_val["miou"], "pixel_acc": last_val["pixel_acc"], **raw,
                            "params_m": params_m}, steps=step, epochs=cfg.epochs)
        record = run.finish()
    dist_utils.barrier(info)
    return record


def _teacher(cfg: RetrainConfig, values: dict, info: dist_utils.DistInfo, num_classes: int,
             device: torch.device) -> tuple[dict | None, torch.nn.Module | None]:
    """(record, network) of the distillation teacher, trained first unless cached; (None, None)
    without distillation."""
    if values["distill_weight"] <= 0:
        return None, None
    from workbench.seg import teacher as teachers

    tcfg = teachers.teacher_config(cfg, values)
    if info.enabled:  # one process cannot train it alone inside a process group
        key, _ = teachers.teacher_key(tcfg)
        if not teachers.is_cached(key):
            raise ConfigError(f"teacher: {values['teacher']} is not cached yet ({teachers.teacher_cache_dir() / key}); "
                              "run the same retrain once in a single process to train it, then use torchrun")
        tinfo = {"key": key, "run_dir": str(teachers.teacher_cache_dir() / key), "cache": "hit",
                 "baseline": tcfg["baseline"], "epochs": tcfg["epochs"]}
    else:
        tinfo = teachers.ensure_teacher(tcfg)
    return tinfo, teachers.load_teacher(tinfo, num_classes, device)


def _throughput_choice(cfg: RetrainConfig, run: RunDir, state: dict | None, model, objective: Objective,
                       values: dict, batch: int, num_classes: int, device: torch.device,
                       info: dist_utils.DistInfo) -> dict:
    """Memory format and precision: a resumed run's recorded choice, else timed (rank 0's)."""
    resumed = throughput.resumed_choice((state or {}).get("throughput"),
                                        run.record().get("throughput") if cfg.resume else None, loaded_allocator())
    if resumed:
        return resumed
    precision = "bf16" if cfg.amp and device.type == "cuda" else values["precision"]
    options = throughput.candidates(values["memory_format"], precision, device)
    choice = {"memory_format": options[0][0], "precision": options[0][1], "measured": False,
              "allocator": loaded_allocator()}  # tcmalloc trains faster, not differently: WORKBENCH_ALLOCATOR
    if info.is_main:  # one option asked for is still checked for wrong convolutions
        gen = torch.Generator().manual_seed(0)
        images = torch.randn(batch, 3, *cfg.crop_size, generator=gen).to(device)
        labels = torch.randint(0, num_classes, (batch, *cfg.crop_size), generator=gen).to(device)
        teachers = {}

        def make_step(twin, fmt: str, prec: str):
            opt = build_optimizer(twin.parameters(), {**values, "lr": 1e-6})
            obj = objective
            if objective.teacher is not None:
                if fmt not in teachers:
                    teachers[fmt] = throughput.prepare(copy.deepcopy(objective.teacher), fmt)
                obj = dataclasses.replace(objective, teacher=teachers[fmt])
            x = throughput.to_format(images, fmt)
            return lambda: _train_step(twin, opt, x, labels, objective.ignore_index, amp=prec == "bf16",
                                       where="throughput probe", objective=obj)

        choice = {**throughput.choose(model, make_step, options, device, images), "allocator": choice["allocator"]}
    if info.enabled:
        choice = dist_utils.broadcast_object(choice, info)
    return choice


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return getattr(model, "module", model)


def _loader(dataset, cfg: RetrainConfig, info, epoch: int, per_process: int, device) -> DataLoader:
    generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
    if info.enabled:
        sampler = torch.utils.data.DistributedSampler(dataset, num_replicas=info.world_size, rank=info.rank,
                                                      shuffle=True, seed=cfg.seed, drop_last=True)
        sampler.set_epoch(epoch)
        return DataLoader(dataset, batch_size=per_process, sampler=sampler, drop_last=True,
                          num_workers=cfg.num_workers, generator=generator, pin_memory=device.type == "cuda")
    return DataLoader(dataset, batch_size=per_process, shuffle=True, drop_last=True, num_workers=cfg.num_workers,
                      generator=generator, pin_memory=device.type == "cuda")
