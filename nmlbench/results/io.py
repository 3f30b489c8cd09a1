"""Writing and reading result records (docs/results.md): atomic, skip-if-present, schema-versioned."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from nmlbench.errors import UserError
from nmlbench.io import atomic_path, sha256_file, write_json
from nmlbench.paths import output_root

FORMAT = "nmlbench-result"
SCHEMA_VERSION = 1


def safe_name(text: str) -> str:
    """A file-name-safe form of a model/task name ('open_clip:RN50:openai' keeps its colons)."""
    return re.sub(r"[^A-Za-z0-9._:+=@-]+", "-", str(text)).strip("-._") or "x"


def make_run_id(model: str, method: str, task: str, seed: int, config_key: str) -> str:
    """`<model>__<method>__<task>__s<seed>__<config key>`: the record's stable file stem."""
    return "__".join([safe_name(model), method, safe_name(task), f"s{seed}", config_key])


def record_path(root: str | Path | None, suite: str, run_id: str) -> Path:
    return output_root(root) / "results" / safe_name(suite) / f"{run_id}.json"


def write_predictions(
    record_file: Path, ids: np.ndarray, labels: np.ndarray, preds: np.ndarray
) -> dict[str, Any]:
    """predictions/<run_id>.parquet beside the record; returns the record's `predictions` block."""
    rel = f"predictions/{record_file.stem}.parquet"
    dest = record_file.parent / rel
    table = pa.table(
        {
            "sample_id": pa.array([str(i) for i in ids], pa.string()),
            "label": pa.array(np.asarray(labels, dtype=np.int64)),
            "pred": pa.array(np.asarray(preds, dtype=np.int64)),
        }
    )
    with atomic_path(dest) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return {"path": rel, "sha256": sha256_file(dest), "n": int(len(ids))}


class InvalidRecord(ValueError):
    """A record nmlbench built does not match its schema: a bug, so it keeps its traceback."""


def non_finite(obj: Any, where: str = "") -> str | None:
    """The JSON path of the first NaN or infinity in `obj`, else None.

    `json.dumps` would write them as the bare tokens NaN / Infinity, which are not JSON: strict
    readers (and `leaderboard submit`) refuse the file, so they must never reach disk.
    """
    if isinstance(obj, float) and not math.isfinite(obj):
        return where or "<top level>"
    if isinstance(obj, dict):
        items: Any = obj.items()
    elif isinstance(obj, (list, tuple)):
        items = enumerate(obj)
    else:
        return None
    for k, v in items:
        found = non_finite(v, f"{where}/{k}" if where else str(k))
        if found:
            return found
    return None


def check_record(record: dict[str, Any], kind: str = "result") -> None:
    """Refuse a record with a NaN/infinity anywhere or one that breaks leaderboard/schema/<kind>.v1.json."""
    # The schema files and their validator sit with the leaderboard (the one copy submitters read);
    # imported here, lazily, so writing is checked against exactly what `submit` will check.
    from nmlbench.leaderboard.schema import schema_errors

    bad = non_finite(record)
    if bad:
        raise InvalidRecord(f"{kind} record has a non-finite number at {bad}; not written")
    errors = schema_errors(record, kind)
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise InvalidRecord(f"{kind} record does not match {kind}.v1.json: {errors[0]}{more}; not written")


def write_record(path: Path, record: dict[str, Any]) -> Path:
    """Validate, then write atomically; the record is complete or absent, never half-written or invalid."""
    if record.get("format") != FORMAT or record.get("schema_version") != SCHEMA_VERSION:
        raise InvalidRecord("record lacks format/schema_version; build it with nmlbench.eval.run")
    check_record(record, "result")
    return write_json(path, record)


def read_record(path: str | Path) -> dict[str, Any]:
    """Read a record, refusing other formats and schema versions with a one-line reason."""
    path = Path(path)
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(
            f"cannot read result record {path} ({type(e).__name__}); delete it to recompute the cell"
        ) from None
    if rec.get("format") != FORMAT:
        raise UserError(f"{path} is not a nmlbench result record")
    if rec.get("schema_version") != SCHEMA_VERSION:
        raise UserError(
            f"{path}: result schema_version {rec.get('schema_version')!r}, this nmlbench reads "
            f"{SCHEMA_VERSION}; re-run `nmlbench evaluate` for it"
        )
    return rec


def is_complete(path: Path) -> bool:
    """A finished cell: its record reads back and its predictions file exists."""
    if not path.is_file():
        return False
    try:
        rec = read_record(path)
    except UserError:
        return False
    return (path.parent / rec["predictions"]["path"]).is_file()
