"""What a predictions file *says*, independent of how its bytes were written: the copy-detection key.

Two parquet files can hold the same predictions with different bytes (another row order, writer
version, compression), and two honest runs can write byte-identical files (a deterministic method
on two tuning seeds). So copies are found on the decoded table: sample id -> predicted class,
sorted by sample id and hashed in one canonical encoding, together with the task's name.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from nmlbench.eval.metrics import prediction_flags

ENCODING = "nmlbench-predictions-v1"  # bump if the canonical form below ever changes


def content_hash(task: str, ids: np.ndarray, preds: np.ndarray) -> str:
    """sha256 of (task, sample id -> prediction) in sample-id order; row order and bytes do not matter."""
    ids = np.asarray(ids).astype(str)
    order = np.argsort(ids, kind="stable")
    blob = json.dumps(
        [ENCODING, task, ids[order].tolist(), np.asarray(preds, dtype=np.int64)[order].tolist()],
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256(blob.encode("ascii")).hexdigest()


class PredictionsError(ValueError):
    """A predictions table that does not decode to (sample id: str, label: int, pred: int)."""


COLUMNS = ("sample_id", "label", "pred")


def _decode_ints(col: pa.ChunkedArray, name: str) -> np.ndarray:
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    if not pa.types.is_integer(col.type):
        raise PredictionsError(f"column {name} must hold integers, found {col.type}")
    values = col.to_numpy()
    if values.dtype == np.uint64 and len(values) and values.max() > np.iinfo(np.int64).max:
        raise PredictionsError(f"column {name} holds integers that do not fit int64")
    return values.astype(np.int64)


def decode_predictions(table: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sample ids, labels, predictions) as (str, int64, int64) arrays, however they were encoded.

    Column order, integer width and signedness, dictionary encoding, string vs large_string,
    compression and row groups are encodings, not content: they all decode to the same arrays,
    so a re-written copy hashes like the original. Anything else (floats, other columns, nulls)
    is not a predictions table.
    """
    names = sorted(table.column_names)
    if names != sorted(COLUMNS):
        raise PredictionsError(f"columns must be exactly {', '.join(COLUMNS)}, found {', '.join(names)}")
    for name in COLUMNS:
        if table.column(name).null_count:
            raise PredictionsError(f"column {name} contains null values")
    ids = table.column("sample_id")
    if pa.types.is_dictionary(ids.type):
        ids = ids.cast(ids.type.value_type)
    if not (pa.types.is_string(ids.type) or pa.types.is_large_string(ids.type)):
        raise PredictionsError(f"column sample_id must hold strings, found {ids.type}")
    labels, preds = _decode_ints(table.column("label"), "label"), _decode_ints(table.column("pred"), "pred")
    return np.asarray(ids.to_pylist(), dtype=str), labels, preds


def table_content(task: str, table: pa.Table) -> tuple[str, list[str]]:
    """(content hash, prediction flags) of a predictions table (sample_id, label, pred)."""
    ids, labels, preds = decode_predictions(table)
    return content_hash(task, ids, preds), prediction_flags(labels, preds) if len(preds) else []


def file_content(task: str, path: Path) -> tuple[str, list[str]]:
    """`table_content` of a predictions file already accepted on the board."""
    return table_content(task, pq.read_table(path))
