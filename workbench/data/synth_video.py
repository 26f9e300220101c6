"""Procedural multi-object videos: the synth-davis benchmark.

Each video has 2-5 annotated objects (textured blobs whose outline is a radial Fourier series)
over a panning textured background. Objects move with smooth affine motion (translation, rotation,
scale), deform non-rigidly (the Fourier phases drift), occlude each other, and some leave the frame
and come back. Distractors share an object's look and shape but are not annotated, so appearance
alone does not identify an object.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from workbench.data.synth_draw import value_noise


@dataclass
class Blob:
    label: int              # 1..K annotated, 0 distractor
    radius: float           # pixels
    harm: np.ndarray        # (n, 3): amplitude, phase, phase velocity per harmonic
    path: np.ndarray        # (T, 2): centre (y, x) per frame
    angle: np.ndarray       # (T,) rotation
    scale: np.ndarray       # (T,)
    colours: np.ndarray     # (2, 3)
    pattern: int            # 0 stripes, 1 checks, 2 spots, 3 noise
    period: float           # pattern period in pixels (object frame)


def _colour(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0.05, 0.95, 3).astype(np.float32)


def _path(rng, T: int, h: int, w: int, r: float, leave: bool) -> np.ndarray:
    t = np.arange(T, dtype=np.float64)
    start = np.array([rng.uniform(0.25, 0.75) * h, rng.uniform(0.2, 0.8) * w])
    if leave:  # out through a border at mid-sequence, back in at the end
        side = rng.integers(4)
        far = {0: (-1.6 * r, start[1]), 1: (h + 1.6 * r, start[1]),
               2: (start[0], -1.6 * r), 3: (start[0], w + 1.6 * r)}[int(side)]
        bump = np.sin(np.pi * t / max(T - 1, 1))[:, None]
        return start + bump * (np.array(far) - start)
    vel = rng.normal(0, 0.02, 2) * np.array([h, w])
    amp = rng.uniform(0.05, 0.2, 2) * np.array([h, w])
    omega, phase = rng.uniform(0.1, 0.4, 2), rng.uniform(0, 2 * np.pi, 2)
    return start + vel * t[:, None] + amp * (np.sin(omega * t[:, None] + phase) - np.sin(phase))


def make_blobs(rng, T: int, h: int, w: int) -> list[Blob]:
    K = int(rng.integers(2, 6))
    blobs = []
    for k in range(K):
        r = rng.uniform(0.08, 0.18) * min(h, w)
        n = int(rng.integers(2, 6))
        harm = np.stack([rng.uniform(0.0, 0.25, n) / np.arange(1, n + 1) ** 0.5,
                         rng.uniform(0, 2 * np.pi, n), rng.normal(0, 0.15, n)], axis=1)
        leave = k > 0 and rng.random() < 0.35
        blobs.append(Blob(k + 1, r, harm, _path(rng, T, h, w, r, leave),
                          rng.uniform(0, 2 * np.pi) + rng.normal(0, 0.08) * np.arange(T),
                          1 + rng.uniform(0, 0.25) * np.sin(rng.uniform(0.1, 0.4) * np.arange(T)),
                          np.stack([_colour(rng), _colour(rng)]), int(rng.integers(4)),
                          rng.uniform(0.15, 0.5) * r))
    for _ in range(int(rng.integers(1, 3))):  # distractors: a copy of an object's look, own motion
        src = blobs[int(rng.integers(K))]
        r = src.radius * rng.uniform(0.7, 1.1)
        blobs.append(Blob(0, r, src.harm * rng.uniform(0.8, 1.2), _path(rng, T, h, w, r, rng.random() < 0.3),
                          rng.uniform(0, 2 * np.pi) + rng.normal(0, 0.08) * np.arange(T),
                          1 + rng.uniform(0, 0.25) * np.sin(rng.uniform(0.1, 0.4) * np.arange(T)),
                          src.colours * rng.uniform(0.9, 1.1), src.pattern, src.period))
    order = rng.permutation(len(blobs))   # back to front
    return [blobs[i] for i in order]


def _draw_blob(b: Blob, t: int, image: np.ndarray, label: np.ndarray) -> None:
    h, w = label.shape
    cy, cx = b.path[t]
    R = b.radius * b.scale[t] * (1 + np.abs(b.harm[:, 0]).sum())
    r0, r1 = max(0, int(cy - R)), min(h, int(np.ceil(cy + R)) + 1)
    c0, c1 = max(0, int(cx - R)), min(w, int(np.ceil(cx + R)) + 1)
    if r0 >= r1 or c0 >= c1:
        return
    dy = (np.arange(r0, r1) + 0.5 - cy)[:, None]
    dx = (np.arange(c0, c1) + 0.5 - cx)[None, :]
    ca, sa = np.cos(b.angle[t]), np.sin(b.angle[t])
    u, v = (ca * dx + sa * dy) / b.scale[t], (-sa * dx + ca * dy) / b.scale[t]
    theta, dist = np.arctan2(v, u), np.hypot(u, v)
    k = np.arange(1, len(b.harm) + 1)[:, None, None]
    amp, ph, vel = (b.harm[:, i][:, None, None] for i in range(3))
    outline = b.radius * (1 + (amp * np.cos(k * theta[None] + ph + vel * t)).sum(0))
    m = dist <= outline
    if not m.any():
        return
    p = b.period
    if b.pattern == 0:
        mix = 0.5 + 0.5 * np.sin(2 * np.pi * u / p)
    elif b.pattern == 1:
        mix = ((np.floor(u / p) + np.floor(v / p)) % 2).astype(np.float32)
    elif b.pattern == 2:
        mix = (np.cos(2 * np.pi * u / p) * np.cos(2 * np.pi * v / p) > 0.5).astype(np.float32)
    else:
        mix = 0.5 + 0.5 * np.sin(u / p * 3.1 + np.sin(v / p * 2.3) * 2.0)
    shade = 1.15 - 0.45 * np.clip(dist / np.maximum(outline, 1e-6), 0, 1) ** 2   # looks round
    col = (b.colours[0] * (1 - mix)[..., None] + b.colours[1] * mix[..., None]) * shade[..., None]
    image[r0:r1, c0:c1][m] = col[m]
    label[r0:r1, c0:c1][m] = b.label


def render_video(rng: np.random.Generator, T: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """(frames uint8 [T,H,W,3], masks uint8 [T,H,W]); every annotated object is visible in frame 0."""
    for _ in range(20):
        blobs = make_blobs(rng, T, h, w)
        first = np.zeros((h, w), np.uint8)
        for b in blobs:
            _draw_blob(b, 0, np.zeros((h, w, 3), np.float32), first)
        K = max(b.label for b in blobs)
        if all((first == k).sum() >= max(16, h * w // 2000) for k in range(1, K + 1)):
            break
    # a background wider than the frame, panned by the camera
    mh, mw = h // 4, w // 4
    H, W = h + 2 * mh, w + 2 * mw
    cols = [_colour(rng) for _ in range(3)]
    n1, n2 = value_noise(rng, H, W, min(h, w) / 6), value_noise(rng, H, W, min(h, w) / 25)
    bg = cols[0] * n1[..., None] + cols[1] * (1 - n1[..., None]) + 0.3 * (n2[..., None] - 0.5) * cols[2]
    pan = np.linspace(rng.uniform(0, 1, 2), rng.uniform(0, 1, 2), T) * np.array([2 * mh, 2 * mw])
    light = 1 + 0.15 * np.sin(rng.uniform(0.05, 0.3) * np.arange(T) + rng.uniform(0, 6))
    frames = np.empty((T, h, w, 3), np.uint8)
    masks = np.zeros((T, h, w), np.uint8)
    for t in range(T):
        oy, ox = pan[t].astype(int)
        img = bg[oy:oy + h, ox:ox + w].copy()
        for b in blobs:
            _draw_blob(b, t, img, masks[t])
        img = gaussian_filter(img * light[t], sigma=(0.6, 0.6, 0))
        img += rng.normal(0, 0.015, img.shape).astype(np.float32)
        frames[t] = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
    return frames, masks
