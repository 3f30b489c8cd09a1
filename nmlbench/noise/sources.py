"""Sources: read a dataset into a `SampleTable` (ids + clean labels or caption hashes), never modifying it.

Readers are registered in `SOURCES`: `mini` (the built-in benchmark), `imagefolder` (ImageNet
layout; id = relative path), `labels` / `captions` (CSV, TSV, parquet or JSON-lines tables), `wds`
(webdataset shards; id = `__key__`) and `hf` (a `datasets` dataset saved with `save_to_disk`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from nmlbench.errors import UserError
from nmlbench.noise.base import SampleTable, make_table
from nmlbench.registry import Registry

SOURCES: Registry[Callable[[SourceSpec, str], SampleTable]] = Registry("source type")
_SPLIT_NAMES = {"train", "val", "valid", "validation", "test", "shards", "data"}


@dataclass(frozen=True)
class SourceSpec:
    """Where the clean data is and how to read it."""

    type: str  # a key of SOURCES: mini, imagefolder, labels, captions, wds, hf
    path: str = ""  # directory, file or shard pattern ('' for mini: its default cache)
    name: str = ""  # dataset name in the output path; derived from `path` when empty
    id_column: str = "id"  # tables / HF: the sample-id column (HF falls back to the row index)
    label_column: str = "label"  # tables / HF / json in shards; shards also read a `.cls` member
    caption_column: str = "caption"  # tables / HF / json key in shards; shards also read `.txt`
    split: str = "train"  # HF DatasetDict split
    num_classes: int | None = None  # integer labels: the class count (else max label + 1)

    def dataset_name(self) -> str:
        """`name`, else 'mini', else the shards' directory / the folder or file name ('imagenet-train')."""
        if self.name or self.type == "mini":
            return self.name or "mini"
        if "{" in self.path:  # a shard pattern: name it after the directory holding the shards
            stem = Path(self.path.split("{")[0]).parent.name
        else:
            p = Path(self.path.rstrip("/"))
            stem = p.name if p.is_dir() else p.stem
            if stem.lower() in _SPLIT_NAMES:
                stem = f"{p.parent.name}-{stem}"
        return "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in stem).strip("-.") or self.type


def read_source(spec: SourceSpec, target: str) -> SampleTable:
    """Read `spec` for a label ('label') or caption ('caption') kind; both where the source has both."""
    return SOURCES.get(spec.type)(spec, target)


def hash_texts(texts: Iterable[str]) -> list[str]:
    """Hex sha256 of each caption's UTF-8 text (no normalisation: the exact stored text)."""
    return [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]


def _hash_strings(h: hashlib._Hash, arr: pa.Array) -> None:
    arr = arr.cast(pa.large_string())
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
    h.update(np.diff(offsets).tobytes())  # lengths, so ['ab','c'] and ['a','bc'] differ
    if arr.buffers()[2] is not None:
        h.update(memoryview(arr.buffers()[2])[int(offsets[0]) : int(offsets[-1])])


def fingerprint(table: SampleTable) -> str:
    """sha256 of the table's content (ids, classes, labels, caption hashes): equal data, equal print."""
    h = hashlib.sha256()
    _hash_strings(h, table.ids)
    if table.caption_sha256 is not None:
        _hash_strings(h, table.caption_sha256)
    if table.labels is not None:
        h.update(json.dumps(list(table.classes)).encode())
        h.update(table.labels.astype("<i8").tobytes())
    return h.hexdigest()


def _existing(path: str, what: str) -> Path:
    p = Path(path).expanduser()
    if not path or not p.exists():
        raise UserError(f"{what} {path!r} does not exist; check the path")
    return p


def _classes_from(values: pa.Array, num_classes: int | None, where: str) -> tuple[np.ndarray, list[str]]:
    """Integer labels keep their value (names '0'..'C-1'); string labels index their sorted names."""
    if len(values) == 0:
        raise UserError(f"{where} has no samples; point it at a non-empty dataset")
    if pa.types.is_integer(values.type):
        labels = values.to_numpy(zero_copy_only=False)
        c = num_classes if num_classes is not None else int(labels.max()) + 1
        return labels.astype(np.int64), [str(i) for i in range(max(c, 0))]
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        names = sorted(pc.unique(values).to_pylist())
        return np.asarray(pc.index_in(values, pa.array(names)), dtype=np.int64), names
    raise UserError(f"{where}: labels must be integers or class names, got {values.type}")


@SOURCES.register("mini")
def read_mini(spec: SourceSpec, target: str) -> SampleTable:
    try:
        from nmlbench.mini import load_upstream
    except ImportError:
        raise UserError(
            "the built-in mini benchmark (nmlbench.mini) is not available in this install; "
            "reinstall nmlbench or use another source"
        ) from None
    up = load_upstream(data_dir=spec.path or None)
    return make_table(
        up.ids,
        labels=up.labels,
        classes=list(up.classes),
        caption_sha256=hash_texts(up.captions),
        where="mini benchmark",
    )


@SOURCES.register("imagefolder")
def read_imagefolder(spec: SourceSpec, target: str) -> SampleTable:
    """ImageNet layout root/<class>/<file>; classes sorted as torchvision's ImageFolder sorts them."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

    root = _existing(spec.path, "image folder")
    if target != "label":
        raise UserError("an image folder has labels, not captions; use --type sym or asym")
    try:
        classes, class_to_idx = find_classes(str(root))
        samples = make_dataset(str(root), class_to_idx, extensions=IMG_EXTENSIONS, allow_empty=True)
    except (FileNotFoundError, NotADirectoryError) as e:
        raise UserError(f"image folder {root}: {e}; use the ImageNet layout root/<class>/<image>") from None
    cut = len(os.path.join(str(root), ""))
    ids = [p[cut:].replace(os.sep, "/") for p, _ in samples]
    labels = np.fromiter((c for _, c in samples), dtype=np.int64, count=len(samples))
    return make_table(ids, labels=labels, classes=classes, where=f"image folder {root}")


def _read_table_file(path: Path, columns: list[str]) -> pa.Table:
    import pyarrow.csv as pcsv
    import pyarrow.json as pjson
    import pyarrow.parquet as pq

    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            table = pq.read_table(path)
        elif suffix in (".csv", ".tsv"):
            table = pcsv.read_csv(
                path,
                parse_options=pcsv.ParseOptions(delimiter="\t" if suffix == ".tsv" else ","),
                convert_options=pcsv.ConvertOptions(column_types={columns[0]: pa.string()}),
            )
        elif suffix in (".jsonl", ".json"):
            table = pjson.read_json(path)
        else:
            raise UserError(f"table {path} has an unknown format; use .csv, .tsv, .parquet or .jsonl")
    except pa.ArrowInvalid as e:
        raise UserError(f"cannot read table {path}: {str(e).splitlines()[0]}") from None
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise UserError(
            f"table {path} has no column {missing[0]!r} (columns: {', '.join(table.column_names)});"
            " name it with --id-column / --label-column / --caption-column"
        )
    return table


def _read_table(spec: SourceSpec, target: str) -> SampleTable:
    path = _existing(spec.path, "table")
    if (spec.type == "captions") != (target == "caption"):
        raise UserError(
            f"--{spec.type} {path} gives {spec.type}, but {target} noise was asked for; "
            f"use --{'labels' if target == 'label' else 'captions'} or the other --type"
        )
    col = spec.label_column if target == "label" else spec.caption_column
    table = _read_table_file(path, [spec.id_column, col])
    ids = table.column(spec.id_column).combine_chunks().cast(pa.string())
    values = table.column(col).combine_chunks()
    where = f"table {path}"
    if values.null_count:
        raise UserError(f"{where}: {values.null_count} rows have an empty {col!r}; fill or drop them")
    if target == "label":
        labels, classes = _classes_from(values, spec.num_classes, where)
        return make_table(ids, labels=labels, classes=classes, where=where)
    return make_table(ids, caption_sha256=hash_texts(values.cast(pa.string()).to_pylist()), where=where)


SOURCES.add("labels", _read_table)
SOURCES.add("captions", _read_table)


def expand_shards(pattern: str) -> list[str]:
    """'shards-{000000..000009}.tar' -> the shard paths, each checked to exist (local files)."""
    import braceexpand

    urls = list(braceexpand.braceexpand(pattern))
    if not urls:
        raise UserError(f"shard pattern {pattern!r} names no shard")
    for u in urls:
        if "://" not in u and not u.startswith("pipe:") and not Path(u).expanduser().is_file():
            raise UserError(f"shard {u} (from {pattern!r}) does not exist; check the pattern")
    return urls


def _wds_value(sample: dict, target: str, spec: SourceSpec) -> str | int:
    """A sample's label (.cls, or the json's label key) or caption (the json's caption key, else .txt)."""
    key = spec.label_column if target == "label" else spec.caption_column
    if "json" in sample:
        try:
            meta = json.loads(sample["json"])
        except json.JSONDecodeError:
            meta = None  # not our metadata: fall back to .cls / .txt, as the pretrain reader does
        if isinstance(meta, dict) and key in meta:
            return meta[key] if target == "label" else str(meta[key])
    ext = "cls" if target == "label" else "txt"
    if ext not in sample:
        raise UserError(
            f"shard sample {sample['__key__']!r} in {sample.get('__url__')} has no .{ext} or json "
            f"{key!r}; fix the shards or name the key with --label-column / --caption-column"
        )
    text = sample[ext].decode("utf-8")
    if target == "label":
        try:
            return int(text.strip())
        except ValueError:
            raise UserError(f"shard sample {sample['__key__']!r}: .cls is {text!r}, not an integer") from None
    return text


@SOURCES.register("wds")
def read_wds(spec: SourceSpec, target: str) -> SampleTable:
    """Stream shards without decoding images; captions from .txt/.json, labels from .cls/.json."""
    import webdataset as wds

    urls = expand_shards(spec.path)
    keys: list[str] = []
    values: list = []
    stream = wds.WebDataset(urls, shardshuffle=False, empty_check=False)
    for sample in tqdm(stream, desc="reading shards", unit="sample", mininterval=1.0):
        keys.append(sample["__key__"])
        values.append(_wds_value(sample, target, spec))
    where = f"shards {spec.path}"
    if target == "label":
        labels, classes = _classes_from(pa.array(values), spec.num_classes, where)
        return make_table(keys, labels=labels, classes=classes, where=where)
    return make_table(keys, caption_sha256=hash_texts(values), where=where)


@SOURCES.register("hf")
def read_hf(spec: SourceSpec, target: str) -> SampleTable:
    """A `datasets` Dataset/DatasetDict from `save_to_disk`; ClassLabel names become the classes."""
    import datasets

    path = _existing(spec.path, "HF dataset directory")
    try:
        ds = datasets.load_from_disk(str(path))
    except FileNotFoundError as e:
        raise UserError(f"{path} is not a dataset saved with save_to_disk ({e})") from None
    if isinstance(ds, datasets.DatasetDict):
        if spec.split not in ds:
            raise UserError(f"HF dataset {path} has no split {spec.split!r}; choose one of {sorted(ds)}")
        ds = ds[spec.split]
    col = spec.label_column if target == "label" else spec.caption_column
    if col not in ds.column_names:
        raise UserError(
            f"HF dataset {path} has no column {col!r} (columns: {', '.join(ds.column_names)});"
            " name it with --label-column / --caption-column"
        )
    has_id = spec.id_column in ds.column_names
    table = ds.select_columns([col] + ([spec.id_column] if has_id else [])).with_format("arrow")[:]
    # Without an id column the row index is the id: stable for a dataset saved to disk.
    ids = (
        table.column(spec.id_column).combine_chunks().cast(pa.string())
        if has_id
        else pc.utf8_lpad(pa.array(np.arange(len(table)).astype(str)), 9, "0")
    )
    values = table.column(col).combine_chunks()
    where = f"HF dataset {path}"
    if target == "label":
        feature = ds.features[col]
        if isinstance(feature, datasets.ClassLabel):
            return make_table(
                ids, labels=values.to_numpy(zero_copy_only=False), classes=feature.names, where=where
            )
        labels, classes = _classes_from(values, spec.num_classes, where)
        return make_table(ids, labels=labels, classes=classes, where=where)
    return make_table(ids, caption_sha256=hash_texts(values.cast(pa.string()).to_pylist()), where=where)
