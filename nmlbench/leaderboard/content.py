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


def table_content(task: str, table: pa.Table) -> tuple[str, list[str]]:
    """(content hash, prediction flags) of a checked predictions table (sample_id, label, pred)."""
    ids = np.asarray(table.column("sample_id").to_pylist(), dtype=str)
    labels, preds = table.column("label").to_numpy(), table.column("pred").to_numpy()
    return content_hash(task, ids, preds), prediction_flags(labels, preds) if len(preds) else []


def file_content(task: str, path: Path) -> tuple[str, list[str]]:
    """`table_content` of a predictions file already accepted on the board."""
    return table_content(task, pq.read_table(path, columns=["sample_id", "label", "pred"]))
