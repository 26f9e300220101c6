"""OVS-Net: backbone + detection + mask-guided mask head + re-ID head, one pass per frame."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import nn

from workbench.vos.backbone import build_backbone
from workbench.vos.heads import DetectionHead, MaskHead, ReIDHead, rois_of

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


@dataclasses.dataclass
class ModelSpec:
    """What builds the network (stored in checkpoints so a run dir rebuilds its model)."""

    attention: bool = True
    boundary: bool = False     # boundary-aware attention and boundary branch in the mask head
    backbone: str = "tiny"     # workbench.vos.backbone.BACKBONES
    emb_dim: int = 64
    mask_size: int = 32
    fpn: int = 48
    ref_size: float = 64.0
    input_scale: float = 0.5   # frames are resized by this before the network (854x480 -> 427x240)


class OVSNet(nn.Module):
    def __init__(self, spec: ModelSpec | None = None):
        super().__init__()
        self.spec = spec = spec or ModelSpec()
        self.backbone = build_backbone(spec.backbone, fpn=spec.fpn)
        ch = self.backbone.channels
        self.det = DetectionHead(ch[8], ref_size=spec.ref_size)
        self.mask = MaskHead(ch, size=spec.mask_size, attention=spec.attention, boundary=spec.boundary)
        self.reid = ReIDHead(ch[8], dim=spec.emb_dim)

    @staticmethod
    def prepare(frames: np.ndarray | torch.Tensor, device: torch.device | str = "cpu"
                ) -> torch.Tensor:
        """uint8 [T, H, W, 3] (or [H, W, 3]) -> normalized float [T, 3, H, W]."""
        frames = np.asarray(frames)
        if not frames.flags.writeable:  # e.g. a PIL-backed array; torch wants writable memory
            frames = frames.copy()
        x = torch.from_numpy(frames).to(device)
        if x.ndim == 3:
            x = x[None]
        x = x.permute(0, 3, 1, 2).float().div_(255)
        return (x - MEAN.to(x.device)) / STD.to(x.device)

    def network_size(self, size: tuple[int, int]) -> tuple[int, int]:
        s = self.spec.input_scale
        return max(int(round(size[0] * s)), 16), max(int(round(size[1] * s)), 16)

    def forward(self, images: torch.Tensor) -> dict:
        """The per-frame pass: features, centre heatmap, box codes and the embedding map."""
        feats = self.backbone(images)
        heat, reg = self.det(feats[8])
        return {"feats": feats, "heat": heat, "reg": reg, "emb": self.reid(feats[8]),
                "size": tuple(images.shape[-2:])}

    def propose(self, out: dict, score_thresh: float = 0.2, topk: int = 20, nms_iou: float = 0.5
                ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return self.det.decode(out["heat"], out["reg"], out["size"], score_thresh, topk, nms_iou)

    def segment(self, out: dict, boxes: torch.Tensor, prior: torch.Tensor | None = None,
                batch_index: torch.Tensor | None = None) -> torch.Tensor:
        """Mask logits [N, 1, S, S] inside `boxes`, guided by `prior` (None: no guidance)."""
        return self.mask(out["feats"], rois_of(boxes, batch_index), prior)

    def embed(self, out: dict, boxes: torch.Tensor, masks: torch.Tensor,
              batch_index: torch.Tensor | None = None) -> torch.Tensor:
        """L2-normalized embeddings pooled inside `masks` (RoI grids, probabilities)."""
        return self.reid.pool(out["emb"], rois_of(boxes, batch_index), masks)
