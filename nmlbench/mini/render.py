"""Vectorised 32x32 rendering: shapes as signed distances, fill textures, backgrounds, four domains.

Every function works on a whole batch at once (arrays shaped (B, H, W) or (B, H, W, 3), float32 in
[0, 1]); Python loops run only over shape kinds, object slots or kernel taps, never over pixels.
Edges are anti-aliased by turning an approximate signed distance (pixels, negative inside) into
coverage, so small objects still look like their shape.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SIZE = 32
_AXIS = np.arange(SIZE, dtype=np.float32) + 0.5
_X = _AXIS[None, None, :]  # (1, 1, W)
_Y = _AXIS[None, :, None]  # (1, H, 1)

SHAPES = ("circle", "triangle", "square", "pentagon", "hexagon", "star", "cross", "ring",
          "crescent", "diamond")
COLOURS = {
    "red": (0.90, 0.12, 0.10), "green": (0.10, 0.72, 0.20), "blue": (0.15, 0.30, 0.95),
    "yellow": (0.95, 0.88, 0.10), "orange": (1.00, 0.55, 0.05), "purple": (0.55, 0.15, 0.80),
    "pink": (1.00, 0.50, 0.75), "cyan": (0.10, 0.85, 0.90), "white": (0.95, 0.95, 0.95),
    "brown": (0.55, 0.33, 0.12),
}
COLOUR_NAMES = tuple(COLOURS)
COLOUR_RGB = np.array(list(COLOURS.values()), dtype=np.float32)  # (10, 3)
EXTRA_SHAPES = ("bar",)  # drawn by some tasks, never an upstream class
TEXTURES = ("solid", "striped", "checkered", "dotted", "wavy", "speckled")
BACKGROUNDS = ("dark noisy", "light grainy", "colour gradient", "cluttered")
DOMAINS = ("real", "sketch", "painting", "clipart")


@dataclass
class Objects:
    """One object slot for every image of a batch (B,) — draw several slots for several objects."""

    shape: np.ndarray    # int (B,) index into SHAPES
    cx: np.ndarray       # float (B,) centre, pixels
    cy: np.ndarray
    radius: np.ndarray   # float (B,) pixels
    angle: np.ndarray    # float (B,) radians
    colour: np.ndarray   # float (B, 3)
    texture: np.ndarray  # int (B,) index into TEXTURES
    present: np.ndarray  # bool (B,) slots with False draw nothing (variable object counts)
    colour2: np.ndarray | None = None  # (B, 3): second colour of a two-colour texture


def local_coords(obj: Objects) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates in each object's rotated frame: (B, H, W) each."""
    dx = _X - obj.cx[:, None, None]
    dy = _Y - obj.cy[:, None, None]
    c = np.cos(obj.angle)[:, None, None]
    s = np.sin(obj.angle)[:, None, None]
    return (c * dx + s * dy).astype(np.float32), (-s * dx + c * dy).astype(np.float32)


def _polygon(u: np.ndarray, v: np.ndarray, r: np.ndarray, k: int, theta0: float) -> np.ndarray:
    # Distance to the nearest edge line: exact inside, a fair approximation outside.
    rho = np.hypot(u, v)
    sector = 2 * np.pi / k
    phi = np.mod(np.arctan2(v, u) - theta0 - np.pi / k, sector) - np.pi / k
    return rho * np.cos(phi) - r * np.cos(np.pi / k)


def _sdf_one(name: str, u: np.ndarray, v: np.ndarray, r: np.ndarray) -> np.ndarray:
    rho = np.hypot(u, v)
    if name == "circle":
        return rho - r
    if name == "triangle":
        return _polygon(u, v, r * 1.15, 3, -np.pi / 2)
    if name == "square":
        return np.maximum(np.abs(u), np.abs(v)) - 0.82 * r
    if name == "pentagon":
        return _polygon(u, v, r, 5, -np.pi / 2)
    if name == "hexagon":
        return _polygon(u, v, r, 6, 0.0)
    if name == "star":
        t = np.mod((np.arctan2(v, u) + np.pi / 2) / (2 * np.pi / 5), 1.0)
        return 0.55 * (rho - r * (0.42 + 0.58 * np.abs(2 * t - 1)))
    if name == "cross":
        arm = 0.34 * r
        return np.minimum(np.maximum(np.abs(u) - r, np.abs(v) - arm),
                          np.maximum(np.abs(u) - arm, np.abs(v) - r))
    if name == "ring":
        return np.abs(rho - 0.7 * r) - 0.3 * r
    if name == "crescent":
        return np.maximum(rho - r, 0.82 * r - np.hypot(u - 0.5 * r, v))
    if name == "diamond":
        return (np.abs(u) + 0.75 * np.abs(v) - r) * 0.8
    if name == "bar":
        return np.maximum(np.abs(u) - r, np.abs(v) - 0.2 * r)
    raise ValueError(f"unknown shape {name!r}")


def shape_sdf(obj: Objects, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Approximate signed distance in pixels (negative inside), (B, H, W)."""
    d = np.full(u.shape, 1e3, dtype=np.float32)
    r = obj.radius[:, None, None].astype(np.float32)
    for k, name in enumerate(SHAPES + EXTRA_SHAPES):
        sel = obj.shape == k
        if sel.any():
            d[sel] = _sdf_one(name, u[sel], v[sel], r[sel])
    return d


def coverage(d: np.ndarray) -> np.ndarray:
    """Anti-aliased fill coverage from a signed distance."""
    return np.clip(0.5 - d, 0.0, 1.0)


def stroke(d: np.ndarray, width: np.ndarray | float) -> np.ndarray:
    """Anti-aliased outline of the zero level set, `width` pixels wide."""
    w = np.asarray(width, dtype=np.float32)
    w = w[:, None, None] if w.ndim == 1 else w
    return np.clip(w / 2 + 0.5 - np.abs(d), 0.0, 1.0)


def texture_pattern(tex: np.ndarray, u: np.ndarray, v: np.ndarray, rng: np.random.Generator,
                    period: np.ndarray | None = None) -> np.ndarray:
    """Fill pattern in [0, 1] per pixel (1 = fill colour, 0 = its second tone), (B, H, W)."""
    p = np.ones(u.shape, dtype=np.float32)
    per = (period if period is not None else np.full(len(tex), 4.0, np.float32))[:, None, None]
    for k, name in enumerate(TEXTURES):
        sel = tex == k
        if not sel.any() or name == "solid":
            continue
        a, b, q = u[sel], v[sel], per[sel]
        if name == "striped":
            p[sel] = np.clip(0.5 + 2.0 * np.sin(2 * np.pi * a / q), 0, 1)
        elif name == "checkered":
            p[sel] = (np.floor(a / (0.8 * q)) + np.floor(b / (0.8 * q))) % 2
        elif name == "dotted":
            da = np.mod(a, q) - q / 2
            db = np.mod(b, q) - q / 2
            p[sel] = np.clip(1.0 - (np.hypot(da, db) - 0.3 * q), 0, 1)
        elif name == "wavy":
            p[sel] = np.clip(0.5 + 2.0 * np.sin(2 * np.pi * (b + 1.5 * np.sin(2 * np.pi * a / 9)) / q), 0, 1)
        elif name == "speckled":
            p[sel] = (rng.random(a.shape) < 0.5).astype(np.float32)
    return p


def smooth_field(rng: np.random.Generator, n: int, waves: int = 3, scale: float = 12.0) -> np.ndarray:
    """A random low-frequency field in [0, 1] (sum of a few sinusoids), (B, H, W)."""
    acc = np.zeros((n, SIZE, SIZE), dtype=np.float32)
    for _ in range(waves):
        th = rng.uniform(0, np.pi, n)[:, None, None]
        ph = rng.uniform(0, 2 * np.pi, n)[:, None, None]
        lam = rng.uniform(scale * 0.6, scale * 1.6, n)[:, None, None]
        acc += np.sin(2 * np.pi * (_X * np.cos(th) + _Y * np.sin(th)) / lam + ph)
    return (acc / (2 * waves) + 0.5).astype(np.float32)


def background(rng: np.random.Generator, kind: np.ndarray) -> np.ndarray:
    """Real-domain backgrounds (index into BACKGROUNDS), each with per-pixel grain: (B, H, W, 3)."""
    n = len(kind)
    out = np.empty((n, SIZE, SIZE, 3), dtype=np.float32)
    tint = rng.uniform(-0.05, 0.05, (n, 1, 1, 3)).astype(np.float32)
    ramp = np.broadcast_to((_X + _Y) / (2 * SIZE), (n, SIZE, SIZE))
    for k, name in enumerate(BACKGROUNDS):
        sel = kind == k
        m = int(sel.sum())
        if not m:
            continue
        if name == "dark noisy":
            base = np.full((m, SIZE, SIZE, 1), 0.12, np.float32) + rng.normal(0, 0.07, (m, SIZE, SIZE, 1))
        elif name == "light grainy":
            base = np.full((m, SIZE, SIZE, 1), 0.78, np.float32) + rng.normal(0, 0.04, (m, SIZE, SIZE, 1))
        elif name == "colour gradient":
            c0 = rng.uniform(0.05, 0.45, (m, 1, 1, 3))
            c1 = rng.uniform(0.05, 0.45, (m, 1, 1, 3))
            t = ramp[sel][..., None]
            base = c0 * (1 - t) + c1 * t
        else:  # cluttered: low-contrast blobs of two muted colours
            c0 = rng.uniform(0.15, 0.55, (m, 1, 1, 3))
            c1 = rng.uniform(0.15, 0.55, (m, 1, 1, 3))
            f = (smooth_field(rng, m, waves=4, scale=8.0) > 0.5)[..., None]
            base = np.where(f, c0, c1)
        out[sel] = base + tint[sel]
    out += rng.normal(0, 0.03, out.shape).astype(np.float32)  # sensor-like grain on every pixel
    return out


def plain_background(rng: np.random.Generator, n: int, lo: float, hi: float, tint: float) -> np.ndarray:
    """Flat paper/pastel backgrounds for the sketch and clipart domains, (B, H, W, 3)."""
    base = rng.uniform(lo, hi, (n, 1, 1, 1)) + rng.uniform(-tint, tint, (n, 1, 1, 3))
    return np.broadcast_to(base, (n, SIZE, SIZE, 3)).astype(np.float32).copy()


def domain_background(rng: np.random.Generator, n: int, domain: str) -> np.ndarray:
    if domain == "real":
        return background(rng, rng.integers(0, len(BACKGROUNDS), n))
    if domain == "sketch":
        return plain_background(rng, n, 0.90, 1.0, 0.02)
    if domain == "clipart":
        return plain_background(rng, n, 0.80, 0.97, 0.12)
    if domain == "painting":
        c0 = rng.uniform(0.2, 0.8, (n, 1, 1, 3))
        c1 = rng.uniform(0.2, 0.8, (n, 1, 1, 3))
        t = smooth_field(rng, n, waves=2, scale=20.0)[..., None]
        return (c0 * (1 - t) + c1 * t).astype(np.float32)
    raise ValueError(f"unknown domain {domain!r}")


def over(canvas: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> None:
    """canvas <- alpha * colour + (1 - alpha) * canvas, in place; alpha (B,H,W), colour (B,H,W,3)."""
    a = alpha[..., None]
    canvas *= 1 - a
    canvas += a * colour


def draw(canvas: np.ndarray, obj: Objects, domain: str, rng: np.random.Generator) -> np.ndarray:
    """Draw one object slot onto `canvas` (in place) in a domain's style; returns its coverage mask."""
    u, v = local_coords(obj)
    d = shape_sdf(obj, u, v)
    present = obj.present[:, None, None].astype(np.float32)
    n = len(obj.shape)
    if domain == "sketch":
        # Dark, slightly wobbly pen outline; no colour, no fill, no texture.
        d = d + 0.5 * np.sin(3 * np.arctan2(v, u) + rng.uniform(0, 6.3, n)[:, None, None])
        ink = rng.uniform(0.05, 0.3, (n, 1, 1, 1)).astype(np.float32)
        # Half the sketches shade the inside with light diagonal hatching, as pencil sketches do.
        hatch = np.sin((u + v) * rng.uniform(1.6, 2.4, n)[:, None, None]) > 0.3
        shade = coverage(d + 0.8) * hatch * (rng.random(n) < 0.5)[:, None, None] * present
        over(canvas, shade * rng.uniform(0.2, 0.4, n)[:, None, None], np.broadcast_to(ink, canvas.shape))
        line = stroke(d, rng.uniform(1.2, 2.2, n)) * present
        over(canvas, line, np.broadcast_to(ink, canvas.shape))
        return line
    fill = coverage(d) * present
    col = obj.colour[:, None, None, :].astype(np.float32)
    if domain == "real":
        p = texture_pattern(obj.texture, u, v, rng)[..., None]
        second = obj.colour2[:, None, None, :] if obj.colour2 is not None else 0.45 * col
        shade = 0.85 + 0.3 * ((u + v) / (4 * obj.radius[:, None, None] + 1e-6))[..., None]
        over(canvas, fill, np.clip((col * p + second * (1 - p)) * shade, 0, 1))
    elif domain == "painting":
        # Brush-stroke tone variation and hue drift; the blur comes in finish().
        brush = 0.75 + 0.5 * smooth_field(rng, n, waves=3, scale=6.0)[..., None]
        drift = rng.uniform(-0.12, 0.12, (n, 1, 1, 3))
        over(canvas, fill, np.clip(col * brush + drift, 0, 1))
    elif domain == "clipart":
        flat = np.clip(col * 1.1, 0, 1)
        over(canvas, fill, np.broadcast_to(flat, canvas.shape))
        edge = stroke(d, rng.uniform(2.0, 2.8, n)) * present
        over(canvas, edge, np.zeros_like(canvas))
    else:
        raise ValueError(f"unknown domain {domain!r}")
    return fill


def blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of (B, H, W, C) with edge padding (loops over kernel taps only)."""
    rad = max(1, int(round(2.5 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-rad, rad + 1) / sigma) ** 2)
    taps = (taps / taps.sum()).astype(np.float32)
    for axis in (1, 2):
        pad = [(0, 0)] * img.ndim
        pad[axis] = (rad, rad)
        padded = np.pad(img, pad, mode="edge")
        acc = np.zeros_like(img)
        for i, w in enumerate(taps):
            acc += w * np.take(padded, np.arange(i, i + img.shape[axis]), axis=axis)
        img = acc
    return img


def finish(canvas: np.ndarray, domain: str, rng: np.random.Generator) -> np.ndarray:
    """Domain post-processing, then float [0, 1] -> uint8 (B, H, W, 3)."""
    if domain == "real":
        canvas = canvas + rng.normal(0, 0.02, canvas.shape).astype(np.float32)
    elif domain == "painting":
        canvas = blur(canvas, 1.1)
        weave = 0.04 * np.sign(np.sin(_X * 2.6) * np.sin(_Y * 2.6))[..., None]  # canvas cloth
        canvas = canvas + weave
    return (np.clip(canvas, 0, 1) * 255 + 0.5).astype(np.uint8)
