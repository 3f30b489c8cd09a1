"""Readers for image data in plain files: ImageNet-layout folders, numpy archives, webdataset shards."""

from __future__ import annotations

import io
import json
import os
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from PIL import Image

from nmlbench.errors import UserError
from nmlbench.readers.base import (
    FORMATS,
    IMAGE_EXTS,
    ReadSpec,
    Records,
    ShardIndex,
    decode_image,
    decoding,
    describe,
    existing,
    labels_from,
    pick_column,
    row_ids,
    string_array,
)

TEXT_EXTS = ("txt", "cls", "json")


@FORMATS.register("imagefolder")
def read_imagefolder(spec: ReadSpec) -> Records:
    """ImageNet layout root/<class>/<image>; classes sorted and files found as torchvision's ImageFolder."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

    root = existing(spec.path, "image folder", "use the ImageNet layout root/<class>/<image>")
    if spec.need == "caption":
        raise UserError("an image folder has labels, not captions; use --type sym or asym")
    try:
        classes, class_to_idx = find_classes(str(root))
        samples = make_dataset(str(root), class_to_idx, extensions=IMG_EXTENSIONS, allow_empty=True)
    except (FileNotFoundError, NotADirectoryError) as e:
        raise UserError(f"image folder {root}: {e}; use the ImageNet layout root/<class>/<image>") from None
    cut = len(os.path.join(str(root), ""))
    ids = pa.array([p[cut:].replace(os.sep, "/") for p, _ in samples], pa.string())
    labels = np.fromiter((c for _, c in samples), dtype=np.int64, count=len(samples))
    where = f"image folder {root}"
    if len(ids) == 0:
        raise UserError(f"{where} has no samples; point it at a non-empty dataset")
    paths = [p for p, _ in samples]
    load = (lambda i: decode_image(Path(paths[i]).read_bytes())) if spec.images else None
    return Records(ids, labels, list(classes), None, where, load=load)


@FORMATS.register("npz")
def read_npz(spec: ReadSpec) -> Records:
    """A numpy archive as the downstream tasks read it: `images` (N,H,W[,C]) uint8, `labels`, optional
    `classes` (names of labels 0..C-1), `ids` and `captions`."""
    path = existing(spec.path, "npz archive", "write one with numpy.savez(path, images=..., labels=...)")
    where = f"npz archive {path}"
    z = open_npz(path)
    with z, decoding(where, "write it again with numpy.savez"):
        keys = list(z.files)
        cols = {
            role: pick_column(spec, role, keys, [f"{role}s", role], where)
            for role in ("id", "label", "caption", "image")
        }
        arrays = {role: z[key] for role, key in cols.items() if key and (role != "image" or spec.images)}
        names = z["classes"] if "classes" in keys else None
        # noise never loads the images, but a labels array longer or shorter than the images is
        # still wrong data: read the image count from the array's header alone
        lengths = {} if spec.images or not cols["image"] else {"image": _npz_rows(z, cols["image"])}
    n = _npz_length(arrays, where, lengths)
    ids = string_array(arrays["id"], where, "id") if "id" in arrays else row_ids(n)
    labels, classes = None, None
    if "label" in arrays:
        labels, classes = labels_from(
            arrays["label"], spec.num_classes, where, None if names is None else names.tolist()
        )
    captions = string_array(arrays["caption"], where, "caption") if "caption" in arrays else None
    if not spec.images:
        return Records(ids, labels, classes, captions, where)
    if "image" not in arrays:
        raise UserError(
            f"{where} has no images array (it has: {', '.join(keys)}); "
            f"name it with {spec.option.format('image')}"
        )
    images = _as_rgb(arrays["image"], where)  # (N, H, W, 3) uint8
    return Records(
        ids, labels, classes, captions, where, load=lambda i: Image.fromarray(images[i]), pixels=images
    )


def open_npz(path: Path) -> Any:
    """`np.load` of a .npz archive; anything else (garbage, a truncated zip, one .npy) is a UserError."""
    fix = "write it with numpy.savez(path, images=..., labels=...)"
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            npy = f.read(6) == b"\x93NUMPY"
        what = (
            "it holds one array (a .npy), not an archive" if npy else "it is not a zip archive, so not a .npz"
        )
        raise UserError(f"cannot read npz archive {path}: {what}; {fix}")
    with decoding(f"npz archive {path}", fix):
        return np.load(path, allow_pickle=False)


def _npz_rows(z: Any, key: str) -> int | None:
    """Leading dimension of an archive member, from its .npy header (the data is not read)."""
    with z.zip.open(f"{key}.npy") as f:
        version = np.lib.format.read_magic(f)
        read = (
            np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        )
        shape = read(f)[0]
    return shape[0] if shape else None


def _npz_length(arrays: dict[str, np.ndarray], where: str, extra: dict[str, int | None] | None = None) -> int:
    lengths = {role: len(a) for role, a in arrays.items() if a.ndim > 0}
    lengths.update({role: n for role, n in (extra or {}).items() if n is not None})
    if not lengths:
        return 0  # nothing per sample: the caller's check names what is missing (labels, captions)
    if len(set(lengths.values())) > 1:
        raise UserError(f"{where}: arrays differ in length {lengths}; every sample needs one of each")
    return next(iter(lengths.values()))


def _as_rgb(images: np.ndarray, where: str) -> np.ndarray:
    if images.dtype != np.uint8:
        raise UserError(f"{where}: images must be uint8, got {images.dtype}; convert them first")
    if images.ndim == 3:  # grayscale (N, H, W)
        return np.repeat(images[..., None], 3, axis=-1)
    if images.ndim == 4 and images.shape[-1] in (1, 3):
        return images if images.shape[-1] == 3 else np.repeat(images, 3, axis=-1)
    raise UserError(f"{where}: images must be (N, H, W[, 1|3]) uint8, got shape {images.shape}")


def expand_shards(pattern: str) -> list[str]:
    """'shards-{000000..000009}.tar' (several joined with '::') -> shard urls, local ones checked to exist."""
    from webdataset.shardlists import expand_urls

    try:
        urls = list(expand_urls(pattern)) if pattern else []
    except ValueError as e:
        raise UserError(f"shard pattern {pattern!r}: {e}") from None
    if not urls:
        raise UserError(f"shard pattern {pattern!r} names no shard; e.g. 'shards-{{000000..000009}}.tar'")
    for u in urls:
        if _local(u) and not Path(u).expanduser().is_file():
            raise UserError(f"shard {u} (from {pattern!r}) does not exist; check the pattern")
    return urls


def _local(url: str) -> bool:
    return "://" not in url and not url.startswith("pipe:")


@FORMATS.register("wds")
def read_wds(spec: ReadSpec) -> Records:
    """Scan the shards' small text members once (images are skipped): ids, labels, captions.

    A sample's label is its json's label key, else its .cls; its caption the json's caption key,
    else its .txt. Labels (captions) exist when every sample has one.
    """
    urls = expand_shards(spec.path)
    where = f"shards {spec.path}"
    keys: list[str] = []
    labels: list[Any] = []
    captions: list[str | None] = []
    counts: list[int] = []
    offsets: list[int] = []
    ends: list[int] = []
    for url in urls:
        samples, end = _scan(url)
        counts.append(len(samples))
        ends.append(end)
        for key, texts, offset in samples:
            keys.append(key)
            offsets.append(offset)
            labels.append(_field(texts, spec, "label", key, url))
            captions.append(_field(texts, spec, "caption", key, url))
    if not keys:
        raise UserError(f"{where} has no samples; point it at non-empty shards")
    lab, classes = None, None
    if all(x is not None for x in labels) and spec.need != "caption":
        lab, classes = labels_from(labels, spec.num_classes, where)
    elif spec.need == "label":
        first = keys[labels.index(None)]
        raise UserError(
            f"shard sample {first!r} in {where} has no .cls or json {spec.label_column or 'label'!r}; "
            f"fix the shards or name the json key with {spec.option.format('label')}"
        )
    cap = pa.array(captions, pa.string()) if all(c is not None for c in captions) else None
    exts = tuple(spec.image_column.split(";")) if spec.image_column else IMAGE_EXTS
    index = ShardIndex(*(np.asarray(x, dtype=np.int64) for x in (counts, offsets, ends)))
    return Records(
        pa.array(keys, pa.string()), lab, classes, cap, where, shards=urls, image_exts=exts, shard_index=index
    )


def _field(texts: dict[str, str], spec: ReadSpec, role: str, key: str, url: str) -> Any:
    """A sample's label (int or class name) or caption; None when it has none."""
    named = getattr(spec, f"{role}_column")
    meta = None
    if "json" in texts:
        try:
            meta = json.loads(texts["json"])
        except json.JSONDecodeError:
            meta = None  # not our metadata: fall back to .cls / .txt
    if isinstance(meta, dict) and (named or role) in meta:
        value = meta[named or role]
        return value if role == "label" else str(value)  # labels_from refuses floats, bools, mixes
    if named:  # a named key must be there: never fall back silently to another member
        has = ", ".join(meta) if isinstance(meta, dict) else "no json member"
        raise UserError(
            f"shard sample {key!r} in {url} has no json {role} key {named!r} (it has: {has or 'none'}); "
            f"name one of them with {spec.option.format(role)}, or leave it unset for .cls/.txt"
        )
    ext = "cls" if role == "label" else "txt"
    if ext not in texts:
        return None
    if role == "caption":
        return texts[ext]
    try:
        return int(texts[ext].strip())
    except ValueError:
        raise UserError(f"shard sample {key!r} in {url}: .cls is {texts[ext]!r}, not an integer") from None


def _scan(url: str) -> tuple[list[tuple[str, dict[str, str], int]], int]:
    """(key, {ext: text}, offset) per sample in shard order, reading only the small text members,
    and where the shard's members end (-1 where it cannot be seeked: see `ShardIndex`).

    Text must be UTF-8: a caption decoded with replacement characters would hash (and train) as
    text nobody wrote, so a bad byte is an error naming the shard and the member.
    """
    out: dict[str, tuple[dict[str, str], int]] = {}
    end = [-1]
    with decoding(f"shard {url}", "re-create the shard or remove it from the pattern"):
        for name, offset, read in _members(url, end):
            if "." not in name.rpartition("/")[2]:
                continue
            key, ext = split_name(name)
            entry = out.setdefault(key, ({}, offset))[0]
            if ext in TEXT_EXTS:
                data = read()
                try:
                    entry[ext] = data.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise UserError(
                        f"shard {url}: member {name!r} is {describe(e)}; re-encode its text as UTF-8"
                    ) from None
    return [(key, texts, offset) for key, (texts, offset) in out.items()], end[0]


def _members(url: str, end: list[int]) -> Iterator[tuple[str, int, Any]]:
    """(member name, header offset or -1, () -> bytes) for the files in a shard.

    Local tars seek past image data; an uncompressed one also gives each member's byte offset and,
    in `end[0]`, where its members end, so a loader can later read any run of samples alone.
    """
    if _local(url):
        with tarfile.open(Path(url).expanduser(), "r:*") as tar:
            plain = isinstance(tar.fileobj, io.BufferedReader)  # gzip/bz2/xz offsets are not file bytes
            for member in tar:
                if member.isfile():
                    offset = member.offset if plain else -1
                    yield member.name, offset, lambda m=member: tar.extractfile(m).read()
            _check_end(tar, url)
            end[0] = tar.offset if plain else -1
        return
    import webdataset as wds

    for sample in wds.DataPipeline(wds.SimpleShardList([url]), wds.tarfile_to_samples()):
        for ext, data in sample.items():
            if not ext.startswith("__"):
                yield f"{sample['__key__']}.{ext}", -1, lambda d=data: d


def _check_end(tar: tarfile.TarFile, url: str) -> None:
    """A complete tar ends with a zero block where its last member ends.

    tarfile stops silently at a header it cannot read past the first one, and seeking past image
    data never notices the file ended: without this check a truncated shard reads as a shorter one.
    """
    tar.fileobj.seek(tar.offset)
    block = tar.fileobj.read(tarfile.BLOCKSIZE)
    if len(block) < tarfile.BLOCKSIZE or block.count(0) != tarfile.BLOCKSIZE:
        raise UserError(
            f"shard {url} is truncated or damaged after byte {tar.offset} (no end-of-archive block "
            f"where its members end); re-create the shard or remove it from the pattern"
        )


def split_name(name: str) -> tuple[str, str]:
    """webdataset's convention: key = path up to the first dot of the basename, ext = the rest."""
    folder, _, base = name.rpartition("/")
    stem, _, ext = base.partition(".")
    return (f"{folder}/{stem}" if folder else stem), ext.lower()
