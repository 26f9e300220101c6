"""Training OVS-Net on a DAVIS-format split: detection, mask and re-ID losses together.

Each iteration samples clips of two annotated frames of one video (random gap, both time
directions, same crop and flip). Both frames are detection examples; each object is segmented in
one frame guided by its mask in the other (the mask prior, randomly perturbed or dropped); the
objects' embeddings (pooled inside their masks) are contrasted by identity across the frames.
Checkpoints every epoch; `resume` continues after a kill and ends with the same weights.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from workbench.config import field, from_dict, resume_config, to_dict
from workbench.device import resolve_device, seed_everything, set_threads
from workbench.errors import ConfigError, check_finite
from workbench.jsonio import truncate_jsonl
from workbench.outputs import check_output
from workbench.runs import RunDir
from workbench.vos.data import jitter, load_split, objects_of, perturb_prior, roi_mask, sample_clip
from workbench.vos.losses import (
    boundary_loss,
    box_loss,
    centre_targets,
    focal_heatmap_loss,
    mask_loss,
    reid_loss,
)
from workbench.vos.model import ModelSpec, OVSNet
from workbench.vos.online import expand

log = logging.getLogger("workbench.vos.train")


@dataclasses.dataclass
class VosTrainConfig:
    ALIASES: ClassVar[dict[str, str]] = {"iters_per_epoch": "steps_per_epoch", "crop": "crop_size"}  # 0.1 names

    data_root: str = field("datasets/synth-davis", help="dataset root (DAVIS or YouTube-VOS layout)")
    dataset: Literal["davis", "youtube-vos", "static"] = field(
        "davis", help="layout of data_root; static = still images with instance masks (COCO JSON or "
                      "images/ + masks/) warped into clips")
    init_from: str | None = field(None, help="a `vos train` run to start from (e.g. the static-image stage)")
    split: str = field("train", help="DAVIS: ImageSets/2017/<split>.txt; YouTube-VOS: the <split>/ folder")
    mix: list[dict] = field(default_factory=list, help="more sources, each {dataset, data_root, split, weight}; "
                                                       "data_root itself has weight 1")
    resolution: str = field("480p", help="JPEGImages/<resolution>")
    epochs: int = field(8, help="training epochs", min=1)
    steps_per_epoch: int = field(40, help="optimizer steps per epoch", min=1)
    batch_size: int = field(4, help="clips (two frames each) per step", min=1)
    crop_size: tuple[int, int] = field((192, 320), help="training crop HxW (network pixels)")
    max_gap: int = field(4, help="largest frame gap inside a clip", min=1)
    lr: float = field(3e-3, help="AdamW learning rate (cosine decay)", min=0)
    weight_decay: float = field(1e-4, help="AdamW weight decay", min=0)
    det_weight: float = field(1.0, help="weight of the detection loss", min=0)
    reid_weight: float = field(0.5, help="weight of the re-ID loss", min=0)
    prior_dropout: float = field(0.25, help="probability of training a mask without prior",
                                 min=0, max=1)
    attention: bool = field(True, help="mask-guided attention in the mask head (ablation: off)")
    boundary: bool = field(False, help="boundary-aware attention + boundary branch and loss in the mask head")
    boundary_weight: float = field(1.0, help="weight of the boundary loss (with boundary on)", min=0)
    backbone: str = field("tiny", help="tiny (from scratch, CPU speed), resnet18, resnet50 or mobilenet_v3_large")
    backbone_weights: str | None = field(None, help="a torchvision ImageNet state dict on disk for the backbone")
    emb_dim: int = field(64, help="re-ID embedding size", min=8)
    input_scale: float = field(0.5, help="frames resized by this before the network",
                               min=0.1, max=1.0)
    seed: int = field(0, help="seed of weights and sampling")
    device: str = field("auto", help="cpu, cuda or auto")
    threads: int = field(0, help="torch CPU threads (0: leave as is)", min=0)
    resume: bool = field(False, help="continue from the run's last checkpoint")
    overwrite: bool = field(False, help="replace an earlier run in the run directory")

    def validate(self) -> None:
        from workbench.vos.backbone import BACKBONES

        if not Path(self.data_root).exists():
            raise ConfigError(f"data_root: {self.data_root} does not exist")
        for i, src in enumerate(self.mix):
            unknown = set(src) - {"dataset", "data_root", "split", "weight"} if isinstance(src, dict) else {"?"}
            if unknown or "data_root" not in src:
                raise ConfigError(f"mix[{i}]: expected {{dataset, data_root, split, weight}}, got {src!r}")
            if src.get("dataset", "davis") not in ("davis", "youtube-vos", "static"):
                raise ConfigError(f"mix[{i}].dataset: davis, youtube-vos or static, got {src.get('dataset')!r}")
            weight = src.get("weight", 1.0)
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 < weight < math.inf:
                raise ConfigError(f"mix[{i}].weight: a positive number, got {weight!r}")
            if not Path(src["data_root"]).exists():
                raise ConfigError(f"mix[{i}].data_root: {src['data_root']} does not exist")
        if self.backbone not in BACKBONES:
            raise ConfigError(f"backbone: unknown backbone {self.backbone!r} (known: {', '.join(BACKBONES)})")
        if self.backbone_weights and self.backbone == "tiny":
            raise ConfigError("backbone_weights: the tiny backbone trains from scratch; pick a torchvision backbone")
        if self.backbone_weights and not Path(self.backbone_weights).is_file():
            raise ConfigError(f"backbone_weights: {self.backbone_weights} not found")


def pick_sequences(offsets: np.ndarray, weights: list[float], n: int, g: torch.Generator) -> list[int]:
    """n sequence indices: a source by its weight, then a sequence of it uniformly. One source
    draws exactly as before mixing existed (runs resume and reproduce unchanged)."""
    if len(weights) == 1:
        return torch.randint(int(offsets[1]), (n,), generator=g).tolist()
    source = torch.multinomial(torch.tensor(weights), n, replacement=True, generator=g).tolist()
    return [int(offsets[k]) + int(torch.randint(int(offsets[k + 1] - offsets[k]), (1,), generator=g)) for k in source]


def lr_at(cfg: VosTrainConfig, step: int) -> float:
    total = cfg.epochs * cfg.steps_per_epoch
    warm = min(20, total // 10 + 1)
    if step < warm:
        return cfg.lr * (step + 1) / warm
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(total - warm, 1)))


def train_step(model: OVSNet, clips: list[dict], cfg: VosTrainConfig, g: torch.Generator,
               device: torch.device) -> dict[str, torch.Tensor]:
    """Losses of one batch of clips."""
    frames = torch.cat([torch.from_numpy(c["frames"]) for c in clips])      # [2B, h, w, 3]
    masks = torch.cat([torch.from_numpy(c["masks"]) for c in clips])        # [2B, h, w]
    out = model(model.prepare(frames.numpy(), device))
    objs = [objects_of(m) for m in masks]
    heat_t, positives = centre_targets(model.det, [o[2] for o in objs], out["heat"].shape[-2:])
    det = focal_heatmap_loss(out["heat"], heat_t.to(device)) + box_loss(
        model.det, out["reg"], [(c.to(device), b.to(device)) for c, b in positives])

    size = model.spec.mask_size
    rois, priors, targets, has_prior = [], [], [], []
    emb_rois, emb_masks, emb_labels = [], [], []
    for i, (ids, full, boxes) in enumerate(objs):
        other = i + 1 if i % 2 == 0 else i - 1
        o_ids, o_full, o_boxes = objs[other]
        clip = clips[i // 2].get("seq", i // 2)
        for j, oid in enumerate(ids):
            img = torch.tensor([float(i)])
            roi = torch.cat([img, expand(jitter(boxes[j:j + 1], 0.1, g))[0]])
            target = roi_mask(full[j], roi[1:], size)
            prior = torch.full((1, size, size), 0.5)
            use = oid in o_ids and float(torch.rand(1, generator=g)) >= cfg.prior_dropout
            if use:
                k = o_ids.index(oid)
                prior = roi_mask(o_full[k], expand(o_boxes[k:k + 1])[0], size)
                prior = perturb_prior(prior[None], g)[0]
            rois.append(roi)
            priors.append(prior)
            targets.append((target > 0.5).float())
            has_prior.append(use)
            emb_rois.append(torch.cat([img, expand(boxes[j:j + 1])[0]]))
            emb_masks.append(roi_mask(full[j], expand(boxes[j:j + 1])[0], size))
            emb_labels.append(clip * 256 + oid)
        # background negatives for re-ID: two random boxes per image
        h, w = full.shape[-2:] if len(full) else masks.shape[-2:]
        for _ in range(2):
            xy = torch.rand(2, generator=g) * torch.tensor([w * 0.7, h * 0.7])
            wh = (0.15 + 0.3 * torch.rand(2, generator=g)) * torch.tensor([w, h])
            emb_rois.append(torch.cat([torch.tensor([float(i)]), xy, xy + wh]))
            emb_masks.append(torch.ones(1, size, size))
            emb_labels.append(-1)
    if rois:
        rois_t = torch.stack(rois).to(device)
        logits = model.mask(out["feats"], rois_t, torch.stack(priors).to(device))
        target_t = torch.stack(targets).to(device)
        msk = mask_loss(logits, target_t)
        edge = boundary_loss(model.mask.last_edge, target_t) if model.spec.boundary else msk * 0
    else:
        msk = edge = out["heat"].sum() * 0
    emb = model.reid.pool(out["emb"], torch.stack(emb_rois).to(device), torch.stack(emb_masks).to(
        device))
    reid = reid_loss(emb, torch.tensor(emb_labels).to(device))
    loss = cfg.det_weight * det + msk + cfg.reid_weight * reid + cfg.boundary_weight * edge
    return {"loss": loss, "det_loss": det, "mask_loss": msk, "reid_loss": reid, "boundary_loss": edge}


def run_train(config: VosTrainConfig | dict, run_dir: str | Path, resume: bool | None = None
              ) -> dict:
    """Train; returns the run record. `resume` (or config.resume) continues from
    checkpoints/last.pt and ends with the weights of an uninterrupted run."""
    cfg = from_dict(VosTrainConfig, config)
    resume = cfg.resume if resume is None else resume
    rd = RunDir(run_dir)
    check_output(rd.path, kind="run", inputs=[cfg.data_root])
    with rd.claim(resume=resume, overwrite=cfg.overwrite):
        if resume and rd.config_path.exists():
            cfg, _ = resume_config(VosTrainConfig, rd.read_config(), config, source=f"resume {rd.path}")
        return _train(cfg, rd, resume)


def _train(cfg: VosTrainConfig, rd: RunDir, resume: bool) -> dict:
    device = resolve_device(cfg.device)
    set_threads(cfg.threads or None)
    sources = [load_split(cfg.data_root, cfg.split, cfg.resolution, cfg.input_scale, cfg.dataset)]
    weights = [1.0]
    for src in cfg.mix:
        sources.append(load_split(src["data_root"], src.get("split", "train"), cfg.resolution, cfg.input_scale,
                                  src.get("dataset", "davis")))
        weights.append(float(src.get("weight", 1.0)))
    seqs = [s for source in sources for s in source]
    offsets = np.cumsum([0] + [len(source) for source in sources])
    seed_everything(cfg.seed)
    spec = ModelSpec(attention=cfg.attention, boundary=cfg.boundary, backbone=cfg.backbone, emb_dim=cfg.emb_dim,
                     input_scale=cfg.input_scale)
    model = OVSNet(spec)
    state = rd.load_checkpoint() if resume else None
    if cfg.backbone_weights and state is None:  # a resumed run has them in its checkpoint
        n = model.backbone.load_pretrained(cfg.backbone_weights)
        log.info("backbone %s: %d tensors from %s", cfg.backbone, n, cfg.backbone_weights)
    if cfg.init_from and state is None:  # the next stage starts from the previous stage's weights
        previous = load_model(cfg.init_from)
        if dataclasses.asdict(previous.spec) != dataclasses.asdict(spec):
            raise ConfigError(f"init_from: {cfg.init_from} has another network ({dataclasses.asdict(previous.spec)}); "
                              "train the stages with the same backbone, attention and sizes")
        model.load_state_dict(previous.state_dict())
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    start = 0
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start = int(state["epoch"]) + 1
        truncate_jsonl(rd.metrics_path, lambda r: r.get("epoch", -1) < start)
        log.info("resuming after epoch %d", start - 1)
    else:
        if rd.metrics_path.exists():
            rd.metrics_path.unlink()
    rd.write_config(to_dict(cfg))
    rd.start("vos_train", dataset=str(cfg.data_root), seed=cfg.seed, preset="ovsnet",
             attention=cfg.attention, boundary=cfg.boundary, backbone=cfg.backbone,
             backbone_weights=cfg.backbone_weights,
             init_from=cfg.init_from,
             device=str(device))
    try:
        for epoch in range(start, cfg.epochs):
            model.train()
            g = torch.Generator().manual_seed(cfg.seed * 100003 + epoch)
            sums: dict[str, float] = {}
            t0 = time.time()
            for it in tqdm(range(cfg.steps_per_epoch), desc=f"vos epoch {epoch}", leave=False,
                           disable=None):
                for group in opt.param_groups:
                    group["lr"] = lr_at(cfg, epoch * cfg.steps_per_epoch + it)
                picks = pick_sequences(offsets, weights, cfg.batch_size, g)
                clips = [dict(sample_clip(seqs[s], cfg.crop_size, cfg.max_gap, g), seq=s) for s in picks]
                losses = train_step(model, clips, cfg, g, device)
                check_finite(float(losses["loss"].detach()), f"loss at epoch {epoch}, step {it}")
                opt.zero_grad(set_to_none=True)
                losses["loss"].backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                opt.step()
                for k, v in losses.items():
                    sums[k] = sums.get(k, 0.0) + float(v.detach())
            rec = {"epoch": epoch, "phase": "train",
                   **{k: v / cfg.steps_per_epoch for k, v in sums.items()},
                   "lr": lr_at(cfg, (epoch + 1) * cfg.steps_per_epoch - 1),
                   "epoch_time_s": round(time.time() - t0, 2)}
            log.info("epoch %d loss %.4f (det %.4f mask %.4f reid %.4f) %.1fs", epoch, rec["loss"],
                     rec["det_loss"], rec["mask_loss"], rec["reid_loss"], rec["epoch_time_s"])
            ckpt = rd.save_checkpoint({"model": model.state_dict(), "optimizer": opt.state_dict(),
                                       "epoch": epoch, "spec": dataclasses.asdict(spec)})
            rd.log_metrics(rec)
            rd.update(metrics={"loss": rec["loss"]},
                      artifacts={"checkpoint": ckpt.relative_to(rd.path)}, epoch=epoch)
    except BaseException as exc:
        rd.finish("interrupted" if isinstance(exc, KeyboardInterrupt) else "failed",
                  error=str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__)
        raise
    return rd.finish()


def load_model(run_dir: str | Path, device: torch.device | str = "cpu") -> OVSNet:
    """The trained OVS-Net of a `vos train` run directory."""
    from workbench.errors import CheckpointError

    rd = RunDir(run_dir)
    state = rd.load_checkpoint(map_location=str(device))
    if state is None or "model" not in state or "spec" not in state:
        raise CheckpointError(f"{rd.checkpoint_dir / 'last.pt'}: no OVS-Net checkpoint "
                              "(train one with `workbench vos train`)")
    model = OVSNet(ModelSpec(**state["spec"])).to(device)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"{rd.checkpoint_dir / 'last.pt'}: weights do not fit OVS-Net "
                              f"({str(exc).splitlines()[0]})") from None
    return model.eval()
