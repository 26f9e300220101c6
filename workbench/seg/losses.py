"""Training losses of the retrain recipes: cross entropy, OHEM cross entropy, distillation,
auxiliary heads.

All take fp32 logits [N, C, H, W] at the label size and int64 labels [N, H, W] with an ignore
index; the caller casts autocast logits to fp32 first, so the loss is never computed in bf16.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int) -> torch.Tensor:
    return F.cross_entropy(logits, labels, ignore_index=ignore_index)


def ohem_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int,
                       thresh: float = 0.7, min_kept: float = 1 / 16) -> torch.Tensor:
    """Online hard example mining (as in BiSeNet / FasterSeg's OhemCELoss): the mean cross entropy
    over the pixels whose probability of the true class is below `thresh`, or, when fewer than
    `min_kept` (a fraction of the valid pixels) are that hard, over the `min_kept` hardest ones.

    Easy pixels of the dominant classes (road, sky) stop drowning the rare ones.
    """
    loss = F.cross_entropy(logits, labels, ignore_index=ignore_index, reduction="none").flatten()
    loss = loss[labels.flatten() != ignore_index]
    if loss.numel() == 0:
        return logits.sum() * 0.0  # keeps the graph: a batch of ignore pixels only
    n_min = max(1, min(loss.numel(), int(loss.numel() * min_kept)))
    hard_loss = -math.log(thresh)  # p(true) < thresh  <=>  CE > -log(thresh)
    hard = loss[loss > hard_loss]
    if hard.numel() >= n_min:
        return hard.mean()
    return torch.topk(loss, n_min, sorted=False).values.mean()


def distillation_kl(student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor | None = None,
                    ignore_index: int = 255, temperature: float = 1.0) -> torch.Tensor:
    """Pixel-wise KL(teacher_T || student_T) * T^2, averaged over the pixels (those not ignored
    when `labels` is given). The student's logits are resized to the teacher's size if needed;
    the teacher's are treated as constants."""
    if student.shape[-2:] != teacher.shape[-2:]:
        student = F.interpolate(student, size=teacher.shape[-2:], mode="bilinear", align_corners=False)
    t = temperature
    log_p_s = F.log_softmax(student / t, dim=1)
    log_p_t = F.log_softmax(teacher.detach() / t, dim=1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(1)  # [N, H, W]
    if labels is not None:
        if labels.shape[-2:] != kl.shape[-2:]:
            labels = F.interpolate(labels[:, None].float(), size=kl.shape[-2:], mode="nearest")[:, 0].long()
        valid = labels != ignore_index
        if not valid.any():
            return kl.sum() * 0.0
        kl = kl[valid]
    return kl.mean() * t * t


def aux_loss(aux_logits: list[torch.Tensor], labels: torch.Tensor, task) -> torch.Tensor:
    """Sum of the task loss of each auxiliary head (workbench.seg.aux_heads), its fp32 logits resized to the labels."""
    total = torch.zeros((), device=labels.device)
    for logits in aux_logits:
        logits = F.interpolate(logits.float(), size=labels.shape[-2:], mode="bilinear", align_corners=False)
        total = total + task(logits, labels)
    return total


@dataclass
class Objective:
    """The task loss of a resolved recipe plus, with a teacher, the distillation term."""

    ignore_index: int
    loss: str = "ce"
    ohem_thresh: float = 0.7
    ohem_min_kept: float = 1 / 16
    teacher: nn.Module | None = None
    distill_weight: float = 0.0
    temperature: float = 1.0
    aux_weight: float = 0.0  # weight of each auxiliary head's task loss (workbench.seg.aux_heads)

    @classmethod
    def from_values(cls, values: dict, ignore_index: int, teacher: nn.Module | None = None) -> Objective:
        return cls(ignore_index, values["loss"], values["ohem_thresh"], values["ohem_min_kept"],
                   teacher if values["distill_weight"] > 0 else None, values["distill_weight"],
                   values["distill_temperature"], float(values.get("aux_weight") or 0.0))

    @torch.no_grad()
    def teacher_logits(self, images: torch.Tensor) -> torch.Tensor | None:
        return None if self.teacher is None else self.teacher(images)

    def task(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.loss == "ohem":
            return ohem_cross_entropy(logits, labels, self.ignore_index, self.ohem_thresh, self.ohem_min_kept)
        return cross_entropy(logits, labels, self.ignore_index)

    def __call__(self, logits: torch.Tensor, labels: torch.Tensor, teacher_logits: torch.Tensor | None = None,
                 aux_logits: list[torch.Tensor] | None = None) -> torch.Tensor:
        loss = self.task(logits, labels)
        if aux_logits and self.aux_weight > 0:
            loss = loss + self.aux_weight * aux_loss(aux_logits, labels, self.task)
        if teacher_logits is None or self.distill_weight <= 0:
            return loss
        kd = distillation_kl(logits, teacher_logits.float(), labels, self.ignore_index, self.temperature)
        return loss + self.distill_weight * kd
