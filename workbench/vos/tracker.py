"""Online target bookkeeping: memories, motion, one-to-one assignment, absence and re-ID.

The tracker sees, per frame, a set of proposals (boxes, detection scores, re-ID embeddings and
unguided mask shapes in their boxes) and decides which proposal is which target:

* cost = w_app * (1 - cosine similarity to the target's memory)
       + w_iou * (1 - IoU with the motion-predicted box)
       + w_mask * (1 - soft IoU of the proposal's shape with the target's previous mask),
  solved one-to-one with scipy's linear_sum_assignment; pairs outside the gates are forbidden.
* a target without an acceptable proposal is marked absent (occluded / out of frame) and keeps
  its memory; it is re-acquired only by a confident re-ID match (`reacquire_sim`).
* unmatched proposals are followed as non-target tracks. An object seen at the same time as a
  target cannot be that target, so a proposal continuing a non-target track that already existed
  while the target was visible is never assigned to it: a look-alike distractor stays ignored.
  A proposal overlapping a matched target's (IoU >= track_iou) is a duplicate detection of it,
  not another object: it starts no track, so it can never lock its own target out later.
* memories are updated (EMA) only on confident matches.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torchvision.ops import box_iou

FORBIDDEN = 1e6


@dataclasses.dataclass
class TrackerConfig:
    score_thresh: float = 0.15     # detection proposals kept
    topk: int = 10
    nms_iou: float = 0.5
    w_app: float = 1.0
    w_iou: float = 1.0
    w_mask: float = 0.5
    w_dist: float = 1.0            # re-acquisition: distance to the last position (diagonals)
    gate_iou: float = 0.05         # a visible target moves to an overlapping proposal ...
    gate_sim: float = 0.3          # ... that does not look different
    reacquire_sim: float = 0.75    # an absent target comes back only on a confident re-ID match
    absent_penalty: float = 0.5
    max_cost: float = 1.9
    memory_momentum: float = 0.8   # EMA of the target embedding
    update_sim: float = 0.6        # memory is updated only when the match is this confident
    update_score: float = 0.3
    velocity_momentum: float = 0.5
    propagate: bool = True         # also segment each visible target in its predicted box
    propagate_penalty: float = 0.3 # ... but prefer a detection when there is one
    propagate_expand: float = 1.4  # RoI growth of the predicted box (room for motion)
    min_mask_fill: float = 0.02    # a proposal whose mask fills less of its RoI is empty
    track_iou: float = 0.3         # non-target track continuation
    track_patience: int = 8        # frames a non-target track survives unseen


@dataclasses.dataclass
class Target:
    obj_id: int
    memory: torch.Tensor           # [D] EMA embedding (unit norm)
    anchor: torch.Tensor           # [D] first-frame embedding, never updated
    box: torch.Tensor              # [4] last box
    template: torch.Tensor         # [S, S] previous mask in its own box
    velocity: torch.Tensor = dataclasses.field(default_factory=lambda: torch.zeros(2))  # centre
    present: bool = True
    last_seen: int = 0

    def predicted_box(self, frame: int) -> torch.Tensor:
        """Constant velocity of the centre (sizes are too noisy to extrapolate)."""
        gap = min(frame - self.last_seen, 5)
        shift = self.velocity[:2] * gap
        return self.box + torch.cat([shift, shift])


@dataclasses.dataclass
class Track:
    """An object that is not (currently) a target."""

    box: torch.Tensor
    born: int
    last_seen: int


@dataclasses.dataclass
class Proposals:
    boxes: torch.Tensor            # [P, 4]
    scores: torch.Tensor           # [P]
    embeddings: torch.Tensor       # [P, D] unit norm
    shapes: torch.Tensor           # [P, S, S] unguided mask probabilities in the box
    owner: torch.Tensor | None = None  # [P] -1: a detection; k: target k's propagated box

    def owners(self) -> torch.Tensor:
        return self.owner if self.owner is not None else torch.full((len(self.boxes),), -1)


def soft_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[P, S, S] x [K, S, S] -> [P, K] soft IoU of probability maps on the same grid."""
    a, b = a.flatten(1), b.flatten(1)
    inter = a @ b.t()
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    return inter / union.clamp_min(1e-6)


class Tracker:
    def __init__(self, config: TrackerConfig | None = None, image_size: tuple[int, int] = (480, 854)):
        self.cfg = config or TrackerConfig()
        self.diag = float(np.hypot(*image_size))
        self.targets: list[Target] = []
        self.tracks: list[Track] = []

    def init(self, obj_ids: list[int], boxes: torch.Tensor, embeddings: torch.Tensor,
             templates: torch.Tensor, frame: int = 0) -> None:
        """Targets from the first-frame mask (embeddings pooled inside the given masks)."""
        self.targets = [Target(int(i), e.clone(), e.clone(), b.clone(), t.clone(), last_seen=frame)
                        for i, b, e, t in zip(obj_ids, boxes, embeddings, templates)]

    # -- association -------------------------------------------------------------------------
    def similarity(self, embeddings: torch.Tensor) -> torch.Tensor:
        """[P, K]: the better of memory and first-frame anchor similarity."""
        mem = torch.stack([t.memory for t in self.targets])
        anc = torch.stack([t.anchor for t in self.targets])
        return torch.maximum(embeddings @ mem.t(), embeddings @ anc.t())

    def _known_others(self, boxes: torch.Tensor, frame: int) -> torch.Tensor:
        """[P, K] true where proposal p continues a non-target track older than k's absence."""
        P, K = len(boxes), len(self.targets)
        out = torch.zeros(P, K, dtype=torch.bool)
        if not self.tracks or P == 0:
            return out
        iou = box_iou(boxes, torch.stack([t.box for t in self.tracks]))
        best, idx = iou.max(1)
        visible = [t.predicted_box(frame) for t in self.targets if t.present]
        near_target = box_iou(boxes, torch.stack(visible)).max(1).values if visible else \
            torch.zeros(P)
        for p in range(P):
            if best[p] < self.cfg.track_iou or near_target[p] >= best[p]:
                continue
            born = self.tracks[int(idx[p])].born
            for k, tgt in enumerate(self.targets):
                out[p, k] = born <= tgt.last_seen
        return out

    def cost_matrix(self, props: Proposals, frame: int) -> torch.Tensor:
        c = self.cfg
        P, K = len(props.boxes), len(self.targets)
        if P == 0 or K == 0:
            return torch.full((P, K), FORBIDDEN)
        sim = self.similarity(props.embeddings)
        pred = torch.stack([t.predicted_box(frame) for t in self.targets])
        iou = box_iou(props.boxes, pred)
        shape = soft_iou(props.shapes.flatten(1).view(P, -1), torch.stack(
            [t.template for t in self.targets]).view(K, -1))
        centre = lambda b: (b[:, :2] + b[:, 2:]) / 2  # noqa: E731
        dist = torch.cdist(centre(props.boxes), centre(pred)) / self.diag
        present = torch.tensor([t.present for t in self.targets])
        known = self._known_others(props.boxes, frame)
        app = c.w_app * (1 - sim.clamp(-1, 1)) + c.w_mask * (1 - shape)
        cost_present = app + c.w_iou * (1 - iou)
        cost_absent = app + c.w_dist * dist + c.absent_penalty
        ok_present = (iou > c.gate_iou) & (sim > c.gate_sim)
        ok_reacq = sim > c.reacquire_sim
        cost = torch.where(present[None, :] & ok_present, cost_present,
                           torch.where(ok_reacq, cost_absent, torch.full_like(sim, FORBIDDEN)))
        cost[known] = FORBIDDEN
        owner = props.owners()
        prop = owner >= 0
        if prop.any():  # a propagated box belongs to its own (visible) target only
            own = owner[prop][:, None] == torch.arange(K)[None, :]
            filled = props.shapes[prop].flatten(1).mean(1) > c.min_mask_fill
            ok = own & (sim[prop] > c.gate_sim) & filled[:, None]
            cost[prop] = torch.where(ok, cost_present[prop] + c.propagate_penalty,
                                     torch.full_like(cost[prop], FORBIDDEN))
        cost[cost > c.max_cost] = FORBIDDEN
        return cost

    def associate(self, props: Proposals, frame: int) -> dict[int, int]:
        """{target index: proposal index}, one to one; also advances the non-target tracks."""
        cost = self.cost_matrix(props, frame)
        matches: dict[int, int] = {}
        if cost.numel():
            rows, cols = linear_sum_assignment(cost.numpy())
            matches = {int(k): int(p) for p, k in zip(rows, cols) if cost[p, k] < FORBIDDEN}
        owner = props.owners()
        used = set(matches.values()) | {p for p in range(len(owner)) if owner[p] >= 0}
        if matches:  # a second detection of a matched target is a duplicate, not another object
            iou = box_iou(props.boxes, props.boxes[list(matches.values())]).max(1).values
            used |= {p for p in range(len(owner)) if iou[p] >= self.cfg.track_iou}
        self._advance_tracks(props.boxes, used, frame)
        return matches

    def _advance_tracks(self, boxes: torch.Tensor, used: set[int], frame: int) -> None:
        free = [p for p in range(len(boxes)) if p not in used]  # detections nobody took
        alive = [t for t in self.tracks if frame - t.last_seen <= self.cfg.track_patience]
        if free and alive:
            iou = box_iou(boxes[free], torch.stack([t.box for t in alive])).numpy()
            rows, cols = linear_sum_assignment(-iou)
            taken = set()
            for r, col in zip(rows, cols):
                if iou[r, col] >= self.cfg.track_iou:
                    alive[col].box, alive[col].last_seen = boxes[free[r]].clone(), frame
                    taken.add(r)
            free = [p for i, p in enumerate(free) if i not in taken]
        alive += [Track(boxes[p].clone(), frame, frame) for p in free]
        self.tracks = alive

    # -- update ------------------------------------------------------------------------------
    def update(self, k: int, box: torch.Tensor, embedding: torch.Tensor, template: torch.Tensor,
               score: float, frame: int) -> None:
        """A matched target: new box/velocity/template; memory EMA when the match is confident."""
        c, t = self.cfg, self.targets[k]
        if t.present:
            gap = max(frame - t.last_seen, 1)
            centre = lambda b: (b[:2] + b[2:]) / 2  # noqa: E731
            delta = (centre(box) - centre(t.box)) / gap
            t.velocity = c.velocity_momentum * t.velocity + (1 - c.velocity_momentum) * delta
        else:
            t.velocity = torch.zeros(2)
        sim = float(torch.maximum(embedding @ t.memory, embedding @ t.anchor))
        if sim > c.update_sim and score > c.update_score:
            m = c.memory_momentum * t.memory + (1 - c.memory_momentum) * embedding
            t.memory = m / m.norm().clamp_min(1e-6)
        t.box, t.template, t.present, t.last_seen = box.clone(), template.clone(), True, frame

    def mark_absent(self, matched: set[int]) -> None:
        for k, t in enumerate(self.targets):
            if k not in matched:
                t.present = False
