"""Small data in the real on-disk formats, written by the tests themselves (imported by the tests)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np


def write_imagefolder(root: Path, n_classes: int = 3, per_class: int = 4) -> Path:
    """ImageNet layout with real JPEG and PNG files (and one non-image file torchvision must skip)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(n_classes):
        d = root / f"n{c:08d}"
        d.mkdir(parents=True)
        for i in range(per_class):
            img = Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8))
            img.save(d / f"img_{i}.{'JPEG' if i % 2 else 'png'}")
        (d / "README.txt").write_text("not an image")
    return root


def write_shards(
    root: Path, n_shards: int = 2, per_shard: int = 5, caption_ext: str = "txt", with_cls: bool = True
) -> str:
    """webdataset shards shards-{000000..N}.tar with jpg + txt/json captions (+ cls labels)."""
    import webdataset as wds
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    k = 0
    for s in range(n_shards):
        with wds.TarWriter(str(root / f"shards-{s:06d}.tar")) as sink:
            for _ in range(per_shard):
                buf = io.BytesIO()
                Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(buf, format="JPEG")
                sample = {"__key__": f"{k:09d}", "jpg": buf.getvalue()}
                caption = f"a photo of thing number {k}"
                if caption_ext == "txt":
                    sample["txt"] = caption
                else:
                    sample["json"] = json.dumps({"caption": caption, "label": k % 3}).encode()
                if with_cls:
                    sample["cls"] = str(k % 3)
                sink.write(sample)
                k += 1
    return str(root / f"shards-{{000000..{n_shards - 1:06d}}}.tar")


def write_npz(path: Path, n: int = 12, classes: bool = True, ids: bool = False, **extra: np.ndarray) -> Path:
    """A numpy archive as downstream tasks read it: images (N, 8, 8, 3) uint8, labels, classes."""
    rng = np.random.default_rng(2)
    arrays = {"images": rng.integers(0, 255, (n, 8, 8, 3), dtype=np.uint8), "labels": np.arange(n) % 3}
    if classes:
        arrays["classes"] = np.array(["ant", "bee", "cow"])
    if ids:
        arrays["ids"] = np.array([f"img{i:03d}" for i in range(n)])
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{**arrays, **extra})
    return path


def hf_dataset(n: int = 12, with_id: bool = False):
    """A `datasets.Dataset` with PNG images, a ClassLabel column and captions (no id column unless asked)."""
    import datasets
    from PIL import Image

    rng = np.random.default_rng(4)
    cols = {
        "img": [Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)) for _ in range(n)],
        "label": [i % 3 for i in range(n)],
        "caption": [f"caption {i}" for i in range(n)],
    }
    feats = {
        "img": datasets.Image(),
        "label": datasets.ClassLabel(names=["ant", "bee", "cow"]),
        "caption": datasets.Value("string"),
    }
    if with_id:
        cols["key"] = [f"k{i:02d}" for i in range(n)]
        feats["key"] = datasets.Value("string")
    return datasets.Dataset.from_dict(cols, features=datasets.Features(feats))


def write_hf(root: Path, form: str, n: int = 12, with_id: bool = False) -> Path:
    """The dataset in one of the local forms `--hf` reads: disk, parquet(-dir), arrow(-dir)."""
    ds = hf_dataset(n, with_id)
    root.mkdir(parents=True, exist_ok=True)
    if form == "disk":
        ds.save_to_disk(str(root / "disk"))
        return root / "disk"
    if form == "parquet":
        ds.to_parquet(str(root / "train.parquet"))
        return root / "train.parquet"
    if form == "parquet-dir":  # the Hub's layout: the split in the file name
        (root / "pq" / "data").mkdir(parents=True)
        ds.to_parquet(str(root / "pq" / "data" / "train-00000-of-00001.parquet"))
        ds.select(range(3)).to_parquet(str(root / "pq" / "data" / "test-00000-of-00001.parquet"))
        return root / "pq"
    ds.save_to_disk(str(root / "saved"))  # its data file is an arrow stream, as `datasets` caches them
    arrow = next((root / "saved").glob("*.arrow"))
    (root / "arrows").mkdir()
    arrow.rename(root / "arrows" / "train-00000.arrow")
    return root / "arrows" if form == "arrow-dir" else root / "arrows" / "train-00000.arrow"
