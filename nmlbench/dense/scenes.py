"""The mini dense task: 64x64 scenes of 1-4 mini shapes with exact boxes and instance masks, as COCO.

Objects come from the mini renderer (`nmlbench.mini.render`), which draws at 32x32: each object is
drawn on its own 32x32 tile and composited onto the 64x64 canvas exactly. Drawing is an affine map of
the canvas per pixel (`over` mixes colour into it), so drawing the tile once on black and once on
white with the same random state gives both terms: B = on black, T = on white - on black (how much of
the canvas shows through), and the tile over any canvas c is c * T + B.

Instance masks are the filled shape (coverage >= 0.5), minus what later objects cover; boxes are the
tight bounds of those visible masks. Sketch objects are opaque paper (what they cover is whited out
first), so a mask is what one sees in both domains. The split is written once, as a COCO instances
file plus PNGs, under `<data root>/mini-dense-v<DENSE_VERSION>/<domain>-seed<seed>/`.
"""
from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from nmlbench.dense.coco import encode_mask
from nmlbench.io import atomic_dir
from nmlbench.mini import render as R
from nmlbench.mini.generators import random_objects

# Bump when the same seed would give different pixels or annotations.
DENSE_VERSION = 1
CANVAS = 64
TILE = R.SIZE  # 32: the renderer's fixed size
MAX_OBJECTS = 4
MIN_VISIBLE_PX = 8  # an instance hidden down to fewer pixels is not annotated
RADIUS = (5.0, 11.0)  # object radius in pixels, drawn uniformly
SPLIT_SIZES = {"real": {"train": 512, "test": 256}, "sketch": {"test": 256}}
CATEGORIES = [{"id": k + 1, "name": name, "supercategory": "shape"} for k, name in enumerate(R.SHAPES)]


def dense_dir(root: Path, domain: str, seed: int) -> Path:
    return Path(root) / f"mini-dense-v{DENSE_VERSION}" / f"{domain}-seed{int(seed)}"


def _rng(seed: int, domain: str, split: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), DENSE_VERSION, zlib.crc32(domain.encode()),
                                  zlib.crc32(split.encode())])


def _tiles(rng: np.random.Generator, m: int, domain: str) -> tuple[np.ndarray, ...]:
    """m objects on 32x32 tiles: B (m,32,32,3), T (m,32,32,3), filled coverage (m,32,32), shape (m,)."""
    obj = random_objects(rng, m, radius=rng.uniform(*RADIUS, m))
    state = rng.bit_generator.state
    black = np.zeros((m, TILE, TILE, 3), np.float32)
    R.draw(black, obj, domain, rng)
    rng.bit_generator.state = state  # the same strokes, textures and wobble on white
    white = np.ones((m, TILE, TILE, 3), np.float32)
    R.draw(white, obj, domain, rng)
    fill = R.coverage(R.shape_sdf(obj, *R.local_coords(obj)))
    return black, white - black, fill, obj.shape


def _upsample(img: np.ndarray) -> np.ndarray:
    """(n, 32, 32, 3) -> (n, 64, 64, 3) by pixel repetition (the backgrounds are drawn at 32x32)."""
    k = CANVAS // TILE
    return img.repeat(k, axis=1).repeat(k, axis=2)


def render_split(domain: str, n: int, seed: int, split: str) -> tuple[np.ndarray, list[list[dict]]]:
    """n scenes: uint8 images (n, 64, 64, 3) and per image its instances {category_id, mask (64,64) bool}."""
    rng = _rng(seed, domain, split)
    counts = rng.integers(1, MAX_OBJECTS + 1, n)
    m = int(counts.sum())
    B, T, fill, shape = _tiles(rng, m, domain)
    place = rng.integers(0, CANVAS - TILE + 1, (m, 2))  # tile's top-left corner (x, y) on the canvas
    bg = _upsample(R.domain_background(rng, n, domain))
    canvas = bg.copy()
    instances: list[list[dict]] = []
    k = 0
    for i in range(n):
        objs: list[dict] = []
        for _ in range(counts[i]):
            x, y = place[k]
            win = np.s_[y:y + TILE, x:x + TILE]
            if domain == "sketch":  # paper: the object hides what lies under it
                a = fill[k][..., None]
                canvas[i][win] = canvas[i][win] * (1 - a) + bg[i][win] * a
            canvas[i][win] = canvas[i][win] * T[k] + B[k]
            mask = np.zeros((CANVAS, CANVAS), bool)
            mask[win] = fill[k] >= 0.5
            for o in objs:  # later objects occlude earlier ones
                o["mask"] &= ~mask
            objs.append({"category_id": int(shape[k]) + 1, "mask": mask})
            k += 1
        instances.append([o for o in objs if o["mask"].sum() >= MIN_VISIBLE_PX])
    return R.finish(canvas, domain, rng), instances


def _annotation(ann_id: int, image_id: int, inst: dict) -> dict[str, Any]:
    ys, xs = np.nonzero(inst["mask"])
    x0, y0 = int(xs.min()), int(ys.min())
    return {"id": ann_id, "image_id": image_id, "category_id": inst["category_id"],
            "bbox": [x0, y0, int(xs.max()) + 1 - x0, int(ys.max()) + 1 - y0],  # tight, in pixel edges
            "area": int(inst["mask"].sum()), "iscrowd": 0, "segmentation": encode_mask(inst["mask"])}


def write_split(folder: Path, domain: str, split: str, n: int, seed: int) -> None:
    """`images/<split>/<id>.png` and `annotations/instances_<split>.json` under `folder`."""
    images, instances = render_split(domain, n, seed, split)
    (folder / "images" / split).mkdir(parents=True)
    (folder / "annotations").mkdir(exist_ok=True)
    imgs, anns = [], []
    for i, (img, objs) in enumerate(zip(images, instances, strict=True), start=1):
        name = f"{i:06d}.png"
        # fixed PNG settings (no timestamps, fixed compression): the same seed gives the same bytes
        Image.fromarray(img).save(folder / "images" / split / name, format="PNG", compress_level=6)
        imgs.append({"id": i, "file_name": name, "width": CANVAS, "height": CANVAS})
        anns += [_annotation(len(anns) + 1 + j, i, o) for j, o in enumerate(objs)]
    data = {"info": {"description": f"nmlbench mini dense, {domain}, {split}, seed {seed}",
                     "version": str(DENSE_VERSION)},
            "licenses": [], "images": imgs, "annotations": anns, "categories": CATEGORIES}
    text = json.dumps(data, separators=(",", ":"))
    (folder / "annotations" / f"instances_{split}.json").write_text(text + "\n", encoding="utf-8")


def ensure_mini_dense(root: Path, domain: str, seed: int = 0,
                      sizes: dict[str, int] | None = None) -> Path:
    """The folder of one domain's splits, built on first use (all splits at once, atomically)."""
    folder = dense_dir(root, domain, seed)
    if folder.is_dir():
        return folder
    if domain not in SPLIT_SIZES:
        raise ValueError(f"unknown mini dense domain {domain!r}; known: {sorted(SPLIT_SIZES)}")
    with atomic_dir(folder) as tmp:
        for split, n in (sizes or SPLIT_SIZES[domain]).items():
            write_split(tmp, domain, split, n, seed)
    return folder
