"""Tracking rules on hand-made sequences: proposals and embeddings are given, not learned."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.ops import box_iou

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


def _occluded(hidden: range, frames: int) -> list:
    out = []
    for t in range(1, frames + 1):
        props = [("other", box(700, 80), BLUE)]
        if t not in hidden:
            props.append(("target", box(100 + 6 * t, 240), RED))
        out.append(props)
    return out


def test_occlusions_of_1_5_and_20_frames_are_reacquired():
    for length in (1, 5, 20):
        hidden = range(4, 4 + length)
        seen = run(start([(1, box(100, 240), RED)]), _occluded(hidden, 4 + length + 6))
        for t, s in enumerate(seen, start=1):
            assert s == ({} if t in hidden else {1: "target"}), (length, t, s)


def test_target_leaving_the_frame_comes_back_elsewhere():
    """Out of frame for 10 frames, back on the far side: re-acquired by re-ID alone."""
    tr = start([(1, box(700, 240), RED)])
    frames = []
    for t in range(1, 26):
        props = [("other", box(400, 60), BLUE)]
        if t <= 5:
            props.append(("target", box(700 + 25 * t, 240), RED))  # walks out on the right
        elif t > 15:
            props.append(("target", box(60 + 10 * (t - 15), 300), RED))  # re-enters on the left
        frames.append(props)
    seen = run(tr, frames)
    for t, s in enumerate(seen, start=1):
        assert s == ({1: "target"} if t <= 5 or t > 15 else {}), (t, s)


def test_two_lookalikes_crossing_each_other_keep_their_ids():
    """Two identical-looking targets cross on the same row (full overlap at the crossing)."""
    tr = start([(1, box(200, 240), RED), (2, box(600, 240), RED)])
    frames = [[("a", box(200 + 20 * t, 240), RED), ("b", box(600 - 20 * t, 240), RED)] for t in range(1, 21)]
    seen = run(tr, frames)
    assert all(s == {1: "a", 2: "b"} for t, s in enumerate(seen, start=1) if t != 10), seen


def test_duplicate_detection_does_not_become_a_permanent_distractor():
    """A partial duplicate of the target (IoU ~0.45, it survives NMS) must not become a non-target
    track that later forbids the target: after a one-frame occlusion the target comes back."""
    tr = start([(1, box(100, 240), RED)])
    frames = []
    for t in range(1, 12):
        x = 100 + 6 * t
        props = [("other", box(700, 80), BLUE)]
        if t != 3:
            props.append(("target", box(x, 240), RED))
        if t == 2:  # the duplicate: same object, box shifted by a third of its size
            dup = box(x + 14, 240)
            assert 0.4 < float(box_iou(dup[None], box(x, 240)[None])) < 0.5
            props.append(("duplicate", dup, F.normalize(RED + 0.2 * BLUE, dim=0)))
        frames.append(props)
    seen = run(tr, frames)
    for t, s in enumerate(seen, start=1):
        assert s == ({} if t == 3 else {1: "target"}), (t, s)
