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
