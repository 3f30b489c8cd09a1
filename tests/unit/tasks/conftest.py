"""Tiny datasets written in their real on-disk formats, and a helper to write task YAMLs."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image


def colour_images(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """8x8 images whose mean colour encodes the label (so labels can be checked from pixels)."""
    rng = np.random.default_rng(seed)
    base = (labels[:, None, None, None] * 40 + 20).astype(np.int64)
    noise = rng.integers(0, 10, (len(labels), 8, 8, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


@pytest.fixture(name="colour_images")
def _colour_images_fixture():
    return colour_images


@pytest.fixture
def write_yaml(tmp_path: Path):
    def write(name: str, data: dict) -> Path:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(data))
        return path

    return write


@pytest.fixture
def image_tree(tmp_path: Path) -> Path:
    """root/{train,test}/<class>/<n>.png with 3 classes; 'test' lacks class 'c'."""
    root = tmp_path / "folder_ds"
    for split, classes, per in (("train", "abc", 4), ("test", "ab", 2)):
        for y, c in enumerate(classes):
            (root / split / c).mkdir(parents=True)
            for i, img in enumerate(colour_images(np.full(per, y))):
                Image.fromarray(img).save(root / split / c / f"{i}.png")
    return root


@pytest.fixture
def cifar10_tree(tmp_path: Path) -> Path:
    """CIFAR-10's python pickle batches (torchvision's on-disk format), 100 train / 10 test images."""
    base = tmp_path / "cifar_root" / "cifar10" / "cifar-10-batches-py"
    base.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]
    for k, name in enumerate(names):
        n = 10 if name == "test_batch" else 20
        labels = [int(v) for v in (np.arange(n) + k) % 10]
        data = rng.integers(0, 255, (n, 3072), dtype=np.uint8)
        with open(base / name, "wb") as f:
            pickle.dump({"data": data, "labels": labels}, f)
    meta = {"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                            "ship", "truck"]}
    with open(base / "batches.meta", "wb") as f:
        pickle.dump(meta, f)
    return tmp_path / "cifar_root"
