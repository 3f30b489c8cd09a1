"""Hugging Face datasets in every local form, and from the Hub when the network allows.

    /data/cifar10            a `save_to_disk` folder (Dataset or DatasetDict)
    /data/train.parquet      a parquet or arrow file (one split)
    /data/cifar10-parquet    a folder of parquet or arrow files (splits from the file names, as on the Hub)
    hf-hub:uoft-cs/cifar10   `datasets.load_dataset(NAME, split=...)`; offline this is a one-line error

Class names come from the label column's ClassLabel feature, which `save_to_disk`, `to_parquet`
and the arrow files all carry in their schema.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nmlbench.errors import UserError
from nmlbench.readers.base import (
    FORMATS,
    ReadSpec,
    Records,
    decode_image,
    existing,
    labels_from,
    pick_column,
    row_ids,
    string_array,
)

HUB_PREFIX = "hf-hub:"
FILE_BUILDERS = {".parquet": "parquet", ".arrow": "arrow"}
HOW = "pass a save_to_disk folder, a .parquet/.arrow file or folder, or hf-hub:NAME for the Hub"


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200]}" if text else type(e).__name__


def _pick_split(ds: Any, spec: ReadSpec, where: str) -> Any:
    import datasets

    if not isinstance(ds, datasets.DatasetDict):
        return ds
    if spec.split not in ds:
        raise UserError(f"{where} has no split {spec.split!r}; choose one of {sorted(ds)} as the split")
    return ds[spec.split]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """No progress bars or error logs from `datasets` while it reads a local file: a bad file must
    give our one-line error only, and converting a local file to its cache takes seconds."""
    import datasets

    logger = logging.getLogger("datasets")
    level, bars = logger.level, datasets.is_progress_bar_enabled()
    logger.setLevel(logging.CRITICAL)
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        logger.setLevel(level)
        if bars:
            datasets.enable_progress_bars()


def _load_local(builder: str, where: str, **kwargs: Any) -> Any:
    import datasets

    try:
        with _quiet():
            return datasets.load_dataset(builder, **kwargs)
    except Exception as e:  # noqa: BLE001 - pyarrow/datasets raise many types for one bad file
        raise UserError(
            f"cannot read {where} ({_short(e)}); check that it is a valid {builder} dataset"
        ) from None


def open_hf(spec: ReadSpec) -> tuple[Any, str]:
    """The `datasets.Dataset` the spec names (its split chosen) and how to name it in messages."""
    import datasets

    if spec.path.startswith(HUB_PREFIX):
        name = spec.path[len(HUB_PREFIX) :]
        where = f"HF Hub dataset {name!r}"
        try:
            return datasets.load_dataset(name, split=spec.split), where
        except Exception as e:  # noqa: BLE001 - offline, unknown name, bad split, auth: all user-fixable
            raise UserError(
                f"cannot load {where} split {spec.split!r} ({_short(e)}); check the name, the split and "
                "the network, or save it with save_to_disk and pass the folder"
            ) from None
    path = existing(spec.path, "HF dataset", HOW)
    where = f"HF dataset {path}"
    if path.is_dir() and any((path / f).is_file() for f in ("state.json", "dataset_dict.json")):
        try:
            ds = datasets.load_from_disk(str(path))
        except (FileNotFoundError, ValueError, OSError) as e:
            raise UserError(
                f"{path} is not a complete save_to_disk folder ({_short(e)}); save it again"
            ) from None
        return _pick_split(ds, spec, where), where
    if path.is_file():
        builder = FILE_BUILDERS.get(path.suffix.lower())
        if builder is None:
            raise UserError(f"{path}: unknown HF dataset file type {path.suffix!r}; {HOW}")
        return _load_local(builder, where, data_files=str(path), split="train"), where
    found = [b for s, b in FILE_BUILDERS.items() if next(path.rglob(f"*{s}"), None) is not None]
    if len(found) != 1:
        what = "both .parquet and .arrow files" if found else "no .parquet or .arrow files"
        raise UserError(f"{path} is not a save_to_disk folder and has {what}; {HOW}")
    return _pick_split(_load_local(found[0], where, data_dir=str(path)), spec, where), where


@FORMATS.register("hf")
def read_hf(spec: ReadSpec) -> Records:
    """Ids ('id' column, else the row number), ClassLabel names, captions and (optionally) images."""
    import datasets

    ds, where = open_hf(spec)
    cols = ds.column_names
    id_col = pick_column(spec, "id", cols, ["id"], where)
    label_col = pick_column(spec, "label", cols, ["label"], where)
    cap_col = pick_column(spec, "caption", cols, ["caption"], where)
    img_col = pick_column(spec, "image", cols, ["image", "img"], where) if spec.images else None
    wanted = [c for c in (id_col, label_col, cap_col) if c]
    table = ds.select_columns(wanted).with_format("arrow")[:] if wanted else None
    ids = string_array(table.column(id_col), where, "id") if id_col else row_ids(len(ds))
    if len(ds) == 0:
        raise UserError(f"{where} has no samples; point it at a non-empty dataset")
    labels, classes = None, None
    if label_col:
        feature = ds.features[label_col]
        names = feature.names if isinstance(feature, datasets.ClassLabel) else None
        labels, classes = labels_from(
            table.column(label_col), spec.num_classes, f"{where} column {label_col!r}", names
        )
    captions = string_array(table.column(cap_col), where, "caption") if cap_col else None
    load = None
    if spec.images:
        if img_col is None:
            raise UserError(
                f"{where} has no image column (it has: {', '.join(cols)}); "
                f"name it with {spec.option.format('image')}"
            )
        try:  # keep the encoded bytes: we decode ourselves and count the samples that fail
            images = ds.select_columns([img_col]).cast_column(img_col, datasets.Image(decode=False))
        except (ValueError, TypeError) as e:
            raise UserError(f"{where}: column {img_col!r} does not hold images ({_short(e)})") from None
        load = _loader(images, img_col)
    return Records(ids, labels, classes, captions, where, load=load)


def _loader(images: Any, column: str) -> Any:
    def load(i: int) -> Any:
        cell = images[int(i)][column] or {}
        data = cell.get("bytes") or (Path(cell["path"]).read_bytes() if cell.get("path") else b"")
        return decode_image(data)

    return load
