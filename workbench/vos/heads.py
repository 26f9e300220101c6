"""The three heads of OVS-Net: detection, mask (with mask-guided attention) and re-ID.

All three read the same backbone features, so a frame costs one backbone pass; the mask and
re-ID heads work on RoIs (torchvision's roi_align) of the proposals.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection._utils import BoxLinearCoder
from torchvision.ops import batched_nms, roi_align

from workbench.vos.backbone import SepConv, conv_bn


class DetectionHead(nn.Module):
    """Anchor-free, class-agnostic: an object-centre heatmap and FCOS box distances at stride 8.

    Each stride-8 cell owns a square reference box of side `ref_size`; box distances are coded
    relative to it with torchvision's BoxLinearCoder (FCOS coding).
    """

    def __init__(self, cin: int, stride: int = 8, ref_size: float = 64.0):
        super().__init__()
        self.stride, self.ref_size = stride, ref_size
        self.tower = nn.Sequential(SepConv(cin, cin), SepConv(cin, cin))
        self.centre = nn.Conv2d(cin, 1, 1)
        self.box = nn.Conv2d(cin, 4, 1)
        nn.init.constant_(self.centre.bias, -math.log((1 - 0.01) / 0.01))
        self.coder = BoxLinearCoder(normalize_by_size=True)

    def forward(self, p8: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = self.tower(p8)
        return self.centre(t), F.softplus(self.box(t))  # distances >= 0: boxes never invert

    def reference_boxes(self, h: int, w: int, device: torch.device) -> torch.Tensor:
        """[h*w, 4] square boxes centred on the cells of an h x w stride-8 grid."""
        ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) * self.stride
        xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) * self.stride
        cy, cx = torch.meshgrid(ys, xs, indexing="ij")
        cx, cy, r = cx.reshape(-1), cy.reshape(-1), self.ref_size / 2
        return torch.stack([cx - r, cy - r, cx + r, cy + r], dim=1)

    @torch.no_grad()
    def decode(self, heat: torch.Tensor, reg: torch.Tensor, image_size: tuple[int, int],
               score_thresh: float = 0.2, topk: int = 20, nms_iou: float = 0.5
               ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Peaks of the centre heatmap (3x3 max-pool) -> boxes, scores after NMS, per image."""
        prob = heat.sigmoid()
        peaks = prob * (F.max_pool2d(prob, 3, 1, 1) == prob)
        b, _, h, w = heat.shape
        ref = self.reference_boxes(h, w, heat.device)
        out = []
        for i in range(b):
            scores, idx = peaks[i, 0].reshape(-1).topk(min(topk, h * w))
            keep = scores > score_thresh
            scores, idx = scores[keep], idx[keep]
            codes = reg[i].reshape(4, -1)[:, idx].t()
            boxes = self.coder.decode(codes, ref[idx])
            boxes[:, 0::2] = boxes[:, 0::2].clamp(0, image_size[1])
            boxes[:, 1::2] = boxes[:, 1::2].clamp(0, image_size[0])
            ok = (boxes[:, 2] - boxes[:, 0] > 2) & (boxes[:, 3] - boxes[:, 1] > 2)
            boxes, scores = boxes[ok], scores[ok]
            keep = batched_nms(boxes, scores, torch.zeros_like(scores, dtype=torch.long), nms_iou)
            out.append((boxes[keep], scores[keep]))
        return out


def rois_of(boxes: torch.Tensor, batch_index: torch.Tensor | None = None) -> torch.Tensor:
    """[N, 4] boxes (+ image index) -> [N, 5] RoIs for torchvision's roi_align."""
    if batch_index is None:
        batch_index = torch.zeros(len(boxes), device=boxes.device)
    return torch.cat([batch_index.to(boxes.dtype)[:, None], boxes], dim=1)


def boundary_band(mask: torch.Tensor, width: int = 1) -> torch.Tensor:
    """The band around a (soft) mask's boundary [N, 1, H, W]: dilation minus erosion by a
    (2 width + 1)-square, i.e. the morphological gradient, in [0, 1]."""
    k = 2 * width + 1
    dilated = F.max_pool2d(mask, k, stride=1, padding=width)
    eroded = -F.max_pool2d(-mask, k, stride=1, padding=width)
    return dilated - eroded


class MaskGuidedAttention(nn.Module):
    """Re-weights RoI features with the target's previous mask (warped into the RoI).

    Spatial attention: a gate from the features and the mask prior (and, boundary-aware, the
    band around the prior's boundary at this scale, where the mask changes from frame to
    frame); channel attention: a gate from the features pooled inside the prior (what the
    target looks like). Off -> identity.
    """

    def __init__(self, channels: int, boundary: bool = False):
        super().__init__()
        self.boundary = boundary
        self.spatial = nn.Sequential(conv_bn(channels + 1 + int(boundary), 8, 1), nn.Conv2d(8, 1, 3, padding=1))
        self.channel = nn.Sequential(nn.Linear(2 * channels, channels), nn.ReLU(inplace=True),
                                     nn.Linear(channels, channels))

    def forward(self, feat: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        prior = F.interpolate(prior, size=feat.shape[-2:], mode="bilinear", align_corners=False)
        cues = [feat, prior, boundary_band(prior)] if self.boundary else [feat, prior]
        spatial = torch.sigmoid(self.spatial(torch.cat(cues, 1)))
        inside = (feat * prior).sum((2, 3)) / prior.sum((2, 3)).clamp_min(1e-3)
        outside = (feat * (1 - prior)).sum((2, 3)) / (1 - prior).sum((2, 3)).clamp_min(1e-3)
        channel = torch.sigmoid(self.channel(torch.cat([inside, outside], 1)))[:, :, None, None]
        return feat * (0.5 + spatial) * (0.5 + channel)


class MaskHead(nn.Module):
    """Segments a proposal: RoI features of three levels, attention-gated, fused top-down.

    The fused feature map is at `size` x `size` (from the stride-4 level, for sharp boundaries);
    the mask prior is also an input channel of the fusion when attention is on. Boundary-aware
    (`boundary`): each scale's attention also sees the prior's boundary band, and a boundary
    branch predicts the object's boundary band from the fused features (trained with
    `losses.boundary_loss`); its probability is one more input channel of the final fusion.
    """

    def __init__(self, channels: dict[int, int], size: int = 32, attention: bool = True, boundary: bool = False):
        super().__init__()
        self.size, self.attention, self.boundary = size, attention, boundary
        c4, c8, c16 = channels[4], channels[8], channels[16]
        self.reduce16 = conv_bn(c16, c4, 1)
        self.reduce8 = conv_bn(c8, c4, 1)
        if attention:
            self.att = nn.ModuleDict({str(s): MaskGuidedAttention(c4, boundary) for s in (4, 8, 16)})
        self.fuse8 = SepConv(c4, c4)
        if boundary:
            self.edge = nn.Sequential(SepConv(c4, c4), nn.Conv2d(c4, 1, 1))
        self.fuse4 = nn.Sequential(conv_bn(c4 + int(attention) + int(boundary), c4, 1), SepConv(c4, c4))
        self.out = nn.Conv2d(c4, 1, 1)
        self.last_edge: torch.Tensor | None = None  # boundary logits of the last forward (training reads them)

    def forward(self, feats: dict[int, torch.Tensor], rois: torch.Tensor,
                prior: torch.Tensor | None = None) -> torch.Tensor:
        """rois [N, 5] in image pixels; prior [N, 1, S, S] in [0, 1] -> mask logits [N, 1, S, S]."""
        s = self.size
        r16 = self.reduce16(roi_align(feats[16], rois, s // 4, 1 / 16, 2, aligned=True))
        r8 = self.reduce8(roi_align(feats[8], rois, s // 2, 1 / 8, 2, aligned=True))
        r4 = roi_align(feats[4], rois, s, 1 / 4, 2, aligned=True)
        if self.attention:
            if prior is None:
                prior = torch.full((len(rois), 1, s, s), 0.5, device=rois.device)
            r16 = self.att["16"](r16, prior)
            r8 = self.att["8"](r8, prior)
            r4 = self.att["4"](r4, prior)
        x = self.fuse8(r8 + F.interpolate(r16, scale_factor=2, mode="bilinear", align_corners=False))
        x = r4 + F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        extra = [prior] if self.attention else []
        if self.boundary:
            self.last_edge = self.edge(x)
            extra.append(self.last_edge.sigmoid())
        return self.out(self.fuse4(torch.cat([x, *extra], 1) if extra else x))


class ReIDHead(nn.Module):
    """A dense embedding map at stride 8; an object's embedding is pooled inside its mask.

    The same pooling serves targets (inside the given first-frame mask) and proposals (inside
    their predicted mask), so both live in one L2-normalized space.
    """

    def __init__(self, cin: int, dim: int = 64, size: int = 16):
        super().__init__()
        self.size = size
        self.tower = nn.Sequential(SepConv(cin, cin), nn.Conv2d(cin, dim, 1))

    def forward(self, p8: torch.Tensor) -> torch.Tensor:
        return self.tower(p8)

    def pool(self, emb_map: torch.Tensor, rois: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Mask-weighted average of the embedding map in each RoI; masks [N, 1, S', S'] in [0, 1]."""
        feat = roi_align(emb_map, rois, self.size, 1 / 8, 2, aligned=True)
        m = F.interpolate(masks, size=feat.shape[-2:], mode="bilinear", align_corners=False)
        v = (feat * m).sum((2, 3)) / m.sum((2, 3)).clamp_min(1e-3)
        return F.normalize(v, dim=1)
