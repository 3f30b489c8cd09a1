"""The reader contract shared by `nmlbench noise` and `nmlbench pretrain`: a dataset on disk -> `Records`.

A noise manifest is only usable if pretraining later sees exactly the ids, labels and captions the
noise stage saw; both stages therefore read every format through these readers, never their own copy.
"""

from __future__ import annotations

import contextlib
import io
import tarfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
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


@dataclass(frozen=True)
class ShardIndex:
    """Where each sample of a set of shards starts, so a loader can read any run of samples alone.

    Samples are in data order (shard by shard, members in tar order). An offset is the byte where
    the sample's first tar header starts; -1 for a shard that cannot be seeked (compressed or
    remote), which a loader must then read from its start.

    Attributes:
        counts: (S,) samples per shard.
        offsets: (N,) int64 byte offset of each sample's first member header, or -1.
        ends: (S,) byte where each shard's last member ends (its end-of-archive block), or -1.
    """

    counts: np.ndarray
    offsets: np.ndarray
    ends: np.ndarray


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
        shard_index: per-sample positions in `shards` (webdataset), else None.
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
    shard_index: ShardIndex | None = None


FORMATS: Registry[Callable[[ReadSpec], Records]] = Registry("data format")

# What a damaged or foreign file raises while it is parsed: truncated archives, bytes that are not
# UTF-8, a parquet/CSV/JSON body pyarrow cannot parse, a zip or npy header numpy cannot read.
# OSError is here because decoders report bad content with it (gzip, PIL, tarfile's "empty header"),
# without an errno; one with an errno is the file system's, and `decoding` lets it through.
DECODE_ERRORS: tuple[type[BaseException], ...] = (
    UnicodeDecodeError,
    tarfile.TarError,
    zipfile.BadZipFile,
    EOFError,
    pa.ArrowException,
    OSError,
    ValueError,
)


def describe(e: BaseException) -> str:
    """One short line for a decoding error (its message can span lines or hold raw bytes)."""
    if isinstance(e, UnicodeDecodeError):
        return f"not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start})"
    if isinstance(e, FileNotFoundError):
        return f"{e.filename or 'a file'} does not exist"
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    text = lines[0].rstrip(":") if lines else type(e).__name__
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= 160 else text[:157] + "..."


@contextlib.contextmanager
def decoding(where: str, fix: str = "re-create it or point at another copy") -> Iterator[None]:
    """Turn any decoding error raised inside into one UserError naming `where` and the fix.

    Every reader of source data (noise, pretrain, task readers) runs its parsing inside this, so
    a truncated shard, a non-UTF-8 CSV header or a foreign file named .npz all read the same way:
    `cannot read <file>: <what is wrong>; <fix>`.
    """
    try:
        yield
    except UserError:
        raise
    except DECODE_ERRORS as e:
        if isinstance(e, OSError) and isinstance(e.errno, int):  # the file system's answer (no such
            raise  # file, permission, name too long): the CLI's OS-error line names the path and fix
        raise UserError(f"cannot read {where}: {describe(e)}; {fix}") from None


def check_ids(ids: pa.Array, where: str, fix: str = "fill the id column") -> None:
    """Sample ids must be present and non-empty: '' would collide across sources and in manifests."""
    arr = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
    missing = arr.null_count
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        missing += int(pc.sum(pc.equal(pc.utf8_length(arr), 0)).as_py() or 0)
    if missing:
        raise UserError(f"{where} has {missing} samples with a null or empty id; {fix}")


def read_records(spec: ReadSpec) -> Records:
    """Read `spec.path` in `spec.format`; anything wrong with the data is a one-line UserError."""
    reader = FORMATS.get(spec.format)
    with decoding(f"{spec.format} data {spec.path}"):
        rec = reader(spec)
    check_ids(
        rec.ids, rec.where, f"give every sample an id (or name another with {spec.option.format('id')})"
    )
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
    if pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type):
        raise UserError(f"{where}: the {what}s are not UTF-8 text; save them as UTF-8")
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
    if isinstance(arr, list):
        arr = _python_labels(arr, where)
    elif not isinstance(arr, pa.Array):
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
        _check_not_mixed(arr, where)
        found = sorted(pc.unique(arr).to_pylist())
        names = [str(n) for n in names] if names is not None else found
        idx = pc.index_in(arr, pa.array(names, arr.type))
        if idx.null_count:
            first = arr.filter(pc.is_null(idx))[0].as_py()
            raise UserError(f"{where}: label {first!r} is not one of its classes {names}; fix the labels")
        return np.asarray(idx, dtype=np.int64), names
    if pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type):
        raise UserError(f"{where}: labels are not UTF-8 text; save the file as UTF-8")
    if pa.types.is_floating(arr.type):
        raise UserError(
            f"{where}: labels are floating-point numbers (e.g. {arr[0].as_py()!r}); "
            "write integer labels (3, not 3.0) or class names"
        )
    raise UserError(f"{where}: labels must be integers or class names, got {arr.type}")


_NUMBER = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"


def _check_not_mixed(arr: pa.Array, where: str) -> None:
    """Class names that are partly numbers ('3', '3.0' and 'cat') would become three unrelated classes."""
    numeric = pc.match_substring_regex(arr, _NUMBER)
    n_num = int(pc.sum(numeric).as_py() or 0)
    if 0 < n_num < len(arr):
        num = arr.filter(numeric)[0].as_py()
        name = arr.filter(pc.invert(numeric))[0].as_py()
        raise UserError(
            f"{where}: labels mix numbers (e.g. {num!r}) and class names (e.g. {name!r}); "
            "use one kind: integers 0..C-1 or class names"
        )


def _python_labels(values: list[Any], where: str) -> pa.Array:
    """Labels read one by one (shard json / .cls): all ints or all class names, never a mix."""
    kinds = {type(v) for v in values}
    if bool in kinds or float in kinds:
        bad = next(v for v in values if isinstance(v, bool | float))
        raise UserError(
            f"{where}: label {bad!r} is not an integer or a class name; "
            "write integer labels (3, not 3.0 or true) or class names"
        )
    if kinds - {int, str}:
        odd = next(v for v in values if not isinstance(v, int | str))
        raise UserError(f"{where}: label {odd!r} is not an integer or a class name; fix the labels")
    if kinds == {int, str}:
        num = next(v for v in values if isinstance(v, int))
        name = next(v for v in values if isinstance(v, str))
        raise UserError(
            f"{where}: labels mix integers (e.g. {num!r}) and class names (e.g. {name!r}); "
            "use one kind: integers 0..C-1 or class names"
        )
    return pa.array(values, pa.int64() if kinds == {int} else pa.string())


def decode_image(data: bytes | None) -> Image.Image | None:
    """RGB image from encoded bytes; None when they do not decode (the loader counts and skips those)."""
    if not data:
        return None
    try:
        img = Image.open(io.BytesIO(data))
        return img.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
