"""The data of a search: the training split halved into weight and architecture data, the held-out
images scored each epoch, and random scenes for smoke tests."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from workbench.errors import ConfigError
from workbench.nas.presets import SearchConfig

NUM_CLASSES = {"cityscapes": 19, "camvid": 11, "random": 19}


class RandomSegDataset(Dataset):
    """Deterministic random scenes (blocky label maps, label-coloured noisy images): smoke runs only."""

    def __init__(self, count: int, size: tuple[int, int], num_classes: int = 19, seed: int = 0):
        self.count, self.size, self.num_classes, self.seed = count, tuple(size), num_classes, seed
        self.ignore_index = 255

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(self.seed * 100003 + i)
        h, w = self.size
        coarse = torch.randint(0, self.num_classes, (1, 1, max(h // 16, 1), max(w // 16, 1)), generator=g)
        label = F.interpolate(coarse.float(), size=(h, w), mode="nearest")[0, 0].long()
        palette = torch.randn(self.num_classes, 3, generator=torch.Generator().manual_seed(self.seed))
        image = palette[label].permute(2, 0, 1) + 0.5 * torch.randn(3, h, w, generator=g)
        return image.float(), label


def build_datasets(cfg: SearchConfig) -> tuple[Dataset, Dataset | None, int]:
    if cfg.dataset == "random":
        val = RandomSegDataset(cfg.max_val_images, cfg.crop_size, seed=cfg.seed + 1) if cfg.max_val_images else None
        return RandomSegDataset(max(4 * cfg.batch_size, 8), cfg.crop_size, seed=cfg.seed), val, NUM_CLASSES["random"]
    from workbench.data.segmentation import build_seg_dataset

    root = cfg.data_root or f"datasets/synth-{cfg.dataset}"
    train = build_seg_dataset(cfg.dataset, root, cfg.train_split, train=True, crop_size=cfg.crop_size)
    val = None
    if cfg.max_val_images:
        full = build_seg_dataset(cfg.dataset, root, cfg.val_split, train=False)
        val = Subset(full, range(min(cfg.max_val_images, len(full))))
    return train, val, int(train.num_classes)


def split_halves(dataset: Dataset, seed: int) -> tuple[Subset, Subset]:
    """Fixed random halves of the training split: weights learn on one, alphas on the other."""
    n = len(dataset)
    if n < 2:
        raise ConfigError(f"train_split: needs at least 2 images to halve, found {n}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return Subset(dataset, perm[: n // 2]), Subset(dataset, perm[n // 2:])


def shuffle_seed(seed: int, epoch: int, salt: int) -> int:
    """The shuffling seed of one pass. Salts 0-30 keep the linear form every stored run used
    (seed * 7919 + epoch * 31 + salt); from salt 31 on (the 30th extra architecture pass of an epoch,
    `arch_batches` > 1) that form would repeat the next epoch's passes, so those are mixed by
    numpy's SeedSequence instead."""
    if salt < 31:
        return seed * 7919 + epoch * 31 + salt
    import numpy as np

    return int(np.random.SeedSequence([seed, epoch, salt]).generate_state(1)[0])


def loader(dataset: Dataset, cfg: SearchConfig, epoch: int, salt: int, rank: int = 0, world_size: int = 1
           ) -> DataLoader:
    """Batches of one epoch, shuffled by (seed, epoch, salt). Under torchrun each process takes its
    shard of every global batch of `batch_size` (a DistributedSampler with the same seed)."""
    seed = shuffle_seed(cfg.seed, epoch, salt)
    pin = cfg.device != "cpu" and torch.cuda.is_available()
    if world_size > 1:
        from torch.utils.data.distributed import DistributedSampler

        sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed,
                                     drop_last=True)
        return DataLoader(dataset, batch_size=max(min(cfg.batch_size, len(dataset)) // world_size, 1),
                          sampler=sampler, drop_last=True, num_workers=cfg.num_workers, pin_memory=pin)
    g = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=min(cfg.batch_size, len(dataset)), shuffle=True, drop_last=True,
                      generator=g, num_workers=cfg.num_workers, pin_memory=pin)


def extra_arch_batches(dataset: Dataset, cfg: SearchConfig, epoch: int, rank: int = 0, world_size: int = 1
                       ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The architecture batches beyond each step's first (`arch_batches` > 1): endless further passes
    over the architecture half, each shuffled by its own salt (2, 3, ...; the first pass is salt 1),
    so a resumed epoch draws the same ones. Nothing is loaded until the first is asked for."""
    for salt in itertools.count(2):
        yield from loader(dataset, cfg, epoch, salt, rank, world_size)


@torch.no_grad()
def evaluate_miou(model: nn.Module, dataset: Dataset | None, num_classes: int, device: torch.device) -> float | None:
    from workbench.metrics.segmentation import ConfusionMatrix

    if dataset is None or len(dataset) == 0:
        return None
    model.eval()
    cm = ConfusionMatrix(num_classes)
    for image, label in DataLoader(dataset, batch_size=1):
        cm.update(model(image.to(device)).argmax(1).cpu(), label)
    model.train()
    miou = cm.compute()["miou"]
    return None if miou is None or miou != miou else float(miou)
