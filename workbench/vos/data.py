"""Training clips from a DAVIS-format split: two frames of one video, same crop and flip."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.ops import masks_to_boxes, roi_align

from workbench.errors import DataError


def load_split(root, split: str, resolution: str = "480p", scale: float = 1.0, dataset: str = "davis") -> list:
    """All sequences of a split (DAVIS or YouTube-VOS layout, or clips made from still images:
    `static`) that have at least two annotated frames, resized by `scale` (the network's input
    scale) once, up front."""
    if dataset == "youtube-vos":
        from workbench.data.youtube_vos import load_split as load_youtube

        seqs = load_youtube(root, split)
    elif dataset == "static":  # still images with instance masks, warped into clips
        from workbench.vos.static_clips import load_static

        seqs = load_static(root)
    else:
        from workbench.data.davis import list_sequences, load_sequence

        seqs = [load_sequence(root, name, resolution) for name in list_sequences(root, split)]
    seqs = [rescale(s, scale) for s in seqs if len(s.masks) >= 2]
    if not seqs:
        raise DataError(root, f"split {split!r} has no sequence with two annotated frames "
                              "(training needs annotations beyond the first frame)")
    return seqs


def resize_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 [T, H, W, 3] -> uint8 [T, h, w, 3], antialiased bilinear; training and inference
    share it so the network always sees the same resampling."""
    frames = np.ascontiguousarray(frames)
    if not frames.flags.writeable:  # a decoded image viewed read-only; torch wants writable memory
        frames = frames.copy()
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def rescale(seq, scale: float):
    """Frames (antialiased bilinear) and masks (nearest) resized by `scale`, in place."""
    if scale == 1.0:
        return seq
    h, w = seq.frames.shape[1:3]
    size = (max(int(round(h * scale)), 16), max(int(round(w * scale)), 16))
    seq.frames = resize_frames(seq.frames, size)
    seq.masks = {i: F.interpolate(torch.from_numpy(m.copy())[None, None].float(), size=size,
                                  mode="nearest")[0, 0].to(torch.uint8).numpy()
                 for i, m in seq.masks.items()}
    return seq


def _crop_origin(mask: np.ndarray, crop: tuple[int, int], g: torch.Generator) -> tuple[int, int]:
    """A crop that holds a random object (mostly) or lies anywhere."""
    h, w = mask.shape
    ch, cw = min(crop[0], h), min(crop[1], w)
    ys, xs = np.nonzero((mask > 0) & (mask < 255))
    if len(ys) and torch.rand(1, generator=g).item() < 0.8:
        j = int(torch.randint(len(ys), (1,), generator=g))
        jy, jx = (torch.rand(2, generator=g) - 0.5).tolist()
        y0 = int(ys[j] - ch / 2 + jy * ch * 0.5)
        x0 = int(xs[j] - cw / 2 + jx * cw * 0.5)
    else:
        y0 = int(torch.randint(h - ch + 1, (1,), generator=g))
        x0 = int(torch.randint(w - cw + 1, (1,), generator=g))
    return min(max(y0, 0), h - ch), min(max(x0, 0), w - cw)


def sample_clip(seq, crop: tuple[int, int], max_gap: int, g: torch.Generator) -> dict:
    """{'frames' uint8 [2, h, w, 3], 'masks' uint8 [2, h, w]} of two annotated frames."""
    idx = sorted(seq.masks)
    i = int(torch.randint(len(idx) - 1, (1,), generator=g))
    gap = int(torch.randint(1, max_gap + 1, (1,), generator=g))
    t0, t1 = idx[i], idx[min(i + gap, len(idx) - 1)]
    if torch.rand(1, generator=g).item() < 0.5:
        t0, t1 = t1, t0  # time runs both ways in training
    m0, m1 = seq.masks[t0], seq.masks[t1]
    y0, x0 = _crop_origin(m1, crop, g)
    ch, cw = min(crop[0], m1.shape[0]), min(crop[1], m1.shape[1])
    sl = (slice(y0, y0 + ch), slice(x0, x0 + cw))
    frames = np.stack([seq.frames[t0][sl], seq.frames[t1][sl]])
    masks = np.stack([m0[sl], m1[sl]])
    if torch.rand(1, generator=g).item() < 0.5:
        frames, masks = frames[:, :, ::-1], masks[:, :, ::-1]
    return {"frames": np.ascontiguousarray(frames), "masks": np.ascontiguousarray(masks)}


def objects_of(mask: torch.Tensor, min_area: int = 16) -> tuple[list[int], torch.Tensor, torch.Tensor]:
    """Visible object ids, their binary masks [N, h, w] and tight boxes [N, 4]."""
    ids = [int(i) for i in torch.unique(mask) if 0 < int(i) < 255]
    ms = [(mask == i) for i in ids]
    keep = [j for j, m in enumerate(ms) if int(m.sum()) >= min_area]
    ids = [ids[j] for j in keep]
    if not ids:
        return [], torch.zeros(0, *mask.shape), torch.zeros(0, 4)
    full = torch.stack([ms[j] for j in keep]).float()
    return ids, full, mask_boxes(full)


def mask_boxes(masks: torch.Tensor) -> torch.Tensor:
    """[N, h, w] non-empty masks -> [N, 4] boxes with exclusive right/bottom edges."""
    boxes = masks_to_boxes(masks > 0.5).float()
    boxes[:, 2:] += 1
    return boxes


def jitter(boxes: torch.Tensor, amount: float, g: torch.Generator) -> torch.Tensor:
    wh = (boxes[:, 2:] - boxes[:, :2]).repeat(1, 2)
    return boxes + (torch.rand(boxes.shape, generator=g) * 2 - 1) * amount * wh


def perturb_prior(prior: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random dilation / erosion of a mask prior, so the head does not copy it blindly."""
    r = float(torch.rand(1, generator=g))
    if r < 0.2:
        return F.max_pool2d(prior, 5, 1, 2)
    if r < 0.4:
        return -F.max_pool2d(-prior, 5, 1, 2)
    return prior


def roi_mask(mask: torch.Tensor, box: torch.Tensor, size: int) -> torch.Tensor:
    """An [h, w] mask resampled inside `box` (RoI align) -> [1, size, size]."""
    roi = torch.cat([torch.zeros(1, dtype=mask.dtype), box.to(mask.dtype)])[None]
    return roi_align(mask[None, None], roi, size, 1.0, 2, aligned=True)[0]
