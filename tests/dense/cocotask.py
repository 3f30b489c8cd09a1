"""A tiny COCO-format task written the way COCO ships: PNG images + instances_<split>.json + a task YAML.

Two sparse category ids (3 "disc", 7 "block") on 64x64 images; discs carry polygon masks, blocks
RLE-free rectangles as polygons, so pycocotools reads both the way it reads COCO's own files.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

CATEGORIES = [{"id": 3, "name": "disc", "supercategory": "shape"},
              {"id": 7, "name": "block", "supercategory": "shape"}]
SIZE = 64


def _disc_polygon(cx: float, cy: float, r: float, k: int = 16) -> list[float]:
    pts = []
    for i in range(k):
        a = 2 * math.pi * i / k
        pts += [round(cx + r * math.cos(a), 2), round(cy + r * math.sin(a), 2)]
    return pts


def write_split(folder: Path, split: str, n: int, seed: int = 0) -> dict[str, Any]:
    """n images with one disc and one block each; returns the annotation dict it wrote."""
    rng = np.random.default_rng(seed)
    (folder / "images" / split).mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for i in range(n):
        img = np.full((SIZE, SIZE, 3), 40, np.uint8)
        image_id = 100 + i  # COCO ids need not start at 0 or be contiguous
        cx, cy, r = rng.uniform(14, 22), rng.uniform(14, 50), rng.uniform(7, 10)
        yy, xx = np.mgrid[:SIZE, :SIZE] + 0.5
        img[(xx - cx) ** 2 + (yy - cy) ** 2 <= r * r] = (230, 60, 40)
        x0, y0 = int(rng.integers(36, 44)), int(rng.integers(6, 40))
        w, h = int(rng.integers(10, 18)), int(rng.integers(10, 18))
        img[y0:y0 + h, x0:x0 + w] = (50, 90, 230)
        name = f"{split}_{i:03d}.png"
        Image.fromarray(img).save(folder / "images" / split / name)
        images.append({"id": image_id, "file_name": name, "width": SIZE, "height": SIZE})
        anns.append({"id": 2 * i + 1, "image_id": image_id, "category_id": 3, "iscrowd": 0,
                     "bbox": [round(cx - r, 2), round(cy - r, 2), round(2 * r, 2), round(2 * r, 2)],
                     "area": round(math.pi * r * r, 2), "segmentation": [_disc_polygon(cx, cy, r)]})
        anns.append({"id": 2 * i + 2, "image_id": image_id, "category_id": 7, "iscrowd": 0,
                     "bbox": [x0, y0, w, h], "area": w * h,
                     "segmentation": [[x0, y0, x0 + w, y0, x0 + w, y0 + h, x0, y0 + h]]})
    data = {"images": images, "annotations": anns, "categories": CATEGORIES}
    write_annotations(folder, split, data)
    return data


def write_annotations(folder: Path, split: str, data: Any) -> Path:
    path = folder / "annotations" / f"instances_{split}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def write_task(folder: Path, kind: str = "instance_segmentation", n_train: int = 6, n_test: int = 4,
               name: str = "shapes") -> Path:
    """The data and a task YAML beside it (reader coco, relative paths); returns the YAML's path."""
    write_split(folder, "train", n_train, seed=1)
    write_split(folder, "test", n_test, seed=2)
    yaml_path = folder / f"{name}.yaml"
    yaml_path.write_text(
        f"version: 1\nreader: coco\ntype: {kind}\nnum_classes: 2\nsplits: [train, test]\n"
        "params:\n  images: images/{split}\n  annotations: annotations/instances_{split}.json\n"
        "  split_map: {train: train, test: test}\n", encoding="utf-8")
    return yaml_path


def write_ood_task(folder: Path, train: Path, kind: str) -> Path:
    """A shifted test of `train` (its test split read again, as an OOD task of type `kind`)."""
    path = folder / f"shift-{kind}.yaml"
    path.write_text(
        f"version: 1\nreader: coco\ntype: {kind}\ndomain: ood\ntrain_task: {train.name}\nnum_classes: 2\n"
        "params:\n  images: images/{split}\n  annotations: annotations/instances_{split}.json\n"
        "  split_map: {test: test}\n", encoding="utf-8")
    return path
