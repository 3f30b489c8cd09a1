"""The mini benchmark's scene generators: upstream (labels + captions) and one per downstream task.

A generator maps (rng, labels, domain) to uint8 images (n, 32, 32, 3); the labels are chosen by the
caller (balanced), so a generator only decides how a label is drawn and which nuisances vary.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nmlbench.mini import render as R
from nmlbench.mini.render import COLOUR_NAMES, COLOUR_RGB, SHAPES, TEXTURES, Objects

SIZE_WORDS = ("small", "medium", "large")
SIZE_RANGES = ((4.5, 6.0), (6.5, 8.0), (8.5, 10.5))
BAR = len(SHAPES)  # index of the extra "bar" shape


@dataclass(frozen=True)
class Generator:
    """A downstream label space and how to draw it."""

    classes: tuple[str, ...]
    draw: Callable[[np.random.Generator, np.ndarray, str], np.ndarray]
    domains: tuple[str, ...] = ("real",)  # renderings this generator supports


def jitter_colour(rng: np.random.Generator, idx: np.ndarray) -> np.ndarray:
    return np.clip(COLOUR_RGB[idx] + rng.uniform(-0.06, 0.06, (len(idx), 3)), 0, 1).astype(np.float32)


def random_objects(rng: np.random.Generator, n: int, **fixed: np.ndarray) -> Objects:
    """Objects with every attribute random unless given: shape, colour, texture, size, place, tilt."""
    radius = fixed.pop("radius", None)
    if radius is None:
        radius = rng.uniform(5.0, 10.0, n)
    margin = radius + 1.0
    f = {
        "shape": rng.integers(0, len(SHAPES), n),
        "cx": rng.uniform(margin, R.SIZE - margin),
        "cy": rng.uniform(margin, R.SIZE - margin),
        "radius": radius,
        "angle": rng.uniform(-0.35, 0.35, n),
        "colour": None,
        "texture": rng.integers(0, len(TEXTURES), n),
        "present": np.ones(n, dtype=bool),
    }
    f.update(fixed)
    if f["colour"] is None:
        f["colour"] = jitter_colour(rng, rng.integers(0, len(COLOUR_NAMES), n))
    return Objects(**f)


def scene(rng: np.random.Generator, domain: str, slots: list[Objects]) -> np.ndarray:
    canvas = R.domain_background(rng, len(slots[0].shape), domain)
    for obj in slots:
        R.draw(canvas, obj, domain, rng)
    return R.finish(canvas, domain, rng)


# --- upstream ---------------------------------------------------------------------------------

UPSTREAM_CLASSES = tuple(f"{c} {s}" for s in SHAPES for c in COLOUR_NAMES)  # 100: shape x colour
_TEMPLATES = ("a {}", "a picture of a {}", "there is a {}")


def _position_phrase(cx: np.ndarray, cy: np.ndarray) -> list[str]:
    col = np.digitize(cx, [R.SIZE * 0.4, R.SIZE * 0.6])
    row = np.digitize(cy, [R.SIZE * 0.4, R.SIZE * 0.6])
    vert, horiz = ("top", "middle", "bottom"), ("left", "centre", "right")
    out = []
    for r, c in zip(row, col, strict=True):
        if r == 1 and c == 1:
            out.append("in the centre")
        elif r == 1:
            out.append(f"on the {horiz[c]}")
        elif c == 1:
            out.append(f"at the {vert[r]}")
        else:
            out.append(f"at the {vert[r]} {horiz[c]}")
    return out


def upstream(rng: np.random.Generator, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Upstream images and captions; label = shape * 10 + colour (see UPSTREAM_CLASSES)."""
    n = len(labels)
    shape, colour = labels // len(COLOUR_NAMES), labels % len(COLOUR_NAMES)
    size = rng.integers(0, 3, n)
    lo, hi = np.array(SIZE_RANGES).T
    radius = rng.uniform(lo[size], hi[size])
    bg = rng.integers(0, len(R.BACKGROUNDS), n)
    obj = random_objects(rng, n, shape=shape, colour=jitter_colour(rng, colour), radius=radius)
    canvas = R.background(rng, bg)
    R.draw(canvas, obj, "real", rng)
    images = R.finish(canvas, "real", rng)
    pos = _position_phrase(obj.cx, obj.cy)
    tmpl = rng.integers(0, len(_TEMPLATES), n)
    captions = np.array([
        _TEMPLATES[tmpl[i]].format(
            f"{SIZE_WORDS[size[i]]} {COLOUR_NAMES[colour[i]]} {TEXTURES[obj.texture[i]]} "
            f"{SHAPES[shape[i]]} {pos[i]} on a {R.BACKGROUNDS[bg[i]]} background")
        for i in range(n)
    ])
    return images, captions


# --- downstream -------------------------------------------------------------------------------

def _objects(rng: np.random.Generator, y: np.ndarray, domain: str) -> np.ndarray:
    n = len(y)  # roughly centred, like object-centric photos (CIFAR, DomainNet)
    return scene(rng, domain, [random_objects(rng, n, shape=y, radius=rng.uniform(7.0, 11.0, n),
                                              cx=rng.uniform(12, 20, n), cy=rng.uniform(12, 20, n))])


_FINE_TEX = (0, 1, 3)  # solid, striped, dotted


def _fine(rng: np.random.Generator, y: np.ndarray, domain: str) -> np.ndarray:
    shape, tex = y // 3, np.array(_FINE_TEX)[y % 3]
    return scene(rng, domain, [random_objects(rng, len(y), shape=shape, texture=tex,
                                              radius=rng.uniform(7.0, 11.0, len(y)))])


def _colours(rng: np.random.Generator, y: np.ndarray, domain: str) -> np.ndarray:
    return scene(rng, domain, [random_objects(rng, len(y), colour=jitter_colour(rng, y))])


def _textures(rng: np.random.Generator, y: np.ndarray, domain: str) -> np.ndarray:
    n = len(y)
    return scene(rng, domain, [random_objects(rng, n, texture=y, radius=rng.uniform(10.0, 13.0, n),
                                              cx=rng.uniform(14, 18, n), cy=rng.uniform(14, 18, n))])


def _grid_cells(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """k distinct cells of a 3x3 grid per image, (n, k)."""
    return np.argsort(rng.random((n, 9)), axis=1)[:, :k]


def _cell_centre(rng: np.random.Generator, cell: np.ndarray, jit: float) -> tuple[np.ndarray, np.ndarray]:
    step = R.SIZE / 3
    cx = (cell % 3 + 0.5) * step + rng.uniform(-jit, jit, len(cell))
    cy = (cell // 3 + 0.5) * step + rng.uniform(-jit, jit, len(cell))
    return cx, cy


def _count(rng: np.random.Generator, y: np.ndarray, domain: str) -> np.ndarray:
    n = len(y)
    cells = _grid_cells(rng, n, 5)
    slots = []
    for k in range(5):
        cx, cy = _cell_centre(rng, cells[:, k], 0.6)
        slots.append(random_objects(rng, n, cx=cx, cy=cy, radius=rng.uniform(4.0, 5.0, n),
                                    present=y >= k))  # label 0 means one object
    return scene(rng, domain, slots)


def _position(rng: np.random.Generator, y: np.ndarray, domain: str) -> np.ndarray:
    cx, cy = _cell_centre(rng, y, 1.8)
    return scene(rng, domain, [random_objects(rng, len(y), cx=cx, cy=cy,
                                              radius=rng.uniform(3.0, 4.5, len(y)))])


def _orientation(rng: np.random.Generator, y: np.ndarray, domain: str) -> np.ndarray:
    n = len(y)
    angle = y * (np.pi / 8) + rng.uniform(-0.07, 0.07, n)
    obj = random_objects(rng, n, shape=np.full(n, BAR), angle=angle, radius=rng.uniform(9.0, 12.0, n),
                         cx=rng.uniform(13, 19, n), cy=rng.uniform(13, 19, n))
    return scene(rng, domain, [obj])


def _flowers(rng: np.random.Generator, y: np.ndarray, domain: str) -> np.ndarray:
    """Rosettes: petal count 3-8 x round/pointy petals, with a centre disc of another colour."""
    n = len(y)
    petals, pointy = 3 + y // 2, (y % 2 == 1)
    obj = random_objects(rng, n, radius=rng.uniform(9.0, 12.5, n), angle=rng.uniform(0, 2 * np.pi, n),
                         cx=rng.uniform(13, 19, n), cy=rng.uniform(13, 19, n))
    u, v = R.local_coords(obj)
    c = np.abs(np.cos(petals[:, None, None] * np.arctan2(v, u) / 2))
    prof = np.where(pointy[:, None, None], c ** 4, c ** 0.5)
    d = 0.6 * (np.hypot(u, v) - obj.radius[:, None, None] * (0.25 + 0.75 * prof))
    canvas = R.domain_background(rng, n, domain)
    R.over(canvas, R.coverage(d), np.broadcast_to(obj.colour[:, None, None], canvas.shape))
    centre = np.hypot(u, v) - 0.22 * obj.radius[:, None, None]
    eye = jitter_colour(rng, rng.integers(0, len(COLOUR_NAMES), n))[:, None, None]
    R.over(canvas, R.coverage(centre), np.broadcast_to(eye, canvas.shape))
    return R.finish(canvas, domain, rng)


# Seven-segment layout: segment -> (centre u, centre v, horizontal?) in units of the half-width.
_SEGMENTS = ((0, -2, True), (1, -1, False), (1, 1, False), (0, 2, True), (-1, 1, False),
             (-1, -1, False), (0, 0, True))
_DIGITS = ("1111110", "0110000", "1101101", "1111001", "0110011", "1011011", "1011111", "1110000",
           "1111111", "1111011")
_DIGIT_ON = np.array([[c == "1" for c in s] for s in _DIGITS])  # (10, 7)


def _digit_sdf(u: np.ndarray, v: np.ndarray, digit: np.ndarray, w: np.ndarray) -> np.ndarray:
    w3 = w[:, None, None]
    d = np.full(u.shape, 1e3, np.float32)
    for s, (su, sv, horiz) in enumerate(_SEGMENTS):
        du, dv = np.abs(u - su * w3), np.abs(v - sv * w3)
        if not horiz:
            du, dv = dv, du
        seg = np.maximum(du - 0.85 * w3, dv - 0.22 * w3)
        d = np.where(_DIGIT_ON[digit, s][:, None, None], np.minimum(d, seg), d)
    return d


def _glyphs(rng: np.random.Generator, y: np.ndarray, domain: str) -> np.ndarray:
    """House-number-like digits with cut-off neighbours at the sides (as in SVHN crops)."""
    n = len(y)
    canvas = R.domain_background(rng, n, domain)
    w = rng.uniform(4.0, 5.5, n)
    col = jitter_colour(rng, rng.integers(0, len(COLOUR_NAMES), n))[:, None, None]
    cx, cy = rng.uniform(14, 18, n), rng.uniform(14, 18, n)
    skew = rng.uniform(-0.25, 0.1, n)[:, None, None]
    for offset, digit in ((0.0, y), (-2.6, rng.integers(0, 10, n)), (2.6, rng.integers(0, 10, n))):
        obj = random_objects(rng, n, cx=cx + offset * w, cy=cy, angle=np.zeros(n))
        u, v = R.local_coords(obj)
        d = _digit_sdf(u + skew * v, v, digit, w)
        R.over(canvas, R.coverage(d), np.broadcast_to(col, canvas.shape))
    return R.finish(canvas, domain, rng)


SATELLITE = ("water", "forest", "farmland", "urban", "desert", "river", "highway", "residential")


def _band(rng: np.random.Generator, n: int, width: tuple[float, float], wiggle: float) -> np.ndarray:
    """Coverage of a (possibly winding) band crossing the image at a random angle."""
    obj = random_objects(rng, n, cx=rng.uniform(12, 20, n), cy=rng.uniform(12, 20, n),
                         angle=rng.uniform(0, np.pi, n))
    u, v = R.local_coords(obj)
    centre = wiggle * np.sin(u / rng.uniform(3, 5, n)[:, None, None])
    return R.coverage(np.abs(v - centre) - rng.uniform(*width, n)[:, None, None])


def _satellite(rng: np.random.Generator, y: np.ndarray, domain: str) -> np.ndarray:
    """Land-cover tiles seen from above, like EuroSAT/RESISC45; each class its own procedure."""
    n = len(y)
    out = np.zeros((n, R.SIZE, R.SIZE, 3), np.float32)
    for k in range(len(SATELLITE)):
        sel = np.flatnonzero(y == k)
        if len(sel):
            out[sel] = _land(rng, k, len(sel))
    return R.finish(out, domain, rng)


def _mix(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    return a * (1 - t[..., None]) + b * t[..., None]


def _land(rng: np.random.Generator, k: int, m: int) -> np.ndarray:
    def tone(lo: tuple, hi: tuple) -> np.ndarray:
        return rng.uniform(lo, hi, (m, 3))[:, None, None].astype(np.float32)

    grass, soil = tone((0.2, 0.45, 0.15), (0.35, 0.6, 0.25)), tone((0.45, 0.35, 0.2), (0.6, 0.5, 0.3))
    field = R.smooth_field(rng, m, waves=3, scale=14.0)
    obj = random_objects(rng, m, angle=rng.uniform(0, np.pi, m))
    u, v = R.local_coords(obj)
    if k == 0:  # water: deep blue with soft swell
        return _mix(tone((0.05, 0.15, 0.4), (0.1, 0.25, 0.55)), tone((0.1, 0.3, 0.6), (0.2, 0.4, 0.7)), field)
    if k == 1:  # forest: dense dark-green crowns
        p = R.texture_pattern(np.full(m, 3), u, v, rng, period=rng.uniform(3.0, 4.5, m))
        return _mix(tone((0.02, 0.15, 0.03), (0.08, 0.25, 0.08)), tone((0.1, 0.35, 0.1), (0.2, 0.5, 0.2)), p)
    if k == 2:  # farmland: parallel crop rows of two tones
        p = R.texture_pattern(np.full(m, 1), u, v, rng, period=rng.uniform(3.0, 6.0, m))
        return _mix(tone((0.5, 0.5, 0.1), (0.8, 0.75, 0.3)), grass, p)
    if k == 3:  # urban: grey block grid
        p = R.texture_pattern(np.full(m, 2), u, v, rng, period=rng.uniform(3.0, 5.0, m))
        return _mix(tone((0.3, 0.3, 0.3), (0.45, 0.45, 0.45)),
                    tone((0.55, 0.55, 0.55), (0.75, 0.75, 0.75)), p)
    if k == 4:  # desert: sand with dunes
        p = R.texture_pattern(np.full(m, 4), u, v, rng, period=rng.uniform(6.0, 10.0, m))
        return _mix(tone((0.75, 0.6, 0.35), (0.9, 0.75, 0.5)), tone((0.85, 0.7, 0.45), (1.0, 0.85, 0.6)),
                    0.5 * p + 0.5 * field)
    land = _mix(grass, soil, field)
    if k == 5:  # river: a winding blue band across land
        return _mix(land, tone((0.1, 0.2, 0.5), (0.2, 0.35, 0.65)), _band(rng, m, (1.5, 3.0), 3.0))
    if k == 6:  # highway: a straight grey band across land
        return _mix(land, tone((0.35, 0.35, 0.35), (0.5, 0.5, 0.5)), _band(rng, m, (2.0, 3.0), 0.0))
    roofs = R.texture_pattern(np.full(m, 2), u, v, rng, period=rng.uniform(4.0, 6.0, m))  # residential
    return _mix(tone((0.45, 0.6, 0.4), (0.6, 0.75, 0.55)), tone((0.6, 0.2, 0.15), (0.85, 0.45, 0.35)),
                roofs * R.texture_pattern(np.full(m, 3), v, u, rng, period=rng.uniform(4.0, 6.0, m)))


def _cells(rng: np.random.Generator, y: np.ndarray, domain: str) -> np.ndarray:
    """Stained tissue patches (PCAM-like): label 1 when large dark nuclei cluster in the centre."""
    n = len(y)
    canvas = np.broadcast_to(np.array([0.93, 0.75, 0.85], np.float32), (n, R.SIZE, R.SIZE, 3)).copy()
    canvas *= (0.9 + 0.15 * R.smooth_field(rng, n, 3, 10.0))[..., None]
    for _ in range(16):
        obj = random_objects(rng, n, shape=np.zeros(n, int), radius=rng.uniform(1.0, 2.0, n),
                             cx=rng.uniform(1, 31, n), cy=rng.uniform(1, 31, n))
        R.over(canvas, R.coverage(R.shape_sdf(obj, *R.local_coords(obj))), np.broadcast_to(
            np.array([0.55, 0.3, 0.65], np.float32) * rng.uniform(0.8, 1.1, (n, 1, 1, 1)), canvas.shape))
    tumour = y == 1
    for _ in range(4):
        big = np.where(tumour, rng.uniform(2.4, 3.4, n), rng.uniform(1.0, 2.0, n))
        obj = random_objects(rng, n, shape=rng.choice([0, 3, 4], n), radius=big,
                             cx=rng.uniform(10, 22, n), cy=rng.uniform(10, 22, n), angle=rng.uniform(0, 6, n))
        ink = np.where(tumour[:, None], [0.3, 0.1, 0.4], [0.55, 0.3, 0.65]).astype(np.float32)
        R.over(canvas, R.coverage(R.shape_sdf(obj, *R.local_coords(obj))),
                np.broadcast_to(ink[:, None, None], canvas.shape))
    return R.finish(R.blur(canvas, 0.6), domain, rng)


_PAIR_SHAPES = (0, 1, 2, 5, 6, 7)  # circle, triangle, square, star, cross, ring
PAIRS = tuple(itertools.combinations(range(len(_PAIR_SHAPES)), 2))  # 15 unordered pairs


def _pairs(rng: np.random.Generator, y: np.ndarray, domain: str) -> np.ndarray:
    n = len(y)
    pair = np.array(PAIRS)[y]
    swap = rng.random(n) < 0.5
    first = np.array(_PAIR_SHAPES)[np.where(swap, pair[:, 1], pair[:, 0])]
    second = np.array(_PAIR_SHAPES)[np.where(swap, pair[:, 0], pair[:, 1])]
    mid = rng.uniform(14.5, 17.5, n)
    slots = []
    for shape, pos in ((first, rng.uniform(8.5, 10.0, n)), (second, rng.uniform(22.0, 23.5, n))):
        slots.append(random_objects(rng, n, shape=shape, radius=rng.uniform(6.0, 7.0, n), cx=pos, cy=mid))
    return scene(rng, domain, slots)


_MIX_COLOURS = (0, 1, 2, 3, 8)  # red, green, blue, yellow, white
MIXTURES = tuple(itertools.combinations(range(len(_MIX_COLOURS)), 2))  # 10 unordered colour pairs


def _mixtures(rng: np.random.Generator, y: np.ndarray, domain: str) -> np.ndarray:
    n = len(y)
    pair = np.array(_MIX_COLOURS)[np.array(MIXTURES)[y]]
    swap = rng.random(n) < 0.5
    c1 = jitter_colour(rng, np.where(swap, pair[:, 1], pair[:, 0]))
    c2 = jitter_colour(rng, np.where(swap, pair[:, 0], pair[:, 1]))
    obj = random_objects(rng, n, colour=c1, colour2=c2, texture=rng.integers(1, 5, n),
                         radius=rng.uniform(9.0, 12.0, n), cx=rng.uniform(13, 19, n),
                         cy=rng.uniform(13, 19, n))
    return scene(rng, domain, [obj])


ALL_DOMAINS = R.DOMAINS
GENERATORS: dict[str, Generator] = {
    "objects": Generator(SHAPES, _objects, ALL_DOMAINS),
    "fine": Generator(tuple(f"{TEXTURES[t]} {s}" for s in SHAPES for t in _FINE_TEX), _fine),
    "colours": Generator(COLOUR_NAMES, _colours),
    "textures": Generator(TEXTURES, _textures),
    "count": Generator(("one", "two", "three", "four", "five"), _count),
    "position": Generator(tuple(f"{r} {c}" for r in ("top", "middle", "bottom")
                                for c in ("left", "centre", "right")), _position),
    "orientation": Generator(tuple(f"{22.5 * k:g} degrees" for k in range(8)), _orientation),
    "flowers": Generator(tuple(f"{k} {p} petals" for k in range(3, 9) for p in ("round", "pointed")),
                         _flowers),
    "glyphs": Generator(tuple(str(d) for d in range(10)), _glyphs),
    "satellite": Generator(SATELLITE, _satellite),
    "cells": Generator(("normal", "tumour"), _cells),
    "pairs": Generator(tuple(f"{SHAPES[_PAIR_SHAPES[a]]} and {SHAPES[_PAIR_SHAPES[b]]}" for a, b in PAIRS),
                       _pairs),
    "mixtures": Generator(tuple(f"{COLOUR_NAMES[_MIX_COLOURS[a]]} and {COLOUR_NAMES[_MIX_COLOURS[b]]}"
                                for a, b in MIXTURES), _mixtures),
}
