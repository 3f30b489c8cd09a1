"""Readers for pretraining data: the mini benchmark, and ImageFolder, npz, webdataset and Hugging Face
datasets through `nmlbench.readers` (the readers `nmlbench noise` uses, so manifests match the data).

Each reader returns a `Source`: sample ids in data order, clean labels (with class names) or captions,
and a way to decode sample i (map-style) or to stream (webdataset). Decoding errors return None so
the loader can skip and count corrupt samples instead of crashing a week-long run.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from webdataset.shardlists import expand_urls

from nmlbench.errors import UserError
from nmlbench.paths import data_root
from nmlbench.pretrain.config import DataConfig
from nmlbench.readers import HUB_PREFIX, IMAGE_EXTS, ReadSpec, read_records
from nmlbench.readers import decode_image as decode_image
from nmlbench.readers.base import ShardIndex
from nmlbench.registry import Registry


@dataclass
class Source:
    """Pretraining samples in data order.

    Attributes:
        ids: (N,) str sample ids, the manifest's `sample_id`s.
        labels: (N,) int64 clean labels, or None (image-text data).
        captions: (N,) str clean captions, or None (labelled data).
        num_classes: label count (0 for image-text data).
        fingerprint: sha256 identifying the data (ids, labels/captions and, where cheap, pixels).
        load: i -> PIL image / uint8 CHW tensor, None when sample i cannot be decoded.
        shards: webdataset shard paths (streamed; `load` unused), else empty.
        classes: class names (label i is classes[i]), recorded in checkpoint.json; None without labels.
        shard_index: where each sample sits in `shards` (see `nmlbench.readers.base.ShardIndex`).
    """

    ids: np.ndarray
    labels: np.ndarray | None
    captions: np.ndarray | None
    num_classes: int
    fingerprint: str
    load: Callable[[int], Any] | None = None
    shards: list[str] = field(default_factory=list)
    image_exts: tuple[str, ...] = IMAGE_EXTS
    classes: list[str] | None = None
    shard_index: ShardIndex | None = None


READERS: Registry[Callable[[DataConfig, Path | None], Source]] = Registry("data source")


def open_source(cfg: DataConfig, root: str | Path | None = None) -> Source:
    """Read the data the config names; a missing path is a UserError saying how to get the data."""
    return READERS.get(cfg.source)(cfg, Path(root) if root else None)


def _resolve(cfg: DataConfig, root: Path | None, path_text: str | None = None) -> Path:
    text = path_text or cfg.path
    if not text:
        raise UserError(f"data.path is not set for source {cfg.source!r}; pass --set data.path=DIR")
    path = Path(text).expanduser()
    return path if path.is_absolute() else data_root(root) / path


def _missing(path: Path, what: str, how: str) -> UserError:
    return UserError(f"{what} not found at {path}; {how} (or pass --data-root / --set data.path=...)")


def _fingerprint(*parts: Any) -> str:
    h = hashlib.sha256()
    for part in parts:
        arr = np.asarray(part)
        if arr.dtype.kind in "OUS":
            h.update("\n".join(map(str, arr.tolist())).encode())
        else:
            h.update(np.ascontiguousarray(arr).tobytes())
        h.update(b"\0")
    return h.hexdigest()


@READERS.register("mini")
def read_mini(cfg: DataConfig, root: Path | None) -> Source:
    mini = importlib.import_module("nmlbench.mini")
    up = mini.load_upstream(data_dir=data_root(root) if root else None)
    images = torch.from_numpy(np.ascontiguousarray(up.images)).permute(0, 3, 1, 2)  # (N, 3, 32, 32)
    ids = np.asarray(up.ids).astype(str)
    return Source(
        ids=ids,
        labels=np.asarray(up.labels, dtype=np.int64),
        captions=np.asarray(up.captions).astype(str),
        num_classes=len(up.classes),
        fingerprint=_fingerprint(ids, np.asarray(up.labels), np.asarray(up.captions), up.images),
        load=lambda i: images[i],
        classes=list(up.classes),
    )


@READERS.register("mini-text")
def read_mini_text(cfg: DataConfig, root: Path | None) -> Source:
    """The mini text benchmark's upstream corpus: topic-labelled sentences (`nmlbench.minitext`)."""
    from nmlbench.minitext.data import load_upstream

    up = load_upstream()
    ids, texts = np.asarray(up.ids).astype(str), np.asarray(up.texts).astype(str)
    return Source(
        ids=ids,
        labels=np.asarray(up.labels, dtype=np.int64),
        captions=None,
        num_classes=len(up.classes),
        fingerprint=_fingerprint(ids, np.asarray(up.labels), texts),
        load=lambda i: str(texts[i]),
        classes=list(up.classes),
    )


HOW = {
    "imagefolder": (
        "ImageFolder root",
        "unpack ImageNet as <root>/<class>/<image> (e.g. with the "
        "ILSVRC2012 train tar and its valprep script)",
    ),
    "npz": ("npz archive", "write one with numpy.savez(path, images=..., labels=...)"),
    "hf": (
        "HF dataset",
        "save one with `datasets.Dataset.save_to_disk(path)` or `.to_parquet(path)`, "
        "or name a Hub dataset as hf-hub:NAME",
    ),
    "webdataset": (
        "webdataset shard",
        "write shards with webdataset.ShardWriter (img2dataset does this for CC12M/YFCC15M)",
    ),
}


def _local_path(cfg: DataConfig, root: Path | None) -> str:
    """data.path with relative parts under the data root; local files checked to exist."""
    what, how = HOW[cfg.source]
    if cfg.source == "hf" and (cfg.path or "").startswith(HUB_PREFIX):
        return cfg.path
    if cfg.source != "webdataset":
        path = _resolve(cfg, root)
        if not (path.is_dir() if cfg.source == "imagefolder" else path.exists()):
            raise _missing(path, what, how)
        return str(path)
    if not cfg.path:
        raise UserError("data.path is not set for source 'webdataset'; pass --set data.path=PATTERN")
    parts = [
        p if "://" in p or p.startswith("pipe:") else str(_resolve(cfg, root, p))
        for p in cfg.path.split("::")
    ]
    pattern = "::".join(parts)
    try:
        urls = list(expand_urls(pattern))
    except ValueError as e:
        raise UserError(f"shard pattern {pattern!r}: {e}; e.g. 'shards/{{000000..000099}}.tar'") from None
    absent = [u for u in urls if "://" not in u and not u.startswith("pipe:") and not Path(u).is_file()]
    if absent:
        raise _missing(Path(absent[0]), what, how)
    return pattern


@READERS.register("imagefolder")
@READERS.register("npz")
@READERS.register("hf")
@READERS.register("webdataset")
def read_shared(cfg: DataConfig, root: Path | None) -> Source:
    """Every on-disk format, through the readers `nmlbench noise` uses."""
    rec = read_records(
        ReadSpec(
            format="wds" if cfg.source == "webdataset" else cfg.source,
            path=_local_path(cfg, root),
            split=cfg.split,
            id_column=cfg.id_key,
            label_column=cfg.label_key,
            caption_column=cfg.caption_key,
            image_column=cfg.image_key,
            num_classes=cfg.num_classes,
            images=True,
            option="data.{}_key",
        )
    )
    ids = np.asarray(rec.ids.to_numpy(zero_copy_only=False)).astype(str)
    if len(set(ids.tolist())) != len(ids):
        raise UserError(f"{rec.where} has duplicate sample ids; every id must be unique (set data.id_key)")
    caps = None if rec.captions is None else np.asarray(rec.captions.to_pylist(), dtype=str)
    parts = [ids, *(x for x in (rec.labels, caps, rec.pixels) if x is not None)]
    return Source(
        ids,
        rec.labels,
        caps,
        len(rec.classes) if rec.classes is not None else 0,
        _fingerprint(*parts),
        load=rec.load,
        shards=rec.shards,
        image_exts=rec.image_exts,
        classes=rec.classes,
        shard_index=rec.shard_index,
    )
