"""Street objects as lists of primitives in metric coordinates (metres across, metres up).

Frontal sprites (`A` across, 0 = the object's centre line) are drawn as billboards at a depth;
side sprites (`A` along the road from the object's near end) are drawn on a plane parallel to the
road. Labels are Cityscapes labelIds. Colours come from the scene's shared palette, so the class
of an object is given by its shape and size, not by its colour.
"""

from __future__ import annotations

import numpy as np

from workbench.data.synth_draw import Part

# Cityscapes labelIds
UNLABELED, EGO, STATIC, DYNAMIC, GROUND, ROAD, SIDEWALK, PARKING, RAIL = 0, 1, 4, 5, 6, 7, 8, 9, 10
BUILDING, WALL, FENCE, GUARD_RAIL, POLE = 11, 12, 13, 14, 17
LIGHT, SIGN, VEGETATION, TERRAIN, SKY = 19, 20, 21, 22, 23
PERSON, RIDER, CAR, TRUCK, BUS, TRAIN, MOTORCYCLE, BICYCLE = 24, 25, 26, 27, 28, 31, 32, 33

Extent = tuple[float, float, float, float]  # a0, a1, v0, v1


def _c(*rgb: float) -> np.ndarray:
    return np.clip(np.array(rgb, dtype=np.float32), 0.0, 1.0)


def _dark(rng: np.random.Generator) -> np.ndarray:
    v = rng.uniform(0.05, 0.22)
    return _c(v, v, v * rng.uniform(0.9, 1.25))


def _glass(rng: np.random.Generator, body: np.ndarray) -> np.ndarray:
    return np.clip(0.25 * body + _dark(rng) + rng.uniform(0.0, 0.12), 0, 1).astype(np.float32)


def _mirror(parts: list[Part]) -> list[Part]:
    """Flip a frontal sprite left-right."""
    out = []
    for p in parts:
        q = p.params
        if p.shape == "rect":
            q = (-q[1], -q[0], q[2], q[3])
        elif p.shape in ("ellipse", "ring"):
            q = (-q[0],) + tuple(q[1:])
        elif p.shape == "seg":
            q = (-q[0], q[1], -q[2], q[3], q[4])
        elif p.shape == "poly":
            q = tuple((-a, v) for a, v in q)
        out.append(Part(p.shape, q, p.label, p.colour, p.texture, p.amp))
    return out


def shadow(width: float, depth: float = 0.25) -> Part:
    return Part("ellipse", (0.0, 0.0, width, depth), None, _c(0.55, 0.55, 0.6))


# ---------------------------------------------------------------- vehicles, rear/front view
def car_rear(rng, body, front: bool) -> tuple[list[Part], Extent]:
    w, h = rng.uniform(1.65, 1.9) / 2, rng.uniform(1.35, 1.6)
    lamp = _c(0.95, 0.95, 0.85) if front else _c(0.75, 0.08, 0.05)
    tyre, glass = _dark(rng), _glass(rng, body)
    parts = [shadow(w * 1.3),
             Part("rect", (-w + 0.02, -w + 0.3, 0.0, 0.42), CAR, tyre),
             Part("rect", (w - 0.3, w - 0.02, 0.0, 0.42), CAR, tyre),
             Part("rect", (-w, w, 0.28, 0.98), CAR, body, 3, 0.3),
             Part("poly", ((-w + 0.07, 0.97), (-w + 0.27, h), (w - 0.27, h), (w - 0.07, 0.97)), CAR, body, 3),
             Part("poly", ((-w + 0.2, 1.0), (-w + 0.33, h - 0.07), (w - 0.33, h - 0.07), (w - 0.2, 1.0)),
                  CAR, glass, 3, 0.5),
             Part("rect", (-w + 0.05, -w + 0.33, 0.7, 0.86), CAR, lamp),
             Part("rect", (w - 0.33, w - 0.05, 0.7, 0.86), CAR, lamp),
             Part("rect", (-w, w, 0.28, 0.42), CAR, body * 0.6),
             Part("rect", (-0.26, 0.26, 0.45, 0.57), CAR, _c(0.85, 0.85, 0.8))]
    return parts, (-w, w, -0.3, h)


def truck_rear(rng, body, front: bool) -> tuple[list[Part], Extent]:
    w, h = rng.uniform(2.25, 2.55) / 2, rng.uniform(3.0, 3.9)
    tyre = _dark(rng)
    parts = [shadow(w * 1.3),
             Part("rect", (-w, -w + 0.5, 0.0, 0.95), TRUCK, tyre),
             Part("rect", (w - 0.5, w, 0.0, 0.95), TRUCK, tyre),
             Part("rect", (-w + 0.3, w - 0.3, 0.45, 1.0), TRUCK, _dark(rng))]
    if front:  # cab with a big windscreen
        parts += [Part("rect", (-w, w, 0.9, h * 0.85), TRUCK, body, 3),
                  Part("rect", (-w + 0.15, w - 0.15, h * 0.5, h * 0.8), TRUCK, _glass(rng, body), 3, 0.5),
                  Part("rect", (-w + 0.1, -w + 0.4, 1.0, 1.2), TRUCK, _c(0.95, 0.95, 0.85)),
                  Part("rect", (w - 0.4, w - 0.1, 1.0, 1.2), TRUCK, _c(0.95, 0.95, 0.85))]
    else:      # box with doors and ribs
        parts += [Part("rect", (-w, w, 0.95, h), TRUCK, body, 3, 0.35),
                  Part("seg", (0.0, 1.0, 0.0, h - 0.05, 0.025), TRUCK, body * 0.6),
                  Part("rect", (-w, w, 0.95, 1.1), TRUCK, body * 0.7),
                  Part("rect", (-w + 0.05, -w + 0.3, 0.55, 0.7), TRUCK, _c(0.8, 0.1, 0.05)),
                  Part("rect", (w - 0.3, w - 0.05, 0.55, 0.7), TRUCK, _c(0.8, 0.1, 0.05))]
    return parts, (-w, w, -0.3, h)


def bus_rear(rng, body, front: bool) -> tuple[list[Part], Extent]:
    w, h = 1.27, rng.uniform(2.9, 3.3)
    tyre = _dark(rng)
    win_lo = 1.2 if front else 1.9
    parts = [shadow(w * 1.3),
             Part("rect", (-w + 0.05, -w + 0.4, 0.0, 0.55), BUS, tyre),
             Part("rect", (w - 0.4, w - 0.05, 0.0, 0.55), BUS, tyre),
             Part("rect", (-w, w, 0.3, h - 0.2), BUS, body, 3, 0.3),
             Part("ellipse", (0.0, h - 0.25, w, 0.25), BUS, body, 3, 0.3),
             Part("rect", (-w + 0.12, w - 0.12, win_lo, h - 0.4), BUS, _glass(rng, body), 3, 0.5),
             Part("rect", (-0.7, 0.7, h - 0.38, h - 0.17), BUS, _c(0.95, 0.6, 0.1) * rng.uniform(0.6, 1.0)),
             Part("rect", (-w + 0.08, -w + 0.35, 0.55, 0.8), BUS, _c(0.9, 0.85, 0.7)),
             Part("rect", (w - 0.35, w - 0.08, 0.55, 0.8), BUS, _c(0.9, 0.85, 0.7))]
    return parts, (-w, w, -0.3, h)


# ---------------------------------------------------------------- vehicles, side view
def _wheel(a: float, r: float, label: int, tyre, hub) -> list[Part]:
    return [Part("ellipse", (a, r, r, r), label, tyre), Part("ellipse", (a, r, r * 0.45, r * 0.45), label, hub)]


def car_side(rng, body) -> tuple[list[Part], Extent]:
    L, h = rng.uniform(3.8, 4.9), rng.uniform(1.35, 1.6)
    glass, tyre, hub = _glass(rng, body), _dark(rng), _c(0.55, 0.55, 0.58)
    parts = [Part("rect", (0.0, L, 0.28, 0.95), CAR, body, 3, 0.3),
             Part("poly", ((0.1 * L, 0.94), (0.3 * L, h), (0.72 * L, h), (0.9 * L, 0.94)), CAR, body, 3),
             Part("poly", ((0.16 * L, 0.97), (0.32 * L, h - 0.07), (0.7 * L, h - 0.07), (0.84 * L, 0.97)),
                  CAR, glass, 3, 0.5),
             Part("seg", (0.52 * L, 0.97, 0.52 * L, h - 0.05, 0.04), CAR, body),
             Part("seg", (0.05 * L, 0.55, 0.95 * L, 0.55, 0.012), CAR, body * 0.6)]
    parts += _wheel(0.19 * L, 0.33, CAR, tyre, hub) + _wheel(0.81 * L, 0.33, CAR, tyre, hub)
    return parts, (0.0, L, 0.0, h)


def truck_side(rng, body) -> tuple[list[Part], Extent]:
    L, h = rng.uniform(6.5, 9.5), rng.uniform(3.2, 3.9)
    tyre, hub = _dark(rng), _c(0.5, 0.5, 0.5)
    cab = body if rng.random() < 0.5 else np.clip(body[::-1] + 0.1, 0, 1)
    parts = [Part("rect", (0.0, L, 0.5, 1.0), TRUCK, _dark(rng)),
             Part("rect", (0.0, 2.2, 0.5, 3.0), TRUCK, cab, 3),
             Part("rect", (0.25, 1.7, 1.9, 2.75), TRUCK, _glass(rng, cab), 3, 0.5),
             Part("rect", (2.45, L, 0.95, h), TRUCK, body, 3, 0.35)]
    for a in (1.2, L - 2.7, L - 1.5):
        parts += _wheel(a, 0.5, TRUCK, tyre, hub)
    return parts, (0.0, L, 0.0, h)


def bus_side(rng, body) -> tuple[list[Part], Extent]:
    L, h = rng.uniform(10.5, 12.5), rng.uniform(2.9, 3.25)
    tyre, hub, glass = _dark(rng), _c(0.5, 0.5, 0.5), _glass(rng, body)
    parts = [Part("rect", (0.0, L, 0.3, h), BUS, body, 3, 0.3),
             Part("rect", (0.25, L - 0.25, 1.45, h - 0.35), BUS, glass, 3, 0.5)]
    pitch = rng.uniform(1.2, 1.6)
    for a in np.arange(0.25 + pitch, L - 0.3, pitch):
        parts.append(Part("seg", (a, 1.45, a, h - 0.35, 0.06), BUS, body))
    for a in (1.0, L * 0.5):
        parts.append(Part("rect", (a, a + 1.1, 0.35, h - 0.4), BUS, glass * 0.8, 3, 0.5))
    parts += _wheel(2.5, 0.5, BUS, tyre, hub) + _wheel(L - 3.0, 0.5, BUS, tyre, hub)
    return parts, (0.0, L, 0.0, h)


def train_side(rng, body) -> tuple[list[Part], Extent]:
    L, h = rng.uniform(18.0, 30.0), rng.uniform(3.3, 3.6)
    glass = _glass(rng, body)
    parts = [Part("rect", (0.0, L, 0.45, h), TRAIN, body, 3, 0.3),
             Part("rect", (0.0, L, 0.45, 0.8), TRAIN, _dark(rng)),
             Part("rect", (0.4, L - 0.4, 1.5, 2.6), TRAIN, glass, 3, 0.5),
             Part("seg", (L * 0.3, h, L * 0.4, h + 1.2, 0.05), TRAIN, _dark(rng)),
             Part("seg", (L * 0.5, h, L * 0.4, h + 1.2, 0.05), TRAIN, _dark(rng)),
             Part("seg", (L * 0.3, h + 1.2, L * 0.5, h + 1.2, 0.05), TRAIN, _dark(rng))]
    pitch = rng.uniform(1.8, 2.6)
    for a in np.arange(0.4 + pitch, L - 0.4, pitch):
        parts.append(Part("seg", (a, 1.5, a, 2.6, 0.08), TRAIN, body))
    return parts, (0.0, L, 0.0, h + 1.25)


# ---------------------------------------------------------------- people and two-wheelers
def person(rng, clothes, skin, label: int = PERSON, h: float | None = None) -> tuple[list[Part], Extent]:
    h = h or rng.uniform(1.5, 1.95)
    step, swing = rng.uniform(-0.25, 0.25), rng.uniform(-0.15, 0.15)
    top, trousers = clothes
    hip, shoulder = 0.52 * h, 0.81 * h
    parts = [shadow(0.35, 0.12),
             Part("seg", (-0.09, hip, -0.09 + step, 0.05, 0.075), label, trousers, 2),
             Part("seg", (0.09, hip, 0.09 - step, 0.05, 0.075), label, trousers, 2),
             Part("poly", ((-0.21, hip - 0.03), (-0.23, shoulder), (0.23, shoulder), (0.21, hip - 0.03)),
                  label, top, 2),
             Part("seg", (-0.25, shoulder - 0.03, -0.29 + swing, hip, 0.05), label, top, 2),
             Part("seg", (0.25, shoulder - 0.03, 0.29 - swing, hip, 0.05), label, top, 2),
             Part("ellipse", (0.0, h - 0.12, 0.095, 0.12), label, skin, 1, 0.1),
             Part("ellipse", (0.0, h - 0.05, 0.1, 0.06), label, _dark(rng) + rng.uniform(0, 0.3), 1)]
    if rng.random() < 0.3:  # a bag
        parts.append(Part("rect", (0.24, 0.42, hip - 0.1, hip + 0.2), label, clothes[0][::-1], 2))
    return parts, (-0.45, 0.45, -0.15, h)


def _rider_on(rng, clothes, skin, seat: tuple[float, float], bar: tuple[float, float],
              foot: tuple[float, float], helmet: bool) -> list[Part]:
    (sa, sv), (ba, bv), (fa, fv) = seat, bar, foot
    top, trousers = clothes
    sh_a, sh_v = sa + 0.25, sv + 0.6
    parts = [Part("seg", (sa, sv, fa, fv, 0.08), RIDER, trousers, 2),
             Part("seg", (sa, sv, sh_a, sh_v, 0.15), RIDER, top, 2),
             Part("seg", (sh_a, sh_v, ba, bv, 0.05), RIDER, top, 2),
             Part("ellipse", (sh_a + 0.05, sh_v + 0.2, 0.11, 0.13), RIDER, skin, 1, 0.1)]
    if helmet:
        parts.append(Part("ellipse", (sh_a + 0.05, sh_v + 0.25, 0.14, 0.12), RIDER, clothes[1][::-1], 1))
    return parts


def bicycle(rng, frame, clothes=None, skin=None) -> tuple[list[Part], Extent]:
    r, tyre = 0.34, _dark(rng)
    parts = [shadow(0.8, 0.1),
             Part("ring", (-0.55, r, r, r - 0.045), BICYCLE, tyre),
             Part("ring", (0.55, r, r, r - 0.045), BICYCLE, tyre)]
    for seg in ((-0.55, r, 0.0, r), (0.0, r, 0.12, 0.78), (0.12, 0.78, -0.3, 0.75), (-0.3, 0.75, -0.55, r),
                (-0.3, 0.75, 0.0, r), (0.55, r, 0.45, 0.9), (0.45, 0.9, 0.38, 0.92),
                (-0.32, 0.8, -0.2, 0.8)):
        parts.append(Part("seg", seg + (0.025,), BICYCLE, frame))
    top = 0.95
    if clothes is not None:
        parts += _rider_on(rng, clothes, skin, (-0.28, 0.85), (0.4, 0.92), (0.02, 0.3),
                           rng.random() < 0.4)
        top = 1.95
    return parts, (-0.92, 0.92, -0.1, top)


def motorcycle(rng, body, clothes=None, skin=None) -> tuple[list[Part], Extent]:
    r, tyre, hub = 0.31, _dark(rng), _c(0.6, 0.6, 0.62)
    parts = [shadow(0.95, 0.12)]
    parts += _wheel(-0.7, r, MOTORCYCLE, tyre, hub) + _wheel(0.7, r, MOTORCYCLE, tyre, hub)
    parts += [Part("ellipse", (0.0, 0.55, 0.55, 0.2), MOTORCYCLE, body, 3),
              Part("ellipse", (0.1, 0.75, 0.3, 0.12), MOTORCYCLE, body, 3),
              Part("rect", (-0.5, -0.05, 0.72, 0.82), MOTORCYCLE, _dark(rng)),
              Part("seg", (0.7, r, 0.5, 1.0, 0.035), MOTORCYCLE, hub),
              Part("seg", (-0.6, 0.3, -0.1, 0.3, 0.05), MOTORCYCLE, hub)]
    top = 1.1
    if clothes is not None:
        parts += _rider_on(rng, clothes, skin, (-0.25, 0.85), (0.45, 1.0), (0.05, 0.35), True)
        top = 2.0
    return parts, (-1.05, 1.05, -0.12, top)


# ---------------------------------------------------------------- street furniture
def pole_with(rng, kind: str, grey, sign_colour) -> tuple[list[Part], Extent]:
    """A pole, optionally carrying a traffic sign, a traffic light or a lamp arm."""
    h, r = rng.uniform(3.0, 7.0), rng.uniform(0.05, 0.11)
    parts = [Part("rect", (-r, r, 0.0, h), POLE, grey, 2)]
    a0, a1, top = -0.5, 0.5, h + 0.1
    if kind == "sign":
        s, cv = rng.uniform(0.25, 0.45), h - rng.uniform(0.3, 1.0)
        shape = rng.integers(4)
        face = sign_colour if rng.random() < 0.75 else grey * 0.8
        if shape == 0:
            parts.append(Part("ellipse", (0.0, cv, s, s), SIGN, face, 1, 0.15))
            parts.append(Part("ellipse", (0.0, cv, s * 0.7, s * 0.7), SIGN, _c(0.92, 0.92, 0.9), 1, 0.1))
        elif shape == 1:
            parts.append(Part("poly", ((-s * 1.1, cv - s), (0.0, cv + s), (s * 1.1, cv - s)), SIGN, face, 1, 0.15))
        elif shape == 2:
            parts.append(Part("rect", (-s * 1.2, s * 1.2, cv - s * 0.8, cv + s * 0.8), SIGN, face, 1, 0.15))
            parts.append(Part("rect", (-s, s, cv - s * 0.2, cv + s * 0.2), SIGN, _c(0.92, 0.92, 0.9), 1, 0.1))
        else:
            parts.append(Part("poly", ((-s, cv), (0.0, cv + s), (s, cv), (0.0, cv - s)), SIGN, face, 1, 0.15))
        top = max(top, cv + s)
    elif kind == "light":
        arm = rng.uniform(-3.5, 3.5) if rng.random() < 0.4 else 0.0
        if arm:
            parts.append(Part("seg", (0.0, h - 0.1, arm, h - 0.1, 0.06), POLE, grey, 2))
        ca = arm
        parts.append(Part("rect", (ca - 0.17, ca + 0.17, h - 1.05, h - 0.1), LIGHT, _dark(rng) + 0.05, 2))
        lit = rng.integers(3)
        lamps = (_c(0.95, 0.15, 0.1), _c(0.95, 0.75, 0.1), _c(0.2, 0.95, 0.4))
        for i in range(3):
            colour = lamps[i] if i == lit else lamps[i] * 0.25
            parts.append(Part("ellipse", (ca, h - 0.26 - 0.3 * i, 0.1, 0.1), LIGHT, colour, 1, 0.1))
        a0, a1 = min(-0.5, arm - 0.3), max(0.5, arm + 0.3)
    elif kind == "lamp":
        arm = rng.choice([-1.0, 1.0]) * rng.uniform(0.8, 2.0)
        parts += [Part("seg", (0.0, h, arm, h + 0.3, 0.05), POLE, grey, 2),
                  Part("ellipse", (arm, h + 0.22, 0.3, 0.1), POLE, grey * 1.2, 2)]
        a0, a1, top = min(-0.5, arm - 0.4), max(0.5, arm + 0.4), h + 0.5
    return parts, (a0, a1, 0.0, top)


def tree(rng, green, bark) -> tuple[list[Part], Extent]:
    h = rng.uniform(4.0, 10.0)
    rc = h * rng.uniform(0.2, 0.32)
    parts = [Part("rect", (-0.13, 0.13, 0.0, h * 0.6), VEGETATION, bark, 2)]
    for _ in range(rng.integers(4, 8)):
        ca, cv = rng.normal(0, rc * 0.45), h - rc + rng.normal(0, rc * 0.35)
        r = rc * rng.uniform(0.5, 0.85)
        parts.append(Part("ellipse", (ca, cv, r, r * rng.uniform(0.8, 1.1)), VEGETATION,
                          green * rng.uniform(0.85, 1.15), 4, 0.9))
    return parts, (-2.2 * rc, 2.2 * rc, 0.0, h + 0.4 * rc)


def clutter(rng, colour, dynamic: bool) -> tuple[list[Part], Extent]:
    """Bins, boxes, benches (static) or carts and strollers (dynamic): ignore classes."""
    if dynamic:
        w, h = rng.uniform(0.3, 0.5), rng.uniform(0.8, 1.1)
        parts = [Part("rect", (-w, w, 0.25, h), DYNAMIC, colour, 2),
                 Part("ellipse", (-w * 0.7, 0.12, 0.12, 0.12), DYNAMIC, _dark(rng)),
                 Part("ellipse", (w * 0.7, 0.12, 0.12, 0.12), DYNAMIC, _dark(rng))]
        return parts, (-w, w, 0.0, h)
    w, h = rng.uniform(0.25, 0.9), rng.uniform(0.4, 1.3)
    parts = [shadow(w * 1.2, 0.1), Part("rect", (-w, w, 0.0, h), STATIC, colour, 2)]
    if rng.random() < 0.5:
        parts.append(Part("ellipse", (0.0, h, w, 0.08), STATIC, colour * 0.7, 2))
    return parts, (-w, w, -0.1, h + 0.1)


def barrier_side(rng, kind: str, colour, length: float) -> tuple[list[Part], Extent]:
    """Fences, walls, guard rails and hedges along the back of the sidewalk (side view)."""
    if kind == "wall":
        h = rng.uniform(0.8, 2.6)
        parts = [Part("rect", (0.0, length, 0.0, h), WALL, colour, 2, 0.3),
                 Part("rect", (0.0, length, h - 0.12, h), WALL, colour * 0.8, 2)]
    elif kind == "fence":
        h, pitch = rng.uniform(0.9, 2.0), rng.uniform(0.12, 0.3)
        parts = [Part("rect", (0.0, length, h - 0.08, h), FENCE, colour, 1),
                 Part("rect", (0.0, length, 0.15, 0.23), FENCE, colour, 1)]
        for a in np.arange(0.0, length, pitch):
            parts.append(Part("rect", (a, a + pitch * 0.3, 0.0, h), FENCE, colour, 1))
    elif kind == "guard_rail":
        h = 0.75
        parts = [Part("rect", (0.0, length, 0.45, h), GUARD_RAIL, colour, 1)]
        for a in np.arange(0.0, length, 2.0):
            parts.append(Part("rect", (a, a + 0.12, 0.0, h), GUARD_RAIL, colour * 0.7, 1))
    else:  # hedge
        h = rng.uniform(0.8, 2.2)
        parts = [Part("rect", (0.0, length, 0.0, h), VEGETATION, colour, 4, 0.9)]
    return parts, (0.0, length, 0.0, h)
