"""Sources: read a dataset into a `SampleTable` (ids + clean labels or caption hashes), never modifying it.

Readers are registered in `SOURCES`: `mini` and `mini-text` (the built-in benchmarks), `labels` /
`captions` (CSV, TSV, parquet or JSON-lines tables), and the image formats pretraining reads too, through
the shared `nmlbench.readers` (so a manifest always matches the data it is trained on): `imagefolder`
(ImageNet layout; id = relative path), `npz` (numpy archives as tasks read them), `wds` (webdataset shards;
id = `__key__`) and `hf` (a Hugging Face dataset: save_to_disk, parquet/arrow files, or hf-hub:NAME).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from nmlbench.errors import UserError
from nmlbench.noise.base import SampleTable, make_table
from nmlbench.readers import ReadSpec, labels_from, read_records
from nmlbench.readers import expand_shards as expand_shards
from nmlbench.readers.base import check_ids, decoding, describe, string_array
from nmlbench.registry import Registry

SOURCES: Registry[Callable[[SourceSpec, str], SampleTable]] = Registry("source type")
_SPLIT_NAMES = {"train", "val", "valid", "validation", "test", "shards", "data"}


@dataclass(frozen=True)
class SourceSpec:
    """Where the clean data is and how to read it."""

    type: str  # a key of SOURCES: mini, mini-text, imagefolder, npz, labels, captions, wds, hf
    path: str = ""  # directory, file, shard pattern or hf-hub:NAME ('' for mini: its default cache)
    name: str = ""  # dataset name in the output path; derived from `path` when empty
    # Columns (npz: arrays; shards: json keys). None: the format's default ('id' for tables; HF/npz
    # 'id'/'ids' when present, else the row number; 'label(s)'; 'caption(s)'); a named one must exist.
    id_column: str | None = None
    label_column: str | None = None
    caption_column: str | None = None
    split: str = "train"  # HF: the split
    num_classes: int | None = None  # integer labels: the class count (else max label + 1)

    def dataset_name(self) -> str:
        """`name`, else the built-in's name ('mini', 'mini-text'), else the shards' directory / the
        folder or file name ('imagenet-train')."""
        if self.name or self.type in BUILTIN:
            return self.name or self.type
        if "{" in self.path:  # a shard pattern: name it after the directory holding the shards
            stem = Path(self.path.split("{")[0]).parent.name
        else:
            p = Path(self.path.rstrip("/"))
            stem = p.name if p.is_dir() else p.stem
            if stem.lower() in _SPLIT_NAMES:
                stem = f"{p.parent.name}-{stem}"
        return "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in stem).strip("-.") or self.type


def read_source(spec: SourceSpec, target: str) -> SampleTable:
    """Read `spec` for a label ('label') or caption ('caption') kind; both where the source has both.

    Every source type is read inside `decoding`, so a damaged file is one UserError naming it
    (the image formats are also wrapped, file by file, in `nmlbench.readers`).
    """
    reader = SOURCES.get(spec.type)
    with decoding(f"{spec.type} source {spec.path or '(built-in)'}"):
        table = reader(spec, target)
    check_ids(table.ids, f"{spec.type} source {spec.path or '(built-in)'}")
    return table


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


@SOURCES.register("mini-text")
def read_mini_text(spec: SourceSpec, target: str) -> SampleTable:
    """The mini text benchmark's upstream corpus: topic labels. Its texts are the samples, not
    captions of them, so it has no caption noise (swapping texts would only move labels)."""
    if target == "caption":
        raise UserError("the mini-text corpus has labels, not captions; use a label kind (--type sym|asym)")
    from nmlbench.minitext import load_upstream

    up = load_upstream()
    return make_table(up.ids, labels=up.labels, classes=list(up.classes), where="mini text benchmark")


BUILTIN = ("mini", "mini-text")  # source types that need no path: generated by nmlbench


def _read_table_file(path: Path, columns: list[str]) -> pa.Table:
    import pyarrow.csv as pcsv
    import pyarrow.json as pjson
    import pyarrow.parquet as pq

    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            table = pq.read_table(path)  # keeps the schema metadata (HF ClassLabel names)
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
    except (pa.ArrowInvalid, UnicodeDecodeError) as e:
        fix = "write it again as parquet" if suffix == ".parquet" else f"save it as UTF-8 {suffix[1:]}"
        raise UserError(f"cannot read table {path}: {describe(e)}; {fix}") from None
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise UserError(
            f"table {path} has no column {missing[0]!r} (columns: {', '.join(table.column_names)});"
            " name it with --id-column / --label-column / --caption-column"
        )
    return table


def _classlabel_names(table: pa.Table, column: str) -> list[str] | None:
    """Class names a parquet file written by `datasets` keeps in its schema (a ClassLabel column)."""
    if b"huggingface" not in (table.schema.metadata or {}):
        return None
    try:
        feature = json.loads(table.schema.metadata[b"huggingface"])["info"]["features"][column]
    except (KeyError, TypeError, ValueError):
        return None
    names = feature.get("names") if feature.get("_type") == "ClassLabel" else None
    return [str(n) for n in names] if names else None


def _read_table(spec: SourceSpec, target: str) -> SampleTable:
    path = _existing(spec.path, "table")
    if (spec.type == "captions") != (target == "caption"):
        raise UserError(
            f"--{spec.type} {path} gives {spec.type}, but {target} noise was asked for; "
            f"use --{'labels' if target == 'label' else 'captions'} or the other --type"
        )
    id_col = spec.id_column or "id"
    col = (spec.label_column or "label") if target == "label" else (spec.caption_column or "caption")
    table = _read_table_file(path, [id_col, col])
    ids = string_array(table.column(id_col), f"table {path}", "id")
    values = table.column(col).combine_chunks()
    where = f"table {path}"
    if values.null_count:
        raise UserError(f"{where}: {values.null_count} rows have an empty {col!r}; fill or drop them")
    if target == "label":
        labels, classes = labels_from(values, spec.num_classes, where, _classlabel_names(table, col))
        return make_table(ids, labels=labels, classes=classes, where=where)
    captions = string_array(values, where, "caption")
    return make_table(ids, caption_sha256=hash_texts(captions.to_pylist()), where=where)


SOURCES.add("labels", _read_table)
SOURCES.add("captions", _read_table)


FORMAT_OF = {"imagefolder": "imagefolder", "npz": "npz", "wds": "wds", "hf": "hf"}


def _read_shared(spec: SourceSpec, target: str) -> SampleTable:
    """imagefolder / npz / wds / hf through `nmlbench.readers`, the readers pretraining uses."""
    rec = read_records(
        ReadSpec(
            format=FORMAT_OF[spec.type],
            path=spec.path,
            split=spec.split,
            id_column=spec.id_column,
            label_column=spec.label_column,
            caption_column=spec.caption_column,
            num_classes=spec.num_classes,
            need="label" if target == "label" else "caption",
        )
    )
    if target == "label":
        return make_table(rec.ids, labels=rec.labels, classes=rec.classes, where=rec.where)
    return make_table(rec.ids, caption_sha256=hash_texts(rec.captions.to_pylist()), where=rec.where)


for _type in FORMAT_OF:
    SOURCES.add(_type, _read_shared)
