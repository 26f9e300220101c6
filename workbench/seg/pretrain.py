"""ImageNet-style pretraining of a derived network's body, before retraining it for segmentation.

GAS and AutoRTNet retrain ImageNet-pretrained networks; a searched network has no published
weights, so `workbench pretrain` trains its stem and body as a classifier (global average pool +
linear layer on the body's deepest features) on an ImageNet-layout folder: `train/` and `val/`,
one sub-folder of images per class (torchvision's `ImageFolder`). It reports top-1/top-5 on
`val/` every epoch, checkpoints every epoch and resumes after a kill with the weights of an
uninterrupted run. `workbench retrain --init-from RUN` starts from its stem and body.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from workbench.config import field, from_dict, resume_config, to_dict
from workbench.device import resolve_device, seed_everything, set_threads
from workbench.errors import CheckpointError, ConfigError, DataError, check_finite
from workbench.jsonio import atomic_write_json, truncate_jsonl
from workbench.outputs import check_output
from workbench.runs import RunDir

log = logging.getLogger(__name__)

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclasses.dataclass
class PretrainConfig:
    genotype: str = field("runs/search/genotype.json", help="genotype.json of a search run")
    width: float = field(1.0, min=0.0, help="width multiplier of the genotype (as `workbench scale`)")
    depth: int = field(1, min=1, max=16, help="each layer of the genotype repeated (as `workbench scale --depth`)")
    data_root: str = field("datasets/imagenet", help="ImageNet-layout folder: train/<class>/*.JPEG, val/<class>/*")
    image_size: int = field(224, min=8, help="training crop and validation size (pixels, square)")
    epochs: int = field(90, min=1, help="training epochs")
    batch_size: int = field(256, min=1)
    lr: float = field(0.1, min=0.0, help="SGD peak learning rate (cosine decay to 0 after the warm-up)")
    warmup_epochs: float = field(0.0, min=0.0, help="linear warm-up, in epochs")
    momentum: float = field(0.9, min=0.0, max=1.0)
    weight_decay: float = field(5e-5, min=0.0, help="4e-5 to 1e-4 is usual for small networks")
    label_smoothing: float = field(0.1, min=0.0, max=1.0)
    dropout: float = field(0.2, min=0.0, max=1.0, help="before the linear classifier")
    num_workers: int = field(0, min=0, help="data-loader worker processes")
    seed: int = field(0, min=0)
    device: str = field("auto", help="cpu, cuda, cuda:N or auto")
    threads: int = field(0, min=0, help="torch CPU threads (0: leave as is)")
    resume: bool = field(False, help="continue from RUN_DIR/checkpoints/last.pt")
    overwrite: bool = field(False, help="replace an earlier run in the run directory")

    def validate(self) -> None:
        if not (0 < self.width < math.inf):
            raise ConfigError(f"width: must be a positive finite number, got {self.width!r}")
        for split in ("train", "val"):
            if not (Path(self.data_root) / split).is_dir():
                raise ConfigError(f"data_root: {self.data_root} has no {split}/ folder (ImageNet layout: "
                                  f"{split}/<class>/<image>)")


class BodyClassifier(nn.Module):
    """A derived network's stem and body with a classification head. Its `net` keeps the segmentation
    network's own parameter names, so retrain loads `net.stem.*` and `net.body.*` as they are."""

    def __init__(self, genotype: dict, num_classes: int, dropout: float = 0.2):
        super().__init__()
        from workbench.nas.network import build_network

        self.net = build_network(genotype, num_classes=2)  # its segmentation head is not used
        self.net.head = nn.Identity()
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.net.num_features, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.net.forward_features(x).mean(dim=(2, 3)))


def _loader_of(root: Path, size: int, train: bool, cfg: PretrainConfig, epoch: int):
    from torchvision import datasets, transforms

    tf = (transforms.Compose([transforms.RandomResizedCrop(size), transforms.RandomHorizontalFlip()])
          if train else transforms.Compose([transforms.Resize(int(round(size / 0.875))), transforms.CenterCrop(size)]))
    tf = transforms.Compose([tf, transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
    try:
        data = datasets.ImageFolder(str(root), transform=tf, loader=_read_image)
    except (FileNotFoundError, RuntimeError) as exc:  # no class folders / no images in them
        raise DataError(root, f"not an ImageFolder ({str(exc).splitlines()[0]})") from None
    g = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
    return data, torch.utils.data.DataLoader(data, batch_size=cfg.batch_size, shuffle=train, generator=g,
                                             drop_last=train and len(data) > cfg.batch_size,
                                             num_workers=cfg.num_workers, pin_memory=torch.cuda.is_available())


def _read_image(path: str):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (OSError, UnidentifiedImageError) as exc:
        raise DataError(path, f"unreadable image ({exc.__class__.__name__})") from None


def accuracy(logits: torch.Tensor, labels: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> dict[int, int]:
    """Number of samples whose label is among the top-k logits, for each k (k capped at the classes)."""
    top = logits.topk(min(max(ks), logits.shape[1]), dim=1).indices
    hit = top == labels[:, None]
    return {k: int(hit[:, :k].any(dim=1).sum()) for k in ks}


def learning_rate(cfg: PretrainConfig, step: int, total: int, per_epoch: int) -> float:
    warm = int(cfg.warmup_epochs * per_epoch)
    if step < warm:
        return cfg.lr * (step + 1) / warm
    return 0.5 * cfg.lr * (1 + math.cos(math.pi * (step - warm) / max(total - warm, 1)))


def run_pretrain(config: PretrainConfig | dict, run_dir: str | Path) -> dict:
    """Pretrain (or resume); returns the run record with top-1/top-5 of the last epoch."""
    cfg = from_dict(PretrainConfig, config, source="pretrain")
    run = RunDir(run_dir)
    check_output(run.path, kind="run", inputs=[cfg.data_root, cfg.genotype])
    with run.claim(resume=cfg.resume, overwrite=cfg.overwrite):
        if cfg.resume and run.config_path.exists():
            cfg, _ = resume_config(PretrainConfig, run.read_config(), config, source=f"resume {run.path}")
        return _pretrain(cfg, run)


def _pretrain(cfg: PretrainConfig, run: RunDir) -> dict:
    from workbench.seg.model import model_spec

    device = resolve_device(cfg.device)
    set_threads(cfg.threads or None)
    root = Path(cfg.data_root)
    train_set, _ = _loader_of(root / "train", cfg.image_size, True, cfg, 0)
    val_set, val_loader = _loader_of(root / "val", cfg.image_size, False, cfg, 0)
    if train_set.classes != val_set.classes:
        raise DataError(root / "val", f"classes differ from train/ ({len(val_set.classes)} vs {len(train_set.classes)})")
    spec = model_spec(genotype=cfg.genotype, baseline=None, num_classes=len(train_set.classes), width=cfg.width,
                      depth=cfg.depth)
    seed_everything(cfg.seed)
    model = BodyClassifier(spec.genotype, len(train_set.classes), cfg.dropout)
    per_epoch = max(len(train_set) // cfg.batch_size, 1)
    total = cfg.epochs * per_epoch
    decay, no_decay = [], []
    for p in model.parameters():  # no weight decay on norms and biases (timm's default)
        (no_decay if p.ndim <= 1 else decay).append(p)
    opt = torch.optim.SGD([{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0}],
                          lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0)
    start, step = 0, 0
    state = run.load_checkpoint() if cfg.resume else None
    if state is not None:
        try:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f"{run.checkpoint_dir / 'last.pt'}: does not match this configuration "
                                  f"({str(exc).splitlines()[0][:120]})") from None
        start, step = int(state["epoch"]) + 1, int(state["step"])
        truncate_jsonl(run.metrics_path, lambda r: r.get("epoch", -1) < start)
    elif run.metrics_path.exists():
        run.metrics_path.unlink()
    model.to(device)
    run.write_config(to_dict(cfg))
    atomic_write_json(run.genotype_path, spec.genotype)
    run.start("pretrain", seed=cfg.seed, dataset=str(root), classes=len(train_set.classes),
              architecture=spec.fingerprint, width_multiplier=spec.genotype.get("width_multiplier") or 1.0,
              depth_multiplier=spec.genotype.get("depth_multiplier") or 1,
              genotype_source=str(cfg.genotype), preset=spec.genotype.get("preset"))
    try:
        for epoch in range(start, cfg.epochs):
            seed_everything(cfg.seed * 1000 + epoch)
            _, loader = _loader_of(root / "train", cfg.image_size, True, cfg, epoch)
            model.train()
            t0, losses = time.time(), []
            for images, labels in tqdm(loader, desc=f"pretrain epoch {epoch}", leave=False, disable=None):
                for group in opt.param_groups:
                    group["lr"] = learning_rate(cfg, step, total, per_epoch)
                loss = F.cross_entropy(model(images.to(device)), labels.to(device), label_smoothing=cfg.label_smoothing)
                losses.append(check_finite(float(loss.detach()), f"pretrain loss at epoch {epoch}"))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
            top = evaluate_topk(model, val_loader, device)
            rec = {"epoch": epoch, "phase": "pretrain", "train_loss": sum(losses) / max(len(losses), 1),
                   "top1": top[1], "top5": top[5], "lr": learning_rate(cfg, step - 1, total, per_epoch),
                   "epoch_time_s": round(time.time() - t0, 2)}
            log.info("pretrain epoch %d: loss %.4f, val top-1 %.4f, top-5 %.4f", epoch, rec["train_loss"],
                     top[1], top[5])
            ckpt = run.save_checkpoint({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch,
                                        "step": step, "architecture": spec.fingerprint})
            run.log_metrics(rec)
            run.update(metrics={"top1": top[1], "top5": top[5], "train_loss": rec["train_loss"]},
                       artifacts={"checkpoint": str(ckpt.relative_to(run.path)), "genotype": "genotype.json"},
                       epoch=epoch)
    except BaseException as exc:
        run.finish("interrupted" if isinstance(exc, KeyboardInterrupt) else "failed",
                   error=str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__)
        raise
    return run.finish()


@torch.no_grad()
def evaluate_topk(model: nn.Module, loader, device: torch.device) -> dict[int, float]:
    model.eval()
    hits, n = {1: 0, 5: 0}, 0
    for images, labels in loader:
        for k, v in accuracy(model(images.to(device)), labels.to(device)).items():
            hits[k] += v
        n += len(labels)
    return {k: v / max(n, 1) for k, v in hits.items()}


def load_pretrained_body(model: nn.Module, source: str | Path) -> int:
    """Copy a pretrain run's stem and body weights into a segmentation network built from the same
    genotype (and width); returns how many tensors were loaded. Refuses another architecture."""
    source = Path(source)
    path = source / "checkpoints" / "last.pt" if source.is_dir() else source
    if not path.is_file():
        raise ConfigError(f"init_from: {source} has no pretrain checkpoint (checkpoints/last.pt)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)["model"]
    except Exception as exc:  # pickle, zip and key errors come in many classes
        raise CheckpointError(f"{path}: not a pretrain checkpoint ({exc.__class__.__name__})") from None
    own = {k: v for k, v in model.state_dict().items() if k.startswith(("stem.", "body."))}
    given = {k[len("net."):]: v for k, v in state.items() if k.startswith(("net.stem.", "net.body."))}
    if set(own) != set(given) or any(tuple(own[k].shape) != tuple(given[k].shape) for k in own):
        raise CheckpointError(f"{path}: pretrained on another architecture (its stem/body weights do not fit "
                              f"this network; pretrain the same genotype at the same width)")
    model.load_state_dict(given, strict=False)
    return len(given)
