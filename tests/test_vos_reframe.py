"""The prior of a propagated target is redrawn in the geometry of the RoI it guides (`reframe`),
checked against cropping the full-frame mask in that RoI directly (RoI align)."""

from __future__ import annotations

import torch

from workbench.vos.data import roi_mask
from workbench.vos.online import expand, reframe


def blob(h: int = 120, w: int = 160) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    return (((yy - 60) / 18) ** 2 + ((xx - 70) / 26) ** 2 <= 1).float()


def test_identity_and_against_direct_crops():
    m, size = blob(), 32
    box = torch.tensor([[44.0, 42.0, 96.0, 78.0]])  # the blob's box
    a = expand(box)[0]                               # the template's RoI (1.15x)
    template = roi_mask(m, a, size)[None]
    assert torch.allclose(reframe(template, a[None], a[None]), template, atol=1e-5)
    for b in (expand(box, 1.4)[0], expand(box + torch.tensor([6.0, -4.0, 6.0, -4.0]), 1.4)[0]):
        direct = roi_mask(m, b, size)[None]
        got = reframe(template, a[None], b[None])
        assert got.shape == direct.shape
        assert (got - direct).abs().mean() < 0.03
        inter = ((got > 0.5) & (direct > 0.5)).sum()
        union = ((got > 0.5) | (direct > 0.5)).sum()
        assert inter / union > 0.9
        # the object is smaller in the wider RoI: fewer of its pixels than in the template
        assert (got > 0.5).sum() < 0.8 * (template > 0.5).sum()
    assert reframe(torch.zeros(0, 1, size, size), torch.zeros(0, 4), torch.zeros(0, 4)).shape == (0, 1, size, size)
