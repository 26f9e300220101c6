"""The offline back-and-forth baseline: the slow paradigm that OVS-Net replaces.

It needs the whole video before it can answer. With our own network and tracker:
1. forward pass over the sequence (flip test-time augmentation of every mask, as offline
   methods do) -> per-frame masks, and a whole-sequence memory per target (the mean of all its
   confidently matched embeddings);
2. backward pass from the last frame to the first, seeded with the forward masks of the last
   frame and the whole-sequence memories, so an object first missed (e.g. after an occlusion)
   is re-identified from its later appearances;
3. bi-directional merge: each target's mask probabilities are averaged over the passes that see
   it (a target seen by one pass only takes that pass's mask).
Cost: two directions x two flips = four network passes per frame, plus the merge.
"""

from __future__ import annotations

import numpy as np
import torch

from workbench.vos.model import OVSNet
from workbench.vos.online import FrameResult, OnlineSegmenter, compose, mask_targets
from workbench.vos.tracker import TrackerConfig


def _run(seg: OnlineSegmenter, frames, order: list[int], mask: np.ndarray, **seed) -> dict:
    """{frame: FrameResult} of one directional pass; also collects target memories."""
    results = {order[0]: seg.start(frames[order[0]], mask, **seed)}
    seg.memory_bank = {t.obj_id: [t.anchor] for t in seg.tracker.targets}
    for t in order[1:]:
        results[t] = seg.step(frames[t])
        for tg in seg.tracker.targets:
            if tg.present and tg.last_seen == seg.t:
                seg.memory_bank[tg.obj_id].append(tg.memory)
    return results


@torch.no_grad()
def segment_offline(model: OVSNet, frames, mask: np.ndarray, config: TrackerConfig | None = None,
                    device: torch.device | str = "cpu", flip: bool = True) -> list[np.ndarray]:
    """Label maps of every frame (frame 0 = the given mask) after forward, backward and merge."""
    T = len(frames)
    size = mask.shape
    first = np.where(mask == 255, 0, mask).astype(np.uint8)
    if T == 1:
        return [first]
    seg = OnlineSegmenter(model, config, device, flip=flip)
    fwd = _run(seg, frames, list(range(T)), mask)
    memories = {i: torch.nn.functional.normalize(torch.stack(v).mean(0), dim=0)
                for i, v in seg.memory_bank.items()}
    last = fwd[T - 1].probs(size)
    last_mask = compose(last, size)
    absent = {}
    for tg in seg.tracker.targets:
        if tg.obj_id not in mask_targets(last_mask):
            absent[tg.obj_id] = (tg.box, tg.template)
    bwd = _run(seg, frames, list(range(T - 1, -1, -1)), last_mask, memories=memories,
               absent=absent)
    out = [first]
    for t in range(1, T):
        a, b = fwd[t].probs(size), bwd[t].probs(size) if t < T - 1 else {}
        out.append(compose(merge(a, b, fwd[t].similarity, bwd[t].similarity), size))
    return out


def merge(a: dict, b: dict, sim_a: dict, sim_b: dict, margin: float = 0.05) -> dict:
    """Per target: average the two directions when re-ID trusts both about equally, else keep
    the direction whose mask looks more like the target; a target seen once keeps that mask."""
    out = {}
    for i in set(a) | set(b):
        if i in a and i in b:
            sa, sb = sim_a.get(i, 0.0), sim_b.get(i, 0.0)
            out[i] = (a[i] + b[i]) / 2 if abs(sa - sb) < margin else (a[i] if sa > sb else b[i])
        else:
            out[i] = a[i] if i in a else b[i]
    return out


__all__ = ["segment_offline", "FrameResult"]
