"""A PReMVOS-style offline baseline: proposals on every frame, bi-directional propagation, and a
merge with re-identification over the whole video.

PReMVOS (Luiten, Voigtlaender and Leibe, ACCV 2018) is the paradigm that one-pass methods such as
OVS-Net replaced. It generates proposals on every frame, refines them, propagates the given masks
through the video, and merges everything with re-ID over the whole sequence. Written here from that
description with our own networks (no PReMVOS code or weights), in four stages:

1. **Proposals on every frame**, before any tracking: class-agnostic detections at a low score
   threshold (`proposal_thresh`, up to `proposal_topk`). Each is segmented without a prior and
   refined by flip test-time augmentation, and embedded by the re-ID head.
2. **Forward propagation** from the first frame: the mask-guided tracker (flip-augmented).
3. **Backward propagation** from the last *confident* frame: the latest frame where the forward pass
   re-identified every target with similarity >= `anchor_sim` (the last frame when none was), seeded
   with the forward masks there and the targets' whole-video memories.
4. **Merge**: every target gets a whole-video re-ID memory (the mean of its confident embeddings in
   both passes). In each frame, each proposal is scored for each target:
   `reid_weight * cos(proposal, memory) + propagation_weight * mean IoU with the propagated masks
   + objectness_weight * detection score`. Targets take proposals one to one (Hungarian) above
   `min_score`. A target left without a proposal keeps the mean of its propagated masks.

Cost: three network passes per frame with flips (six forwards), plus the merge. Like all such
pipelines, it needs the whole video before the first answer.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from workbench.vos.model import OVSNet
from workbench.vos.offline import _run
from workbench.vos.online import OnlineSegmenter, compose, expand, flip_boxes, mask_targets, paste
from workbench.vos.tracker import TrackerConfig


@dataclasses.dataclass
class PremvosConfig:
    proposal_thresh: float = 0.05     # detections kept as proposals (lower than tracking's: recall first)
    proposal_topk: int = 20
    nms_iou: float = 0.5
    anchor_sim: float = 0.85          # a frame is confident when every target's re-ID similarity reaches this
    reid_weight: float = 1.0
    propagation_weight: float = 1.0
    objectness_weight: float = 0.5
    min_score: float = 0.9            # below this a target takes no proposal (it keeps its propagated mask)


@torch.no_grad()
def frame_proposals(seg: OnlineSegmenter, frame: np.ndarray, cfg: PremvosConfig, size: tuple[int, int]) -> dict:
    """One frame's proposals at output resolution: probabilities [P, H, W], scores [P], embeddings [P, D]."""
    out = seg._pass(frame)
    boxes, scores = seg.model.propose(out, cfg.proposal_thresh, cfg.proposal_topk, cfg.nms_iou)[0]
    if not len(boxes):
        return {"probs": torch.zeros(0, *size), "scores": torch.zeros(0), "embs": torch.zeros(0, 1)}
    rois = expand(boxes)
    masks = seg.model.segment(out, rois, None).sigmoid()
    flipped = seg.model.segment(out["flipped"], flip_boxes(rois, out["size"][1]), None).sigmoid().flip(-1)
    masks = (masks + flipped) / 2
    embs = F.normalize(seg.model.embed(out, rois, masks), dim=-1).cpu()
    sx, sy = seg.scale
    k = torch.tensor([sx, sy, sx, sy])
    probs = torch.stack([paste(m[0].cpu(), r.cpu() * k, size) for m, r in zip(masks, rois)])
    return {"probs": probs, "scores": scores.cpu(), "embs": embs}


def soft_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of every binarized mask of a [P, H, W] with b [H, W]."""
    a, b = a > 0.5, b > 0.5
    inter = (a & b).flatten(1).sum(1).float()
    union = (a | b).flatten(1).sum(1).float()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.zeros_like(union))


def merge_frame(props: dict, estimates: dict[int, list[torch.Tensor]], memories: dict[int, torch.Tensor],
                cfg: PremvosConfig) -> dict[int, torch.Tensor]:
    """One frame's target masks: a one-to-one choice among the proposals, else the propagated mean."""
    targets = sorted(estimates)
    chosen: dict[int, torch.Tensor] = {}
    if len(props["scores"]) and targets:
        score = torch.zeros(len(targets), len(props["scores"]))
        for i, obj in enumerate(targets):
            reid = props["embs"] @ memories[obj] if obj in memories else torch.zeros(len(props["scores"]))
            prop = torch.stack([soft_iou(props["probs"], e) for e in estimates[obj]]).mean(0) \
                if estimates[obj] else torch.zeros(len(props["scores"]))
            score[i] = cfg.reid_weight * reid + cfg.propagation_weight * prop + cfg.objectness_weight * props["scores"]
        rows, cols = linear_sum_assignment(-score.numpy())
        for r, c in zip(rows, cols):
            if score[r, c] >= cfg.min_score:
                chosen[targets[r]] = props["probs"][c]
    for obj in targets:
        if obj not in chosen and estimates[obj]:
            chosen[obj] = torch.stack(estimates[obj]).mean(0)
    return chosen


def _memories(banks: list[dict[int, list[torch.Tensor]]]) -> dict[int, torch.Tensor]:
    out: dict[int, list[torch.Tensor]] = {}
    for bank in banks:
        for obj, embs in bank.items():
            out.setdefault(obj, []).extend(embs)
    return {obj: F.normalize(torch.stack(v).mean(0), dim=0) for obj, v in out.items()}


@torch.no_grad()
def segment_premvos(model: OVSNet, frames, mask: np.ndarray, config: TrackerConfig | None = None,
                    device: torch.device | str = "cpu", cfg: PremvosConfig | None = None) -> list[np.ndarray]:
    """Label maps of every frame (frame 0 = the given mask)."""
    cfg = cfg or PremvosConfig()
    T, size = len(frames), tuple(mask.shape)
    first = np.where(mask == 255, 0, mask).astype(np.uint8)
    if T == 1:
        return [first]
    seg = OnlineSegmenter(model, config, device, flip=True)
    fwd = _run(seg, frames, list(range(T)), mask)
    fwd_bank = seg.memory_bank
    targets = mask_targets(first)
    confident = [t for t in range(1, T) if targets and all(fwd[t].similarity.get(i, 0.0) >= cfg.anchor_sim
                                                          for i in targets)]
    anchor = confident[-1] if confident else T - 1
    anchor_mask = compose(fwd[anchor].probs(size), size)
    memories = _memories([fwd_bank])
    absent = {tg.obj_id: (tg.box, tg.template) for tg in seg.tracker.targets
              if tg.obj_id not in mask_targets(anchor_mask)}
    bwd = _run(seg, frames, list(range(anchor, -1, -1)), anchor_mask, memories=memories, absent=absent)
    memories = _memories([fwd_bank, seg.memory_bank])
    out = [first]
    for t in range(1, T):
        props = frame_proposals(seg, frames[t], cfg, size)
        estimates = {obj: [] for obj in targets}
        for passed in (fwd.get(t), bwd.get(t) if t != anchor else None):
            if passed is not None:
                for obj, prob in passed.probs(size).items():
                    estimates.setdefault(obj, []).append(prob)
        out.append(compose(merge_frame(props, estimates, memories, cfg), size))
    return out
