"""Tracking rules on hand-made sequences: proposals and embeddings are given, not learned."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from workbench.vos.tracker import Proposals, Tracker, TrackerConfig

S = 8
RED, BLUE, GREEN = (F.normalize(torch.tensor(v), dim=0) for v in
                    ([1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]))


def box(cx: float, cy: float, size: float = 40.0) -> torch.Tensor:
    return torch.tensor([cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2])


def run(tracker: Tracker, frames: list[list[tuple[str, torch.Tensor, torch.Tensor]]]
        ) -> list[dict[int, str]]:
    """Feed frames of (true name, box, embedding) proposals; return per frame {target id: name}."""
    seen = []
    for t, props in enumerate(frames, start=1):
        names = [p[0] for p in props]
        p = Proposals(torch.stack([b for _, b, _ in props]) if props else torch.zeros(0, 4),
                      torch.ones(len(props)),
                      torch.stack([e for _, _, e in props]) if props else torch.zeros(0, 3),
                      torch.ones(len(props), S, S))
        matches = tracker.associate(p, t)
        for k, j in matches.items():
            tracker.update(k, p.boxes[j], p.embeddings[j], torch.ones(S, S), 1.0, t)
        tracker.mark_absent(set(matches))
        seen.append({tracker.targets[k].obj_id: names[j] for k, j in matches.items()})
    return seen


def start(targets: list[tuple[int, torch.Tensor, torch.Tensor]]) -> Tracker:
    tr = Tracker(TrackerConfig(), image_size=(480, 854))
    tr.init([i for i, _, _ in targets], torch.stack([b for _, b, _ in targets]),
            torch.stack([e for _, _, e in targets]), torch.ones(len(targets), S, S))
    return tr


def test_occluded_target_is_absent_then_reacquired():
    tr = start([(1, box(100, 200), RED)])
    frames = []
    for t in range(1, 20):
        x = 100 + 8 * t
        props = [("other", box(600, 100), BLUE)]
        if not 6 <= t <= 11:                       # hidden for six frames
            props.append(("target", box(x, 200), RED))
        frames.append(props)
    seen = run(tr, frames)
    for t, s in enumerate(seen, start=1):
        assert s == ({} if 6 <= t <= 11 else {1: "target"}), t
    assert tr.targets[0].present


def test_identical_objects_crossing_keep_identities():
    tr = start([(1, box(100, 200), RED), (2, box(500, 215), RED)])
    frames = []
    for t in range(1, 25):
        frames.append([("a", box(100 + 20 * t, 200), RED), ("b", box(500 - 20 * t, 215), RED)])
    seen = run(tr, frames)
    assert all(s == {1: "a", 2: "b"} for s in seen), seen


def test_late_object_is_ignored_even_if_it_looks_alike():
    tr = start([(1, box(100, 200), RED)])
    frames = []
    for t in range(1, 16):
        props = [("target", box(100 + 5 * t, 200), RED)]
        if t >= 5:
            props.append(("newcomer", box(700 - 5 * t, 300), GREEN))
        if t >= 8:
            props.append(("twin", box(400, 400), RED))
        frames.append(props)
    seen = run(tr, frames)
    assert all(s == {1: "target"} for s in seen), seen


def test_absent_target_not_reassigned_to_visible_lookalike():
    """The target leaves the frame while a look-alike it coexisted with stays visible."""
    tr = start([(1, box(100, 200), RED)])
    frames = []
    for t in range(1, 30):
        props = [("twin", box(600 + 2 * t, 300), RED)]
        if t < 6:
            props.append(("target", box(100 - 15 * t, 200), RED))
        elif t >= 20:                               # comes back where it left
            props.append(("target", box(30 + 4 * (t - 20), 200), RED))
        frames.append(props)
    seen = run(tr, frames)
    for t, s in enumerate(seen, start=1):
        expect = {1: "target"} if (t < 6 or t >= 20) else {}
        assert s == expect, (t, s)
