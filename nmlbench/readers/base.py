"""The reader contract shared by `nmlbench noise` and `nmlbench pretrain`: a dataset on disk -> `Records`.

A noise manifest is only usable if pretraining later sees exactly the ids, labels and captions the
noise stage saw; both stages therefore read every format through these readers, never their own copy.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from PIL import Image

from nmlbench.errors import UserError
from nmlbench.registry import Registry

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")
ROW_ID_DIGITS = 9  # ids of data without an id column: the row number, '000000042'


@dataclass(frozen=True)
class ReadSpec:
    """What to read and which columns hold what.

    A column left as None takes the format's default when present ('id' else the row number, 'label',
    'caption', 'image'; npz: 'ids', 'labels', 'captions', 'images'); a named column must exist.
    """

    format: str  # a key of FORMATS: imagefolder, npz, wds, hf
    path: str  # folder, file, shard pattern or 'hf-hub:NAME', already resolved by the caller
    split: str = "train"  # HF: the split to read
    id_column: str | None = None
    label_column: str | None = None
    caption_column: str | None = None
    image_column: str | None = None  # HF column / npz array / shard extensions 'jpg;png'
    num_classes: int | None = None  # integer labels: the class count (else max label + 1)
    need: Literal["label", "caption"] | None = None  # missing -> UserError; None: read what is there
    images: bool = False  # also provide `Records.load` (pretraining decodes; noise never does)
    option: str = "--{}-column"  # how the caller's user names a column, for error messages


@dataclass
class Records:
    """One dataset's samples in data order.

    Attributes:
        ids: (N,) string array of unique sample ids.
        labels: (N,) int64 clean labels, or None.
        classes: class names, label i is classes[i] (None without labels).
        captions: (N,) string array of clean captions, or None.
        where: how to name the data in messages ('HF dataset /data/x').
        load: i -> PIL image, None when sample i cannot be decoded (only when `ReadSpec.images`).
        shards: webdataset shard paths (streamed; `load` unused), else empty.
        image_exts: shard members holding the image, in order of preference.
        pixels: an array of every image, where the format holds one in memory (npz), for fingerprints.
    """

    ids: pa.Array
    labels: np.ndarray | None
    classes: list[str] | None
    captions: pa.Array | None
    where: str
    load: Callable[[int], Any] | None = None
    shards: list[str] = field(default_factory=list)
    image_exts: tuple[str, ...] = IMAGE_EXTS
    pixels: np.ndarray | None = None


FORMATS: Registry[Callable[[ReadSpec], Records]] = Registry("data format")


def read_records(spec: ReadSpec) -> Records:
    """Read `spec.path` in `spec.format`; anything wrong with the data is a one-line UserError."""
    rec = FORMATS.get(spec.format)(spec)
    for what in ("label", "caption"):
        if spec.need == what and (rec.labels if what == "label" else rec.captions) is None:
            raise UserError(
                f"{rec.where} has no {what}s; name the {what} column with {spec.option.format(what)} "
                f"or use data with {what}s"
            )
    return rec


def existing(path: str, what: str, how: str) -> Path:
    p = Path(path).expanduser()
    if not path or not p.exists():
        raise UserError(f"{what} {path!r} does not exist; {how}")
    return p


def pick_column(
    spec: ReadSpec, role: str, available: Sequence[str], defaults: Sequence[str], where: str
) -> str | None:
    """The column for `role` ('id', 'label', ...): the named one (which must exist), else a default."""
    named = getattr(spec, f"{role}_column")
    if named is None:
        return next((c for c in defaults if c in available), None)
    if named not in available:
        raise UserError(
            f"{where} has no {role} column {named!r} (it has: {', '.join(map(str, available)) or 'none'}); "
            f"name one of them with {spec.option.format(role)}"
        )
    return named


def row_ids(n: int) -> pa.Array:
    """'000000000', '000000001', ...: stable ids for data without an id column."""
    return pc.utf8_lpad(pa.array(np.arange(n).astype(str)), ROW_ID_DIGITS, "0")


def string_array(values: Any, where: str, what: str) -> pa.Array:
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if not isinstance(arr, pa.Array):
        arr = pa.array(np.asarray(values).tolist() if isinstance(values, np.ndarray) else values)
    if arr.null_count:
        raise UserError(f"{where}: {arr.null_count} samples have no {what}; fill or drop them")
    try:
        return arr.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise UserError(f"{where}: {what}s must be strings or numbers, got {arr.type}") from None


def labels_from(
    values: Any, num_classes: int | None, where: str, names: Sequence[str] | None = None
) -> tuple[np.ndarray, list[str]]:
    """Labels and class names: `names` (a ClassLabel / npz classes) index the integers; otherwise
    integer labels keep their value (names '0'..'C-1') and string labels index their sorted names."""
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if not isinstance(arr, pa.Array):
        np_vals = np.asarray(values)
        arr = pa.array(np_vals.tolist() if np_vals.dtype.kind in "US" else np_vals)
    if len(arr) == 0:
        raise UserError(f"{where} has no samples; point it at a non-empty dataset")
    if arr.null_count:
        raise UserError(f"{where}: {arr.null_count} samples have no label; fill or drop them")
    if pa.types.is_integer(arr.type):
        labels = arr.to_numpy(zero_copy_only=False).astype(np.int64)
        if names is None:
            c = num_classes if num_classes is not None else int(labels.max()) + 1
            names = [str(i) for i in range(max(c, 0))]
        bad = np.flatnonzero((labels < 0) | (labels >= len(names)))
        if len(bad):
            raise UserError(
                f"{where}: label {labels[bad[0]]} (sample {bad[0]}) is outside 0..{len(names) - 1} for "
                f"{len(names)} classes; fix the labels or the class count"
            )
        return labels, [str(n) for n in names]
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        found = sorted(pc.unique(arr).to_pylist())
        names = [str(n) for n in names] if names is not None else found
        idx = pc.index_in(arr, pa.array(names, arr.type))
        if idx.null_count:
            first = arr.filter(pc.is_null(idx))[0].as_py()
            raise UserError(f"{where}: label {first!r} is not one of its classes {names}; fix the labels")
        return np.asarray(idx, dtype=np.int64), names
    raise UserError(f"{where}: labels must be integers or class names, got {arr.type}")


def decode_image(data: bytes | None) -> Image.Image | None:
    """RGB image from encoded bytes; None when they do not decode (the loader counts and skips those)."""
    if not data:
        return None
    try:
        img = Image.open(io.BytesIO(data))
        return img.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
