"""Training targets and losses: centre heatmap + box (detection), mask, boundary, and re-ID contrast."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.ops import generalized_box_iou_loss

from workbench.vos.heads import DetectionHead, boundary_band


def centre_targets(det: DetectionHead, boxes: list[torch.Tensor], grid: tuple[int, int]
                   ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
    """Gaussian centre heatmaps [B, 1, h, w] (CenterNet) and, per image, the positive cells
    (3x3 around each centre, inside the box) with the box each should regress."""
    h, w = grid
    s = det.stride
    heat = torch.zeros(len(boxes), 1, h, w)
    ys = torch.arange(h, dtype=torch.float32)[:, None]
    xs = torch.arange(w, dtype=torch.float32)[None, :]
    positives = []
    for i, bx in enumerate(boxes):
        cells, targets = [], []
        for b in bx:
            cx, cy = (b[0] + b[2]) / 2 / s - 0.5, (b[1] + b[3]) / 2 / s - 0.5
            bw, bh = (b[2] - b[0]) / s, (b[3] - b[1]) / s
            sigma = max(float(min(bw, bh)) / 6, 0.5)
            g = torch.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma ** 2))
            heat[i, 0] = torch.maximum(heat[i, 0], g)
            ix, iy = int(round(float(cx))), int(round(float(cy)))
            ix, iy = min(max(ix, 0), w - 1), min(max(iy, 0), h - 1)
            heat[i, 0, iy, ix] = 1.0
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    x, y = ix + dx, iy + dy
                    px, py = (x + 0.5) * s, (y + 0.5) * s
                    if 0 <= x < w and 0 <= y < h and b[0] <= px <= b[2] and b[1] <= py <= b[3]:
                        cells.append(y * w + x)
                        targets.append(b)
        positives.append((torch.tensor(cells, dtype=torch.long),
                          torch.stack(targets) if targets else torch.zeros(0, 4)))
    return heat, positives


def focal_heatmap_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss, normalized by the number of centres."""
    p = logits.sigmoid().clamp(1e-4, 1 - 1e-4)
    pos = target.eq(1).float()
    pos_loss = -(1 - p) ** 2 * torch.log(p) * pos
    neg_loss = -(1 - target) ** 4 * p ** 2 * torch.log(1 - p) * (1 - pos)
    return (pos_loss.sum() + neg_loss.sum()) / pos.sum().clamp_min(1)


def box_loss(det: DetectionHead, reg: torch.Tensor, positives: list) -> torch.Tensor:
    """L1 on FCOS codes + generalized IoU on decoded boxes at the positive cells."""
    h, w = reg.shape[-2:]
    ref = det.reference_boxes(h, w, reg.device)
    codes, refs, gts = [], [], []
    for i, (cells, boxes) in enumerate(positives):
        if len(cells):
            codes.append(reg[i].reshape(4, -1)[:, cells].t())
            refs.append(ref[cells])
            gts.append(boxes)
    if not codes:
        return reg.sum() * 0
    codes, refs, gts = torch.cat(codes), torch.cat(refs), torch.cat(gts)
    target = det.coder.encode(refs, gts)
    pred = det.coder.decode(codes, refs)
    return F.smooth_l1_loss(codes, target, beta=0.1) + generalized_box_iou_loss(
        pred, gts, reduction="mean")


def mask_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE + soft Dice on RoI masks [N, 1, S, S]."""
    if len(logits) == 0:
        return logits.sum() * 0
    bce = F.binary_cross_entropy_with_logits(logits, target)
    p = logits.sigmoid().flatten(1)
    t = target.flatten(1)
    dice = 1 - (2 * (p * t).sum(1) + 1) / (p.sum(1) + t.sum(1) + 1)
    return bce + dice.mean()


def boundary_loss(edge_logits: torch.Tensor, target: torch.Tensor, width: int = 1) -> torch.Tensor:
    """Class-balanced BCE of predicted boundary logits [N, 1, S, S] against the band around the
    target mask's boundary (`heads.boundary_band`, > 0.5). The band is a few % of the pixels, so
    each side is weighted by the other side's share."""
    if len(edge_logits) == 0:
        return edge_logits.sum() * 0
    band = (boundary_band(target, width) > 0.5).float()
    pos = band.mean().clamp(1e-3, 1 - 1e-3)
    weight = torch.where(band > 0, 1 - pos, pos) * 2
    return F.binary_cross_entropy_with_logits(edge_logits, band, weight=weight)


def reid_loss(emb: torch.Tensor, labels: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Supervised contrastive loss: same object id (across frames) attracts, others repel.

    labels: [N] global object ids (video * 256 + object); -1 marks background negatives.
    """
    if len(emb) < 2:
        return emb.sum() * 0
    sim = emb @ emb.t() / temperature
    n = len(emb)
    eye = torch.eye(n, dtype=torch.bool, device=emb.device)
    pos = (labels[:, None] == labels[None, :]) & ~eye & (labels[:, None] >= 0)
    has = pos.any(1)
    if not has.any():
        return emb.sum() * 0
    logprob = sim.masked_fill(eye, -1e9).log_softmax(1)
    loss = -(logprob * pos).sum(1) / pos.sum(1).clamp_min(1)
    return loss[has].mean()
