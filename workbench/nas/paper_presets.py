"""Paper-scale search presets: `gas-paper`, `lgcnet-paper`, `autortnet-paper` (data only).

Every value names its source. The papers' implementation-details sections (GAS arXiv 1909.06793,
LGCNet 2302.08481, AutoRTNet 2003.14226) were not reachable when these were written (only their
abstracts were), and none of the three has public code; so the schedule comes from the open code
of the closest published method, FasterSeg (github.com/VITA-Group/FasterSeg, commit 478b026,
`search/config_search.py`, `search/architect.py`), and the rest is marked "our choice". When the
papers' own values are checked, a changed value is a new preset name (`gas-paper-v2`), as recipes
are versioned. Sources in detail: docs/search.md "Paper-scale presets".

Shared by the three (values from FasterSeg's search unless said):
- Cityscapes train split halved into weight/architecture data (FasterSeg `train_portion = 0.5`;
  workbench always halves).
- 20 weights-only warm-up epochs, then 30 search epochs (FasterSeg: 20 pretrain + 30 search).
- Crop 224x448 at batch 2 during the search (FasterSeg `image_height/width` 224x448 after 2x
  downsampling, `batch_size = 2`); every step of the half split (`steps_per_epoch = 0`).
- Weight SGD lr 0.01, momentum 0.9, weight decay 5e-4 (FasterSeg `lr`, `momentum`,
  `weight_decay`; its lr decays x0.978 per epoch, workbench's cosine to lr_min is our choice).
- Architecture Adam lr 3e-4, betas (0.5, 0.999), no weight decay (FasterSeg `architect.py`; it
  is also DARTS's rate).
- Latency table at the papers' test resolution (1024x2048 for GAS and LGCNet: Cityscapes full
  frames, our reading of "real-time on Cityscapes"; 768x1536 for AutoRTNet: its abstract's input).
  FasterSeg times its table with TensorRT; workbench times eager PyTorch (see the GPU notes).
"""

from __future__ import annotations

_SCHEDULE = {
    "epochs": 50,  # FasterSeg: 20 pretrain + 30 search epochs
    "warmup_epochs": 20,  # FasterSeg: "pretrain the supernet without updating the architecture for 20 epochs"
    "steps_per_epoch": 0,  # every pair of the halved train split (FasterSeg: ~743 iterations at batch 2)
    "batch_size": 2,  # FasterSeg search batch_size
    "crop_size": (224, 448),  # FasterSeg search crop (after 2x downsampling of 1024x2048)
    "lr": 0.01,  # FasterSeg search lr
    "lr_min": 0.001,  # our choice (FasterSeg: x0.978 per epoch, ending near 0.0033 after 50 epochs)
    "momentum": 0.9,  # FasterSeg
    "weight_decay": 5e-4,  # FasterSeg
    "arch_lr": 3e-4,  # FasterSeg architect.py (Adam, betas 0.5/0.999)
    "arch_weight_decay": 0.0,  # FasterSeg: arch weight decay commented out
    "max_val_images": 100,  # our choice: a per-epoch mIoU on 100 of the 500 val images
    "lut_rounds": 5,  # our choice: more timing rounds on a shared GPU node
}

PAPER_PRESETS: dict[str, dict] = {
    # GAS: cell-independent cells + GCN-guided module + latency constraint (abstract). Cell count,
    # channels, nodes, ops, gamma and lambda are not in the reachable text: our choice, sized like
    # a real-time DARTS network (12 cells, reductions at 1/8, 1/16, 1/32, 32 channels at 1/4).
    "gas-paper": {
        **_SCHEDULE,
        "input_size": (1024, 2048),  # our choice: Cityscapes full frames
        "stem_channels": 32,  # our choice
        "head_channels": 64,  # our choice
        "space": {"name": "cells", "cell_sharing": False, "gcn": True,  # GAS abstract
                  "fusion": False,  # GAS's abstract names no fusion cell (LGCNet adds it): our reading
                  "num_cells": 12, "reductions": [0, 4, 8],  # our choice
                  "channels": 32, "nodes": 3, "gamma": 0.5, "gcn_hidden": 32},  # our choice
        "relaxation": "gumbel",  # issue 13 reads GAS as annealing a Gumbel-softmax; not verified here
        "tau_start": 1.0,  # our choice
        "tau_end": 0.05,  # our choice ("a low end value"; the paper's value was not reachable)
        "latency_weight": 0.01,  # FasterSeg's initial student lambda; GAS's own is not reachable
    },
    # LGCNet: GAS + a dense-connected fusion cell over all cells (abstract); fused at 1/8 as the
    # workbench's lgcnet preset (our choice, the paper's stride is not reachable).
    "lgcnet-paper": {
        **_SCHEDULE,
        "input_size": (1024, 2048),  # our choice: Cityscapes full frames
        "stem_channels": 32,  # our choice
        "head_channels": 64,  # our choice
        "space": {"name": "cells", "cell_sharing": False, "gcn": True,  # LGCNet abstract (local)
                  "fusion": True, "fusion_stride": 8, "fusion_nodes": 3,  # abstract (global); stride/nodes our choice
                  "fusion_channels": 64,  # our choice
                  "num_cells": 12, "reductions": [0, 4, 8], "channels": 32, "nodes": 3,  # our choice
                  "gamma": 0.5, "gcn_hidden": 32},  # our choice
        "latency_weight": 0.01,  # FasterSeg's initial student lambda; LGCNet's own is not reachable
    },
    # AutoRTNet: hyper-cells decide depth and downsampling by cell-level pruning, an aggregation
    # cell fuses the scales (abstract); 768x1536 input (abstract: 73.9 % test mIoU at 110 FPS).
    "autortnet-paper": {
        **_SCHEDULE,
        "input_size": (768, 1536),  # AutoRTNet abstract
        "stem_channels": 32,  # our choice
        "head_channels": 64,  # our choice
        "space": {"name": "hyper", "cell_sharing": False, "aggregation": True,  # abstract
                  "layers": 12, "output_stride": 32,  # our choice (FasterSeg searches 16 layers at 1/8-1/32)
                  "channels": 32, "nodes": 2,  # our choice
                  "aggregation_strides": [8, 16], "aggregation_channels": 64, "aggregation_nodes": 2},  # our choice
        "latency_weight": 0.01,  # FasterSeg's initial student lambda; AutoRTNet's own is not reachable
    },
}


# The retrain that goes with each search preset (`workbench retrain --preset gas-paper ...`). The
# papers' retrain sections were not reachable either; FasterSeg's retrain (train/config_train.py at
# 478b026) is the source, with its optimization in the `fasterseg-v1` recipe (workbench.seg.recipes).
_RETRAIN = {
    "dataset": "cityscapes",  # the papers' abstracts (Cityscapes)
    "recipe": "fasterseg-v1",  # FasterSeg's SGD/exp-decay/OHEM retrain
    "crop_size": (512, 1024),  # FasterSeg config_train.py image_height/width (full-resolution images)
    "batch_size": 12,  # FasterSeg config_train.py batch_size
    "epochs": 2420,  # FasterSeg: 600 epochs x 1,000 iterations x batch 12 = 7.2 M images / 2,975 train images
    "eval_size": None,  # FasterSeg evaluates at full 1024x2048, single scale, no flip
    "eval_every": 100,  # our choice
}

PAPER_RETRAIN: dict[str, dict] = {name: dict(_RETRAIN) for name in PAPER_PRESETS}
