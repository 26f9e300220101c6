"""Vectorised drawing primitives shared by the synthetic generators.

A shape is evaluated on a grid of metric coordinates (A, V) that covers one sprite's bounding box,
so a scene is a few dozen small numpy operations rather than a per-pixel loop. Parts are painted in
order (painter's algorithm) into a label map and a float RGB image at the same time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass
class Part:
    """One primitive of a sprite. `label` None darkens the image only (a cast shadow)."""

    shape: str            # rect | ellipse | ring | seg | poly
    params: tuple
    label: int | None
    colour: np.ndarray    # (3,) float in [0, 1]
    texture: int = 0      # index into the canvas noise fields
    amp: float = 0.25     # texture contrast


def shape_mask(shape: str, p: tuple, A: np.ndarray, V: np.ndarray) -> np.ndarray:
    """Boolean mask of a primitive on broadcastable coordinate arrays A (across) and V (up)."""
    if shape == "rect":
        a0, a1, v0, v1 = p
        return (A >= a0) & (A < a1) & (V >= v0) & (V < v1)
    if shape == "ellipse":
        ca, cv, ra, rv = p
        return ((A - ca) / ra) ** 2 + ((V - cv) / rv) ** 2 <= 1.0
    if shape == "ring":
        ca, cv, r_out, r_in = p
        d2 = (A - ca) ** 2 + (V - cv) ** 2
        return (d2 <= r_out ** 2) & (d2 >= r_in ** 2)
    if shape == "seg":
        a0, v0, a1, v1, half = p
        da, dv = a1 - a0, v1 - v0
        t = np.clip(((A - a0) * da + (V - v0) * dv) / (da * da + dv * dv + 1e-12), 0.0, 1.0)
        return (A - a0 - t * da) ** 2 + (V - v0 - t * dv) ** 2 <= half * half
    if shape == "poly":  # convex polygon, vertices in either orientation
        pts = np.asarray(p, dtype=np.float64)
        inside_pos = inside_neg = None
        for i in range(len(pts)):
            (a0, v0), (a1, v1) = pts[i], pts[(i + 1) % len(pts)]
            cross = (a1 - a0) * (V - v0) - (v1 - v0) * (A - a0)
            pos, neg = cross >= 0, cross <= 0
            inside_pos = pos if inside_pos is None else inside_pos & pos
            inside_neg = neg if inside_neg is None else inside_neg & neg
        return inside_pos | inside_neg
    raise ValueError(f"unknown shape {shape!r}")


def value_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Smooth noise in [0, 1] with feature size `cell` pixels (bilinear upsampling of a random grid)."""
    gh, gw = max(2, int(h / cell) + 2), max(2, int(w / cell) + 2)
    grid = rng.random((gh, gw), dtype=np.float32)
    return np.asarray(Image.fromarray(grid, mode="F").resize((w, h), Image.BILINEAR), dtype=np.float32)


class Canvas:
    """A label map, an RGB float image and a few noise fields used as textures."""

    def __init__(self, rng: np.random.Generator, h: int, w: int, fill_label: int = 0):
        self.h, self.w = h, w
        self.label = np.full((h, w), fill_label, dtype=np.uint8)
        self.image = np.zeros((h, w, 3), dtype=np.float32)
        scale = max(h, w) / 512.0
        fine = rng.random((h, w), dtype=np.float32)
        self.noise = [
            np.full((h, w), 0.5, dtype=np.float32),                                     # 0 flat
            fine,                                                                       # 1 grain
            0.5 * value_noise(rng, h, w, 3 * scale) + 0.5 * fine,                      # 2 rough
            value_noise(rng, h, w, 24 * scale),                                         # 3 blotchy
            0.6 * value_noise(rng, h, w, 6 * scale) + 0.4 * value_noise(rng, h, w, 2 * scale),  # 4 leaves
        ]

    def paint(self, rows: slice, cols: slice, A: np.ndarray, V: np.ndarray, parts: list[Part]) -> None:
        """Paint `parts` in order inside the window (rows, cols) whose coordinates are A, V."""
        lab = self.label[rows, cols]
        img = self.image[rows, cols]
        shape = lab.shape
        for part in parts:
            m = np.broadcast_to(shape_mask(part.shape, part.params, A, V), shape)
            if not m.any():
                continue
            if part.label is None:
                img[m] *= part.colour
                continue
            lab[m] = part.label
            tex = self.noise[part.texture][rows, cols][m]
            img[m] = part.colour[None, :] * (1.0 + part.amp * (tex[:, None] - 0.5))


def window(lo: float, hi: float, size: int) -> tuple[int, int]:
    """Integer pixel range [i0, i1) covering [lo, hi), clipped to the image."""
    return max(0, int(np.floor(lo))), min(size, int(np.ceil(hi)))
