"""Procedural street scenes with a pinhole camera: the synth-cityscapes / synth-camvid benchmark.

A scene is a road with lanes, sidewalks, verges and building facades laid out in metres and
projected through a camera with random height, focal length and horizon, so scale and perspective
vary. The ground, facades and sky are computed per pixel in closed form; objects are sprites drawn
far to near. Colours come from one random palette per scene shared by all classes: road and
sidewalk have the same colour distribution (they differ by position and kerb), cars, trucks and
buses differ by size and shape, poles and signs are a few pixels wide.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from workbench.data import synth_objects as so
from workbench.data.synth_draw import Canvas, value_noise, window

# Classes forced into successive scenes so that every train id appears in a small set.
FEATURED = ("train", "bus", "truck", "motorcycle", "rider", "bicycle", "light", "wall", "fence",
            "terrain", "person", "sign")


def _grey(rng: np.random.Generator) -> np.ndarray:
    v = rng.uniform(0.22, 0.75)
    return np.clip(v + rng.normal(0, 0.035, 3), 0, 1).astype(np.float32)


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    i, f = int(h * 6) % 6, h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return np.array([(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i], dtype=np.float32)


def _green(rng: np.random.Generator) -> np.ndarray:
    if rng.random() < 0.2:  # dry or autumn
        return _hsv(rng.uniform(0.05, 0.14), rng.uniform(0.3, 0.6), rng.uniform(0.3, 0.6))
    return _hsv(rng.uniform(0.17, 0.4), rng.uniform(0.25, 0.7), rng.uniform(0.2, 0.55))


class StreetScene:
    """One random scene; `render()` returns (image uint8 HxWx3, labelIds uint8 HxW)."""

    def __init__(self, rng: np.random.Generator, h: int, w: int, featured: str | None = None):
        self.rng, self.h, self.w, self.featured = rng, h, w, featured
        self.f = w * rng.uniform(0.55, 1.1)
        self.H = rng.uniform(1.2, 2.3)
        self.y_h = h * rng.uniform(0.3, 0.5)
        self.x_v = w * rng.uniform(0.38, 0.62)
        self.palette = [_grey(rng) if rng.random() < 0.45 else
                        _hsv(rng.random(), rng.uniform(0.2, 0.9), rng.uniform(0.25, 0.9)) for _ in range(12)]
        self.lw = rng.uniform(3.0, 3.7)
        self.nl, self.nr = int(rng.integers(0, 3)), int(rng.integers(1, 3))
        self.tram = featured == "train" or rng.random() < 0.06
        if self.tram:   # trams run in the first lane to the left
            self.nl = max(self.nl, 1)
        self.parked = [rng.random() < 0.6 for _ in range(2)]             # parking lane left, right
        self.road = (-(self.nl + 0.5) * self.lw - 2.3 * self.parked[0],
                     (self.nr - 0.5) * self.lw + 2.3 * self.parked[1])
        self.walk = (rng.uniform(1.5, 5.0), rng.uniform(1.5, 5.0))      # left, right widths
        self.verge = [rng.uniform(0.0, 4.0) if rng.random() < 0.6 else 0.0 for _ in range(2)]
        if featured == "terrain":
            self.verge = [max(v, 2.0) for v in self.verge]

    def want(self, name: str, p: float) -> bool:
        return self.featured == name or self.rng.random() < p

    def colour(self) -> np.ndarray:
        c = self.palette[self.rng.integers(len(self.palette))]
        return np.clip(c * self.rng.uniform(0.85, 1.15), 0, 1).astype(np.float32)

    # ------------------------------------------------------------------ projection helpers
    def billboard(self, X: float, Z: float, ext: tuple) -> tuple | None:
        """Window and metric coordinates of a frontal sprite at lateral X and depth Z."""
        a0, a1, v0, v1 = ext
        s = self.f / Z
        c0, c1 = window(self.x_v + s * (X + a0), self.x_v + s * (X + a1), self.w)
        r0, r1 = window(self.y_h + s * (self.H - v1), self.y_h + s * (self.H - v0), self.h)
        if c0 >= c1 or r0 >= r1:
            return None
        A = ((np.arange(c0, c1) + 0.5 - self.x_v) / s - X)[None, :]
        V = (self.H - (np.arange(r0, r1) + 0.5 - self.y_h) / s)[:, None]
        return slice(r0, r1), slice(c0, c1), A, V

    def sideplane(self, X: float, z0: float, ext: tuple) -> tuple | None:
        """Window and coordinates of a sprite on the plane at lateral X, starting at depth z0."""
        a0, a1, v0, v1 = ext
        za, zb = z0 + a0, z0 + a1
        xs = [self.x_v + self.f * X / z for z in (za, zb)]
        ys = [self.y_h + self.f * (self.H - v) / z for z in (za, zb) for v in (v0, v1)]
        c0, c1 = window(min(xs), max(xs), self.w)
        r0, r1 = window(min(ys), max(ys), self.h)
        if c0 >= c1 or r0 >= r1:
            return None
        dx = np.arange(c0, c1) + 0.5 - self.x_v
        with np.errstate(divide="ignore", invalid="ignore"):
            Z = np.where(dx * X > 0, self.f * X / dx, np.inf)
        A = np.where(np.isfinite(Z), Z - z0, -1e9)[None, :]
        V = self.H - (np.arange(r0, r1)[:, None] + 0.5 - self.y_h) * np.where(np.isfinite(Z), Z, 0)[None, :] / self.f
        return slice(r0, r1), slice(c0, c1), A, V

    # ------------------------------------------------------------------ background
    def background(self, cv: Canvas) -> None:
        rng, h, w = self.rng, self.h, self.w
        ys = (np.arange(h, dtype=np.float32) + 0.5)[:, None]
        xs = (np.arange(w, dtype=np.float32) + 0.5)[None, :]
        dy, dx = ys - self.y_h, xs - self.x_v
        # sky
        top, bottom = _hsv(rng.uniform(0.5, 0.7), rng.uniform(0.0, 0.6), rng.uniform(0.55, 1.0)), _grey(rng) + 0.2
        t = np.clip(ys / max(self.y_h, 1), 0, 1)[..., None]
        cv.image[:] = (1 - t) * top + t * bottom
        cv.image += 0.25 * (cv.noise[3][..., None] - 0.5)
        cv.label[:] = so.SKY
        # ground
        ground = np.broadcast_to(dy > 0, (h, w))
        with np.errstate(divide="ignore", invalid="ignore"):
            Zg = np.where(dy > 0, self.f * self.H / dy, 1e6)
            Xg = np.where(dy > 0, dx * self.H / dy, 0.0)
        Zg = np.broadcast_to(Zg, (h, w))
        rl, rr = self.road
        wl, wr = self.walk
        fl, fr = rl - wl - self.verge[0], rr + wr + self.verge[1]
        g0 = min(h, max(0, int(np.ceil(self.y_h - 0.5))))     # first row below the horizon
        if g0 < h:
            self._ground(cv, g0, Xg[g0:], Zg[g0:], rl, rr, wl, wr, fl, fr)
        # facades on both sides
        for side, xf in ((-1, fl), (1, fr)):
            m = (dx * side > 0) & ~(ground & (Xg * side <= xf * side))
            if m.any():
                self._facade(cv, m, dx, dy, xf)

    def _ground(self, cv, g0, Xg, Zg, rl, rr, wl, wr, fl, fr) -> None:
        """Road, sidewalks and verges on the rows g0.. (all below the horizon)."""
        rng = self.rng
        road_c, walk_c = _grey(rng), _grey(rng)
        lab = np.full(Xg.shape, so.ROAD, dtype=np.uint8)
        col = np.empty(Xg.shape + (3,), dtype=np.float32)
        col[:] = road_c
        walk = ((Xg > rr) & (Xg <= rr + wr)) | ((Xg < rl) & (Xg >= rl - wl))
        lab[walk] = so.SIDEWALK
        col[walk] = walk_c
        if rng.random() < 0.6:  # paving tiles
            tile = rng.uniform(0.3, 0.8)
            joint = walk & ((np.mod(Xg, tile) < 0.05) | (np.mod(Zg, tile) < 0.05))
            col[joint] *= 0.8
        kerb = walk & ((np.abs(Xg - rr) < 0.15) | (np.abs(Xg - rl) < 0.15))
        col[kerb] = np.clip(walk_c * 1.25, 0, 1)
        # verges: terrain, bare ground or parking per stretch of road
        verge = ((Xg > rr + wr) & (Xg <= fr)) | ((Xg < rl - wl) & (Xg >= fl))
        kinds = rng.choice([so.TERRAIN, so.TERRAIN, so.GROUND, so.PARKING], size=64)
        if self.featured == "terrain":
            kinds[:] = so.TERRAIN
        colours = {so.TERRAIN: _green(rng), so.GROUND: _green(rng) * 0.6 + 0.2, so.PARKING: _grey(rng)}
        seg = np.clip((Zg / 10.0).astype(np.int64), 0, 63)
        vk = kinds[seg]
        lab[verge] = vk[verge]
        for k, c in colours.items():
            col[verge & (vk == k)] = c
        # lane markings, crossings, tram rails
        paint = np.clip(_grey(rng) + 0.45, 0, 1)
        dash = np.mod(Zg, rng.uniform(6.0, 12.0)) < rng.uniform(2.0, 4.0)
        road = lab == so.ROAD
        for j in range(-self.nl, self.nr - 1):
            xb = (j + 0.5) * self.lw
            col[road & (np.abs(Xg - xb) < 0.07) & (dash | (j == -1))] = paint
        if rng.random() < 0.3:
            z0 = rng.uniform(6.0, 30.0)
            col[road & (Zg > z0) & (Zg < z0 + 3.5) & (np.mod(Xg, 1.0) < 0.5)] = paint
        if self.tram:
            self.tram_x = -self.lw
            track = road & (np.abs(Xg - self.tram_x) < 1.0)
            lab[track] = so.RAIL
            col[track & (np.abs(np.abs(Xg - self.tram_x) - 0.72) < 0.05)] = paint * 0.9
        # a cast shadow across the street
        if rng.random() < 0.5:
            x0, slope = rng.uniform(rl, rr), rng.uniform(-0.3, 0.3)
            side = 1 if rng.random() < 0.5 else -1
            col[(Xg - x0 - slope * Zg) * side > 0] *= rng.uniform(0.45, 0.75)
        cv.image[g0:] = col * (1.0 + 0.35 * (cv.noise[2][g0:, :, None] - 0.5))
        cv.label[g0:] = lab

    def _facade(self, cv, m, dx, dy, xf) -> None:
        rng = self.rng
        Z = np.clip(self.f * xf / np.broadcast_to(dx, m.shape)[m], 0.5, 400.0)
        Y = self.H - np.broadcast_to(dy, m.shape)[m] * Z / self.f
        n, length = 64, rng.uniform(8.0, 25.0)
        off = rng.uniform(0, length)
        k = np.clip(((Z + off) / length).astype(np.int64), 0, n - 1)
        height = rng.uniform(6.0, 30.0, n)
        gap = rng.random(n) < 0.15
        height[gap] = 0.0
        hedge = np.where(gap, rng.uniform(2.0, 9.0, n), 0.0)
        colours = np.stack([self.colour() for _ in range(n)])
        glass = np.stack([np.clip(0.3 * self.colour() + rng.uniform(0.0, 0.3), 0, 1) for _ in range(n)])
        win_w, floor_h = rng.uniform(1.5, 3.5), rng.uniform(2.8, 3.6)
        bld = Y < height[k]
        veg = ~bld & (Y < hedge[k])
        window_px = bld & (Y > 3.2) & (np.mod(Z + off, win_w) / win_w > 0.35) & (np.mod(Y, floor_h) / floor_h > 0.35)
        col = colours[k]
        col[window_px] = glass[k][window_px]
        col[~window_px & bld & (Y < 3.2)] *= 0.8   # ground floor
        rows, cols = np.nonzero(m)
        tex = 1.0 + 0.3 * (cv.noise[2][rows, cols] - 0.5)
        shade = rng.uniform(0.6, 1.0)   # one side is in shade
        sel = bld | veg
        cv.image[rows[sel], cols[sel]] = (col * tex[:, None] * shade)[sel]
        cv.label[rows[bld], cols[bld]] = so.BUILDING
        green = _green(rng)
        leaves = 1.0 + 0.9 * (cv.noise[4][rows[veg], cols[veg]] - 0.5)
        cv.image[rows[veg], cols[veg]] = green[None, :] * leaves[:, None]
        cv.label[rows[veg], cols[veg]] = so.VEGETATION

    # ------------------------------------------------------------------ objects
    def sprites(self) -> list[tuple]:
        """(depth, 'front'|'side', X, z, parts, extent), to be drawn far to near."""
        rng, out = self.rng, []
        rl, rr = self.road
        wl, wr = self.walk
        skin = lambda: _hsv(rng.uniform(0.02, 0.1), rng.uniform(0.2, 0.6), rng.uniform(0.3, 0.95))  # noqa: E731
        clothes = lambda: (self.colour(), self.colour())  # noqa: E731

        def front(X, Z, made):
            out.append((Z, "front", X, Z) + made)

        def side(X, z0, made):
            out.append((z0, "side", X, z0) + made)

        # barriers along the back of each sidewalk
        for s, xb in ((-1, rl - wl), (1, rr + wr)):
            z = rng.uniform(3.0, 15.0)
            while z < 120:
                length = rng.uniform(6.0, 30.0)
                kind = rng.choice(["none", "none", "wall", "fence", "hedge", "guard_rail"],
                                  p=[0.3, 0.15, 0.17, 0.17, 0.15, 0.06])
                if self.featured in ("wall", "fence") and z < 25:
                    kind = self.featured
                if kind != "none":
                    colour = _green(rng) if kind == "hedge" else self.colour()
                    side(xb - s * 0.05, z, so.barrier_side(rng, kind, colour, length))
                z += length + rng.uniform(0.0, 10.0)
        # traffic in the lanes (rear views ahead, front views in oncoming lanes)
        for j in range(-self.nl, self.nr):
            X, z = j * self.lw, rng.uniform(9.0, 25.0) if j == 0 else rng.uniform(4.0, 15.0)
            oncoming = j < 0 and self.nl > 0
            while z < 90:
                r = rng.random()
                if self.featured in ("truck", "bus") and z < 40 and j == self.nr - 1:
                    kind = self.featured
                elif r < 0.6:
                    kind = "car"
                elif r < 0.7:
                    kind = "truck"
                elif r < 0.78:
                    kind = "bus"
                else:
                    kind = None
                if kind:
                    fn = {"car": so.car_rear, "truck": so.truck_rear, "bus": so.bus_rear}[kind]
                    front(X + rng.normal(0, 0.25), z, fn(rng, self.colour(), oncoming))
                z += rng.uniform(9.0, 35.0)
        # parked vehicles along the kerbs, seen from the side
        for X, parked in ((rl + 2.1, self.parked[0]), (rr - 2.1, self.parked[1])):
            if not parked:
                continue
            z = rng.uniform(2.0, 10.0)
            while z < 70:
                r = rng.random()
                fn, rear = ((so.car_side, so.car_rear) if r < 0.8 else (so.truck_side, so.truck_rear)
                            if r < 0.9 else (so.bus_side, so.bus_rear))
                body = self.colour()
                made = fn(rng, body)
                side(X, z, made)
                back = rear(rng, body, rng.random() < 0.5)     # the near end, seen face on
                out.append((z - 1e-3, "front", X + np.sign(X) * back[1][1], z) + back)
                z += made[1][1] + rng.uniform(0.5, 8.0)
        if self.tram:
            side(self.tram_x + 1.3, rng.uniform(6.0, 35.0), so.train_side(rng, self.colour()))
        # two-wheelers with and without riders
        n_ride = rng.poisson(0.8) + (1 if self.featured in ("rider", "motorcycle", "bicycle") else 0)
        for i in range(n_ride):
            motor = self.featured == "motorcycle" if i == 0 and self.featured else rng.random() < 0.4
            fn = so.motorcycle if motor else so.bicycle
            made = fn(rng, self.colour(), clothes(), skin())
            X = rng.uniform(rl + 0.8, rr - 0.5)
            front(X, rng.uniform(5.0, 35.0), made if rng.random() < 0.5 else (so._mirror(made[0]), made[1]))
        for _ in range(rng.poisson(0.7)):
            s = rng.choice([-1, 1])
            X = s * rng.uniform(abs(rr if s > 0 else rl) + 0.5, abs(rr if s > 0 else rl) + (wr if s > 0 else wl))
            front(X, rng.uniform(4.0, 30.0), so.bicycle(rng, self.colour()))
        # pedestrians on the sidewalks and crossing
        n_ped = rng.poisson(3.0) + (2 if self.featured == "person" else 0)
        for _ in range(n_ped):
            if rng.random() < 0.2:
                X, Z = rng.uniform(rl, rr), rng.uniform(6.0, 25.0)
            else:
                s = rng.choice([-1, 1])
                base, width = (rr, wr) if s > 0 else (-rl, wl)
                X, Z = s * (base + rng.uniform(0.3, width - 0.2)), rng.uniform(3.0, 45.0)
            front(X, Z, so.person(rng, clothes(), skin(), h=rng.uniform(1.0, 1.3) if rng.random() < 0.1 else None))
        # poles, signs and lights near the kerb; trees at the back of the sidewalk
        for s, base, width in ((-1, -rl, wl), (1, rr, wr)):
            z = rng.uniform(2.0, 15.0)
            while z < 100:
                kind = rng.choice(["plain", "sign", "light", "lamp"], p=[0.2, 0.35, 0.25, 0.2])
                if self.featured in ("sign", "light") and z < 30:
                    kind = self.featured
                front(s * (base + rng.uniform(0.3, 0.7)), z, so.pole_with(rng, kind, _grey(rng), self.colour()))
                z += rng.uniform(6.0, 25.0)
            z = rng.uniform(2.0, 20.0)
            while z < 100 and rng.random() < 0.6:
                front(s * (base + width - rng.uniform(0.3, 0.8)), z, so.tree(rng, _green(rng), _grey(rng) * 0.6))
                z += rng.uniform(6.0, 20.0)
            for _ in range(rng.poisson(1.0)):
                front(s * (base + rng.uniform(0.4, width)), rng.uniform(3.0, 40.0),
                      so.clutter(rng, self.colour(), rng.random() < 0.3))
        return out

    # ------------------------------------------------------------------ whole scene
    def render(self) -> tuple[np.ndarray, np.ndarray]:
        rng, h, w = self.rng, self.h, self.w
        cv = Canvas(rng, h, w)
        self.background(cv)
        for item in sorted(self.sprites(), key=lambda t: -t[0]):
            _, kind, X, z, parts, ext = item
            win = self.billboard(X, z, ext) if kind == "front" else self.sideplane(X, z, ext)
            if win is not None:
                cv.paint(*win, parts)
        if rng.random() < 0.25:   # ego vehicle bonnet
            ys, xs = np.ogrid[:h, :w]
            bonnet = ((xs - w / 2) / (0.8 * w)) ** 2 + ((ys - 1.18 * h) / (0.22 * h)) ** 2 <= 1
            cv.label[bonnet] = so.EGO
            cv.image[bonnet] = self.colour() * 0.5
        if rng.random() < 0.2:    # rectification border
            b = max(1, int(w * rng.uniform(0.005, 0.02)))
            cv.label[:, :b] = cv.label[:, -b:] = so.UNLABELED
            cv.image[:, :b] = cv.image[:, -b:] = 0.0
        # lighting, lens blur, sensor noise
        light = 0.7 + 0.6 * value_noise(rng, h, w, w / 3)
        img = cv.image * light[..., None] * rng.uniform(0.75, 1.25) * (1 + rng.normal(0, 0.05, 3)).astype(np.float32)
        sigma = rng.uniform(0.3, 1.1) * max(h, w) / 512
        img = gaussian_filter(img, sigma=(sigma, sigma, 0), mode="nearest")
        img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(rng.uniform(0.01, 0.04))
        return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8), cv.label
