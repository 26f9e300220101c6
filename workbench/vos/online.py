"""One-pass, strictly causal inference: one network pass per frame, tracker in the loop.

Per frame: backbone + detection + embedding map (one pass); unguided masks and embeddings of
the proposals; assignment to targets (tracker); mask-guided masks of the matched proposals with
each target's previous mask as the prior; paste at full resolution; update the targets.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from workbench.vos.data import mask_boxes, resize_frames, roi_mask
from workbench.vos.model import OVSNet
from workbench.vos.tracker import Proposals, Target, Tracker, TrackerConfig

ROI_EXPAND = 1.15


def expand(boxes: torch.Tensor, factor: float = ROI_EXPAND, min_size: float = 8.0) -> torch.Tensor:
    """Grow boxes about their centre so a slightly small box still holds the whole object."""
    c = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = ((boxes[:, 2:] - boxes[:, :2]) * factor).clamp_min(min_size) / 2
    return torch.cat([c - half, c + half], 1)


def reframe(masks: torch.Tensor, src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """RoI masks [N, C, S, S] drawn in boxes `src` [N, 4], redrawn in boxes `dst` (zeros where dst
    reaches outside src). A propagated target is segmented in a wider box than the one its previous
    mask (the prior) was cropped in; training drew the prior in the RoI's own geometry, so the prior
    is redrawn to match the RoI it guides."""
    if not len(masks):
        return masks
    src, dst = src.float(), dst.float()
    c_src, h_src = (src[:, :2] + src[:, 2:]) / 2, ((src[:, 2:] - src[:, :2]) / 2).clamp_min(1e-6)
    c_dst, h_dst = (dst[:, :2] + dst[:, 2:]) / 2, (dst[:, 2:] - dst[:, :2]) / 2
    theta = torch.zeros(len(masks), 2, 3, device=masks.device)
    theta[:, 0, 0], theta[:, 1, 1] = (h_dst / h_src).T.to(masks.device)
    theta[:, :, 2] = ((c_dst - c_src) / h_src).to(masks.device)
    grid = F.affine_grid(theta, list(masks.shape), align_corners=False)
    return F.grid_sample(masks.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def flip_boxes(boxes: torch.Tensor, width: int) -> torch.Tensor:
    return torch.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], 1)


def paste(prob: torch.Tensor, roi: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """An S x S probability map of a RoI -> H x W map (zeros outside the RoI)."""
    h, w = size
    out = torch.zeros(h, w)
    x1, y1, x2, y2 = (float(v) for v in roi)
    bw, bh = max(int(round(x2 - x1)), 1), max(int(round(y2 - y1)), 1)
    x0, y0 = int(round(x1)), int(round(y1))
    m = F.interpolate(prob[None, None].float(), size=(bh, bw), mode="bilinear",
                      align_corners=False)[0, 0]
    sx, sy = max(-x0, 0), max(-y0, 0)
    ex, ey = min(bw, w - x0), min(bh, h - y0)
    if ex > sx and ey > sy:
        out[y0 + sy:y0 + ey, x0 + sx:x0 + ex] = m[sy:ey, sx:ex]
    return out


def _shape_box(prob: torch.Tensor, roi: torch.Tensor, thresh: float = 0.5) -> torch.Tensor:
    """The box of an S x S RoI mask in image coordinates (the RoI itself when empty)."""
    ys, xs = torch.nonzero(prob > thresh, as_tuple=True)
    if len(ys) == 0:
        return roi
    s = prob.shape[-1]
    scale = (roi[2:] - roi[:2]) / s
    lo = roi[:2] + torch.stack([xs.min(), ys.min()]).float() * scale
    hi = roi[:2] + (torch.stack([xs.max(), ys.max()]).float() + 1) * scale
    return torch.cat([lo, hi])


@dataclasses.dataclass
class FrameResult:
    """Per visible target: its RoI and mask probabilities on the RoI grid (compact)."""

    objects: dict[int, tuple[torch.Tensor, torch.Tensor]]
    scale: tuple[float, float] = (1.0, 1.0)   # output / network pixels (x, y)
    similarity: dict[int, float] = dataclasses.field(default_factory=dict)  # re-ID, per object

    def probs(self, size: tuple[int, int]) -> dict[int, torch.Tensor]:
        """Full-resolution probability maps: RoI masks pasted at the output size."""
        sx, sy = self.scale
        k = torch.tensor([sx, sy, sx, sy])
        return {i: paste(p, r * k, size) for i, (r, p) in self.objects.items()}


def compose(probs: dict[int, torch.Tensor], size: tuple[int, int], thresh: float = 0.5
            ) -> np.ndarray:
    """Per-object probabilities -> uint8 label map (0 background, else the object id)."""
    if not probs:
        return np.zeros(size, dtype=np.uint8)
    ids = torch.tensor(list(probs), dtype=torch.uint8)
    stack = torch.stack(list(probs.values()))
    best, arg = stack.max(0)
    return torch.where(best > thresh, ids[arg], torch.zeros_like(ids[arg])).numpy()


def compose_rois(result: FrameResult, size: tuple[int, int], thresh: float = 0.5
                 ) -> np.ndarray:
    """Same labels as compose(result.probs(size)), touching only each object's RoI."""
    h, w = size
    best = torch.zeros(h, w)
    label = torch.zeros(h, w, dtype=torch.uint8)
    sx, sy = result.scale
    for i, (roi, prob) in result.objects.items():
        x1, y1, x2, y2 = (float(v) for v in roi * torch.tensor([sx, sy, sx, sy]))
        bw, bh = max(int(round(x2 - x1)), 1), max(int(round(y2 - y1)), 1)
        x0, y0 = int(round(x1)), int(round(y1))
        sx0, sy0, ex, ey = max(-x0, 0), max(-y0, 0), min(bw, w - x0), min(bh, h - y0)
        if ex <= sx0 or ey <= sy0:
            continue
        m = F.interpolate(prob[None, None].float(), size=(bh, bw), mode="bilinear",
                          align_corners=False)[0, 0, sy0:ey, sx0:ex]
        region = (slice(y0 + sy0, y0 + ey), slice(x0 + sx0, x0 + ex))
        win = (m > best[region]) & (m > thresh)
        best[region] = torch.where(win, m, best[region])
        label[region] = torch.where(win, torch.tensor(i, dtype=torch.uint8), label[region])
    return label.numpy()


def mask_targets(mask: np.ndarray) -> list[int]:
    return [int(i) for i in np.unique(mask) if i not in (0, 255)]


def overlay_new(labels: np.ndarray, given: np.ndarray, known: set[int]) -> np.ndarray:
    """A frame's label map with the given pixels of the objects that enter at this frame."""
    out = labels.copy()
    for i in mask_targets(given):
        if i not in known:
            out[out == i] = 0
            out[given == i] = i
    return out


class OnlineSegmenter:
    """Runs OVS-Net over a video frame by frame; `flip` adds flip test-time augmentation."""

    def __init__(self, model: OVSNet, config: TrackerConfig | None = None,
                 device: torch.device | str = "cpu", flip: bool = False):
        self.model, self.cfg, self.device, self.flip = model.eval(), config or TrackerConfig(), \
            torch.device(device), flip
        self.size = model.spec.mask_size

    def _pass(self, frame: np.ndarray) -> dict:
        if tuple(frame.shape[:2]) != self.net_size:  # exactly the training-time resampling
            frame = resize_frames(frame[None], self.net_size)[0]
        x = self.model.prepare(frame, self.device)
        out = self.model(x)
        if self.flip:
            out["flipped"] = self.model(x.flip(-1))
        return out

    def _masks(self, out: dict, rois: torch.Tensor, prior: torch.Tensor | None) -> torch.Tensor:
        m = self.model.segment(out, rois, prior).sigmoid()
        if self.flip and prior is not None:
            w = out["size"][1]
            mf = self.model.segment(out["flipped"], flip_boxes(rois, w), prior.flip(-1)).sigmoid()
            m = (m + mf.flip(-1)) / 2
        return m

    def _template(self, prob: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
        return roi_mask(prob, expand(box[None])[0], self.size)[0]

    @torch.no_grad()
    def start(self, frame: np.ndarray, mask: np.ndarray, memories: dict | None = None,
              absent: dict | None = None) -> FrameResult:
        """Targets from a (first-frame) mask. `memories`/`absent` let the offline pass seed
        extra knowledge: memory embeddings per id, and ids that are not visible now
        (id -> (box, template))."""
        self.out_size = tuple(mask.shape)
        self.net_size = self.frame_size = self.model.network_size(self.out_size)
        self.scale = (self.out_size[1] / self.net_size[1], self.out_size[0] / self.net_size[0])
        if self.net_size != self.out_size:
            mask = F.interpolate(torch.from_numpy(mask.copy())[None, None].float(),
                                 size=self.net_size, mode="nearest")[0, 0].to(torch.uint8).numpy()
        out = self._pass(frame)
        ids = mask_targets(mask)
        self.tracker = Tracker(self.cfg, self.frame_size)
        self.t = 0
        if not ids and not absent:
            self.tracker.init([], torch.zeros(0, 4), torch.zeros(0, 1), torch.zeros(0, 1, 1))
            return FrameResult({}, self.scale)
        boxes, templates, embs = self._describe(out, mask, ids)
        present = [True] * len(ids)
        if absent:
            for i, (box, tmpl) in absent.items():
                ids.append(i)
                boxes = torch.cat([boxes, box[None]])
                templates = torch.cat([templates, tmpl[None]])
                embs = torch.cat([embs, memories[i][None]])
                present.append(False)
        self.tracker.init(ids, boxes, embs, templates)
        if memories:
            for t in self.tracker.targets:
                if t.obj_id in memories:
                    t.memory = memories[t.obj_id].clone()
        for t, p in zip(self.tracker.targets, present):
            t.present = p
        self.t = 0
        return FrameResult({i: (expand(b[None])[0], tm) for i, b, tm, p in
                            zip(ids, boxes, templates, present) if p}, self.scale)

    def _net_mask(self, mask: np.ndarray) -> np.ndarray:
        if self.net_size == tuple(mask.shape):
            return mask
        return F.interpolate(torch.from_numpy(mask.copy())[None, None].float(), size=self.net_size,
                             mode="nearest")[0, 0].to(torch.uint8).numpy()

    def _describe(self, out: dict, mask: np.ndarray, ids: list[int]
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Boxes, RoI templates and embeddings of the objects `ids` of a mask (network pixels)."""
        if not ids:
            return (torch.zeros(0, 4), torch.zeros(0, self.size, self.size),
                    torch.zeros(0, self.model.spec.emb_dim))
        full = torch.from_numpy(np.stack([mask == i for i in ids]).astype(np.float32))
        boxes = mask_boxes(full)
        templates = torch.stack([self._template(m, b) for m, b in zip(full, boxes)])
        embs = self.model.embed(out, expand(boxes).to(self.device), templates[:, None].to(self.device)).cpu()
        return boxes, templates, embs

    @torch.no_grad()
    def step(self, frame: np.ndarray, mask: np.ndarray | None = None) -> FrameResult:
        """The next frame. `mask` (optional, frame pixels) annotates objects that enter here: the
        ids it has that are not targets yet become targets from this frame on (YouTube-VOS
        semantics); ids that are already targets are ignored."""
        self.t += 1
        tracker = self.tracker
        out = self._pass(frame)
        result = self._step(out)
        if mask is not None:
            net_mask = self._net_mask(mask)
            known = {t.obj_id for t in tracker.targets}
            new = [i for i in mask_targets(net_mask) if i not in known]
            boxes, templates, embs = self._describe(out, net_mask, new)
            for i, b, tm, e in zip(new, boxes, templates, embs):
                tracker.targets.append(Target(i, e.clone(), e.clone(), b.clone(), tm.clone(), last_seen=self.t))
                result.objects[i] = (expand(b[None])[0], tm)
        return result

    def _step(self, out: dict) -> FrameResult:
        tracker, dev, cfg = self.tracker, self.device, self.cfg
        boxes, scores = self.model.propose(out, cfg.score_thresh, cfg.topk, cfg.nms_iou)[0]
        rois = expand(boxes)
        shapes = self.model.segment(out, rois, None).sigmoid() if len(boxes) else \
            torch.zeros(0, 1, self.size, self.size, device=dev)
        owner = [-1] * len(boxes)
        # propagated proposals: each visible target segmented in its motion-predicted box
        ks = [k for k, t in enumerate(tracker.targets) if t.present] if cfg.propagate else []
        if ks:
            pred = torch.stack([tracker.targets[k].predicted_box(self.t) for k in ks]).to(dev)
            prois = expand(pred, cfg.propagate_expand)
            templates = torch.stack([tracker.targets[k].template for k in ks])[:, None].to(dev)
            prior = reframe(templates, expand(pred), prois)  # the template's box, moved with the target
            pshapes = self._masks(out, prois, prior)
            pboxes = torch.stack([_shape_box(m[0], r) for m, r in zip(pshapes, prois)])
            boxes, rois = torch.cat([boxes, pboxes]), torch.cat([rois, prois])
            shapes = torch.cat([shapes, pshapes])
            scores = torch.cat([scores, torch.zeros(len(ks), device=dev)])
            owner += ks
        matches: dict[int, int] = {}
        if tracker.targets:
            embs = self.model.embed(out, rois, shapes) if len(rois) else \
                torch.zeros(0, self.model.spec.emb_dim)
            props = Proposals(boxes.cpu(), scores.cpu(), embs.cpu(), shapes[:, 0].cpu(),
                              torch.tensor(owner, dtype=torch.long))
            matches = tracker.associate(props, self.t)
        result: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        updated: set[int] = set()
        sims: dict[int, float] = {}
        if matches:
            ks = list(matches)
            ps = torch.tensor([matches[k] for k in ks])
            masks = shapes[ps.to(dev)][:, 0].clone()
            fresh = [j for j, p in enumerate(ps.tolist()) if owner[p] < 0]  # detections: guide now
            if fresh:
                prior = torch.stack([tracker.targets[ks[j]].template for j in fresh])[:, None]
                masks[fresh] = self._masks(out, rois[ps[fresh].to(dev)], prior.to(dev))[:, 0]
            masks = masks.cpu()
            for j, k in enumerate(ks):
                roi = rois[ps[j]].cpu()
                prob = paste(masks[j], roi, self.frame_size)
                if (prob > 0.5).sum() < 4:
                    continue
                box = mask_boxes(prob[None])[0]
                if owner[int(ps[j])] < 0:  # a detection's box is steadier than a mask's
                    box = (box + boxes[ps[j]].cpu()) / 2
                template = self._template(prob, box)
                emb = self.model.embed(out, expand(box[None]).to(dev), template[None, None].to(
                    dev))[0].cpu()
                tg = tracker.targets[k]
                sims[tg.obj_id] = float(torch.maximum(emb @ tg.memory, emb @ tg.anchor))
                tracker.update(k, box, emb, template, float(scores[ps[j]]), self.t)
                result[tg.obj_id] = (roi, masks[j])
                updated.add(k)
        tracker.mark_absent(updated)
        return FrameResult(result, self.scale, sims)

    def run(self, frames, mask: np.ndarray, later: dict[int, np.ndarray] | None = None):
        """Yields (frame index, label map); frame 0 is the given mask. `later` = {frame: mask}
        adds the objects entering at that frame; their given pixels are that frame's output."""
        self.start(frames[0], mask)
        yield 0, np.where(mask == 255, 0, mask).astype(np.uint8)
        for t in range(1, len(frames)):
            yield t, self.labels(frames[t], (later or {}).get(t))

    def labels(self, frame: np.ndarray, given: np.ndarray | None = None) -> np.ndarray:
        """The next frame's label map; `given` (a mask for this frame) adds the objects entering
        here, whose given pixels are the output."""
        known = {tg.obj_id for tg in self.tracker.targets}
        labels = compose_rois(self.step(frame, given), self.out_size)
        return labels if given is None else overlay_new(labels, given, known)
