"""Readers for pretraining data: the mini benchmark, ImageFolder, HF datasets on disk, webdataset shards.

Each reader returns a `Source`: sample ids in data order, clean labels or captions, and a way to
decode sample i (map-style) or to stream (webdataset). Decoding errors return None so the loader
can skip and count corrupt samples instead of crashing a week-long run.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from webdataset.shardlists import expand_urls

from nmlbench.errors import UserError
from nmlbench.paths import data_root
from nmlbench.pretrain.config import DataConfig
from nmlbench.registry import Registry

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")
TEXT_EXTS = ("txt", "cls", "json")


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
    """

    ids: np.ndarray
    labels: np.ndarray | None
    captions: np.ndarray | None
    num_classes: int
    fingerprint: str
    load: Callable[[int], Any] | None = None
    shards: list[str] = field(default_factory=list)
    image_exts: tuple[str, ...] = IMAGE_EXTS


READERS: Registry[Callable[[DataConfig, Path | None], Source]] = Registry("data source")


def open_source(cfg: DataConfig, root: str | Path | None = None) -> Source:
    """Read the data the config names; a missing path is a UserError saying how to get the data."""
    return READERS.get(cfg.source)(cfg, Path(root) if root else None)


def _resolve(cfg: DataConfig, root: Path | None) -> Path:
    if not cfg.path:
        raise UserError(f"data.path is not set for source {cfg.source!r}; pass --set data.path=DIR")
    path = Path(cfg.path).expanduser()
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


def decode_image(data: bytes) -> Image.Image | None:
    try:
        img = Image.open(io.BytesIO(data))
        return img.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


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
    )


@READERS.register("imagefolder")
def read_imagefolder(cfg: DataConfig, root: Path | None) -> Source:
    from torchvision.datasets import ImageFolder

    path = _resolve(cfg, root)
    if not path.is_dir():
        raise _missing(
            path,
            "ImageFolder root",
            "unpack ImageNet as <root>/<class>/<image> (e.g. "
            "with the ILSVRC2012 train tar and its valprep script)",
        )
    try:
        ds = ImageFolder(str(path), loader=str)  # keep paths; we decode (and count failures) ourselves
    except FileNotFoundError as e:
        raise UserError(f"{path} is not an ImageFolder tree ({e}); expected <root>/<class>/<image>") from None
    ids = np.array([Path(p).relative_to(path).as_posix() for p, _ in ds.samples], dtype=str)
    labels = np.array(ds.targets, dtype=np.int64)

    def load(i: int) -> Image.Image | None:
        return decode_image(Path(ds.samples[i][0]).read_bytes())

    return Source(ids, labels, None, len(ds.classes), _fingerprint(ids, labels), load=load)


@READERS.register("hf")
def read_hf(cfg: DataConfig, root: Path | None) -> Source:
    import datasets

    path = _resolve(cfg, root)
    if not path.exists():
        raise _missing(path, "HF dataset", "save one with `datasets.Dataset.save_to_disk(path)`")
    ds = datasets.load_from_disk(str(path))
    if isinstance(ds, datasets.DatasetDict):
        if cfg.split not in ds:
            raise UserError(f"{path} has no split {cfg.split!r} (it has {', '.join(ds)}); set data.split")
        ds = ds[cfg.split]
    missing = [k for k in (cfg.id_key, cfg.image_key) if k not in ds.column_names]
    if missing:
        raise UserError(
            f"{path} lacks column(s) {missing} (has {ds.column_names}); set data.id_key/image_key"
        )
    ds = ds.cast_column(cfg.image_key, datasets.Image(decode=False))  # decode ourselves, count failures
    ids = np.array(ds[cfg.id_key], dtype=str)
    labels = np.array(ds[cfg.label_key], dtype=np.int64) if cfg.label_key in ds.column_names else None
    caps = np.array(ds[cfg.caption_key], dtype=str) if cfg.caption_key in ds.column_names else None
    feature = ds.features.get(cfg.label_key)
    n_cls = (
        len(feature.names)
        if hasattr(feature, "names")
        else (int(labels.max()) + 1 if labels is not None else 0)
    )

    def load(i: int) -> Image.Image | None:
        cell = ds[int(i)][cfg.image_key]
        data = cell.get("bytes") or (Path(cell["path"]).read_bytes() if cell.get("path") else b"")
        return decode_image(data)

    return Source(
        ids, labels, caps, n_cls, _fingerprint(ids, *(x for x in (labels, caps) if x is not None)), load=load
    )


@READERS.register("webdataset")
def read_webdataset(cfg: DataConfig, root: Path | None) -> Source:
    """Scan the shards' headers and small text members once: ids, labels/captions, up-front checks."""
    pattern = cfg.path or ""
    shards = [str(_resolve(DataConfig(source="webdataset", path=p), root)) for p in expand_urls(pattern)]
    absent = [s for s in shards if not Path(s).is_file()]
    if not shards or absent:
        raise _missing(
            Path(absent[0] if absent else pattern),
            "webdataset shard",
            "write shards with webdataset.ShardWriter (img2dataset does this for CC12M/YFCC15M)",
        )
    ids, labels, caps = [], [], []
    for shard in shards:
        for key, texts in _scan_shard(shard):
            ids.append(key)
            labels.append(int(texts["cls"].strip()) if "cls" in texts else -1)
            caps.append(_caption(texts, cfg.caption_key))
    ids_a = np.array(ids, dtype=str)
    if len(set(ids)) != len(ids):
        raise UserError(f"duplicate sample keys in {pattern}; every __key__ must be unique across shards")
    lab = np.array(labels, dtype=np.int64) if min(labels, default=-1) >= 0 else None
    cap = np.array(caps, dtype=str) if all(c is not None for c in caps) else None
    n_cls = int(lab.max()) + 1 if lab is not None and len(lab) else 0
    exts = tuple(cfg.image_key.split(";")) if cfg.image_key != "image" else IMAGE_EXTS
    return Source(
        ids_a,
        lab,
        cap,
        n_cls,
        _fingerprint(ids_a, *(x for x in (lab, cap) if x is not None)),
        shards=shards,
        image_exts=exts,
    )


def _caption(texts: dict[str, str], key: str) -> str | None:
    """As `nmlbench noise` reads it: the json member's `key` first, else the raw .txt text."""
    if "json" in texts:
        try:
            meta = json.loads(texts["json"])
        except json.JSONDecodeError:
            meta = None
        if isinstance(meta, dict) and key in meta:
            return str(meta[key])
    return texts.get("txt")


def _scan_shard(path: str) -> list[tuple[str, dict[str, str]]]:
    """(key, {ext: text}) per sample in shard order, reading only the small text members."""
    out: dict[str, dict[str, str]] = {}
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                if not member.isfile() or "." not in Path(member.name).name:
                    continue
                key, ext = _split_name(member.name)
                entry = out.setdefault(key, {})
                if ext in TEXT_EXTS:
                    entry[ext] = tar.extractfile(member).read().decode("utf-8", "replace")
    except (tarfile.TarError, OSError) as e:
        raise UserError(f"cannot read shard {path}: {e}; re-create or remove it") from None
    return list(out.items())


def _split_name(name: str) -> tuple[str, str]:
    """webdataset's convention: key = path up to the first dot of the basename, ext = the rest."""
    folder, _, base = name.rpartition("/")
    stem, _, ext = base.partition(".")
    return (f"{folder}/{stem}" if folder else stem), ext.lower()
