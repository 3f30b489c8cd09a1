"""The noise manifest: a per-sample parquet table plus a JSON sidecar carrying the parquet's sha256.

Parquet writer options are pinned so the same table always gives the same bytes (with the same
pyarrow version, which the sidecar records); nothing time-dependent is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from nmlbench.errors import UserError
from nmlbench.io import sha256_file
from nmlbench.noise.base import NoiseResult, SampleTable
from nmlbench.readers.base import check_ids

MANIFEST_NAME = "manifest.parquet"
SIDECAR_NAME = "manifest.json"
TOP_TRANSITIONS = 20
# Pinned so that equal tables give byte-identical files; zstd level 3 keeps 12 M rows fast.
PARQUET_OPTIONS: dict[str, Any] = dict(
    compression="zstd",
    compression_level=3,
    use_dictionary=["clean_label", "noisy_label", "corrupted"],
    write_statistics=True,
    version="2.6",
    data_page_version="1.0",
    row_group_size=1 << 20,
)


def manifest_table(table: SampleTable, result: NoiseResult) -> pa.Table:
    """The parquet content: one row per sample, sorted by sample_id (the table already is)."""
    ids = table.ids.cast(pa.string())
    if result.noisy_labels is not None:
        corrupted = result.noisy_labels != table.labels
        return pa.table(
            {
                "sample_id": ids,
                "clean_label": pa.array(table.labels, pa.int64()),
                "noisy_label": pa.array(result.noisy_labels, pa.int64()),
                "corrupted": pa.array(corrupted),
            }
        )
    corrupted = result.donors != np.arange(len(table))
    return pa.table(
        {
            "sample_id": ids,
            "caption_sha256": table.caption_sha256.cast(pa.string()),
            "donor_id": ids.take(pa.array(result.donors)),
            "corrupted": pa.array(corrupted),
        }
    )


def write_parquet(tbl: pa.Table, dest: Path) -> None:
    pq.write_table(tbl, dest, **PARQUET_OPTIONS)


def label_summary(clean: np.ndarray, noisy: np.ndarray, classes: list[str]) -> tuple[dict, dict]:
    """Per-class counts and the most frequent clean -> noisy transitions."""
    c = len(classes)
    flip = clean != noisy
    n = np.bincount(clean, minlength=c)
    out = np.bincount(clean[flip], minlength=c)
    into = np.bincount(noisy[flip], minlength=c)
    per_class = {
        name: {"n": int(n[i]), "flipped_out": int(out[i]), "flipped_in": int(into[i])}
        for i, name in enumerate(classes)
    }
    codes, counts = np.unique(clean[flip] * c + noisy[flip], return_counts=True)
    top = np.lexsort((codes, -counts))[:TOP_TRANSITIONS]  # most frequent first, ties by class index
    transitions = {
        "n_distinct": len(codes),
        "top": [
            {"from": classes[codes[i] // c], "to": classes[codes[i] % c], "count": int(counts[i])}
            for i in top
        ],
    }
    return per_class, transitions


def summarize(
    tbl: pa.Table, classes: list[str] | None = None, labels: np.ndarray | None = None
) -> dict[str, Any]:
    """Counts for the sidecar, recomputed from the manifest alone (audit calls this too).

    `realized_rate` is the share of corrupted rows (label changed; for captions: donor is another
    sample); caption manifests also get `n_text_changed` / `realized_text_rate`, the share whose
    caption text changed.

    Args:
        tbl: the manifest table.
        classes: class names (label manifests, or caption manifests of a labelled set).
        labels: caption manifests only: clean labels aligned with `tbl`'s rows, for per-class counts.
    """
    corrupted = tbl.column("corrupted").to_numpy()
    out: dict[str, Any] = {
        "n_samples": tbl.num_rows,
        "n_corrupted": int(corrupted.sum()),
        "per_class": {},
        "transitions": {},
    }
    out["realized_rate"] = round(out["n_corrupted"] / max(tbl.num_rows, 1), 12)
    donors = None
    if "donor_id" in tbl.column_names:
        # captions: a sample whose donor's caption has the same text (templated captions, e.g.
        # "a photo of a cat") carries a new donor but unchanged text, so report both rates
        donors = pc.index_in(tbl.column("donor_id"), tbl.column("sample_id")).to_numpy()
        sha = np.asarray(tbl.column("caption_sha256").to_numpy(zero_copy_only=False), dtype=object)
        out["n_text_changed"] = int((sha[donors] != sha).sum())
        out["realized_text_rate"] = round(out["n_text_changed"] / max(tbl.num_rows, 1), 12)
    if "noisy_label" in tbl.column_names and classes is not None:
        out["per_class"], out["transitions"] = label_summary(
            tbl.column("clean_label").to_numpy(), tbl.column("noisy_label").to_numpy(), classes
        )
    elif classes is not None and labels is not None and donors is not None:  # captions of a labelled set
        per_class, out["transitions"] = label_summary(labels, labels[donors], classes)
        hit = np.bincount(labels[corrupted], minlength=len(classes))
        # transitions: class of a sample -> class its donated caption describes
        out["per_class"] = {
            name: {"n": per_class[name]["n"], "corrupted": int(hit[i])} for i, name in enumerate(classes)
        }
    return out


def manifest_paths(path: str | Path) -> tuple[Path, Path]:
    """(parquet, sidecar) from either file or their directory."""
    p = Path(path)
    if p.is_dir():
        p = p / MANIFEST_NAME
    if p.suffix == ".json":
        p = p.with_name(MANIFEST_NAME)
    sidecar = p.with_name(SIDECAR_NAME)
    if not p.is_file() or not sidecar.is_file():
        raise UserError(
            f"no noise manifest at {p} (with {sidecar.name} beside it); create one with `nmlbench noise ...`"
        )
    return p, sidecar


def read_sidecar(path: str | Path) -> dict[str, Any]:
    import json

    _, sidecar = manifest_paths(path)
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"sidecar {sidecar} is not valid JSON ({e}); regenerate the manifest") from None
    if not isinstance(meta, dict):
        raise UserError(f"sidecar {sidecar} is not a JSON object; regenerate the manifest")
    return meta


def read_manifest_table(path: str | Path) -> tuple[pa.Table, dict[str, Any]]:
    """Like `read_manifest`, as a pyarrow Table (no pandas conversion for 12 M rows)."""
    parquet, _ = manifest_paths(path)
    meta = read_sidecar(parquet)
    if sha256_file(parquet) != meta.get("manifest_sha256"):
        raise UserError(
            f"manifest {parquet} does not match the sha256 in its sidecar (modified or corrupt); "
            "regenerate it with `nmlbench noise ... --overwrite`"
        )
    try:
        tbl = pq.read_table(parquet)
    except (pa.ArrowException, OSError) as e:
        raise UserError(f"manifest {parquet} is not a readable parquet file ({e}); regenerate it") from None
    for col in ("sample_id", "donor_id"):
        if col in tbl.column_names:
            check_ids(
                tbl.column(col), f"manifest {parquet} column {col!r}", "regenerate it with `nmlbench noise`"
            )
    return tbl, meta


def read_manifest(path: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read a manifest and its sidecar, verifying the parquet's sha256 against the sidecar.

    Raises:
        UserError: the files are missing, or the parquet was modified after it was written.
    """
    tbl, meta = read_manifest_table(path)
    return tbl.to_pandas(), meta


def _as_frame(manifest: str | Path | pd.DataFrame | tuple) -> pd.DataFrame:
    if isinstance(manifest, tuple):
        return manifest[0]
    return manifest if isinstance(manifest, pd.DataFrame) else read_manifest(manifest)[0]


def _positions(df: pd.DataFrame, ids: Any, exact: bool) -> np.ndarray:
    """Row of each id in the manifest; a UserError names the first id that is not there."""
    want = pa.array(np.asarray(ids, dtype=object), pa.string())
    have = pa.array(df["sample_id"], pa.string())
    pos = pc.index_in(want, value_set=have)
    if pos.null_count:
        first = want.filter(pc.is_null(pos))[0].as_py()
        raise UserError(
            f"{pos.null_count} sample id(s) are not in the noise manifest (e.g. {first!r}); "
            "the manifest is stale for this data: regenerate it with `nmlbench noise`"
        )
    pos_np = pos.to_numpy()
    if exact and (len(want) != len(have) or len(np.unique(pos_np)) != len(have)):
        raise UserError(
            f"the data has {len(want)} samples but the noise manifest has {len(have)}; "
            "the manifest is stale for this data: regenerate it with `nmlbench noise`"
        )
    return pos_np


def noisy_labels_for(manifest: Any, ids: Any, clean_labels: Any = None, exact: bool = True) -> np.ndarray:
    """Noisy labels aligned with `ids` (any order).

    Args:
        manifest: manifest path, its DataFrame, or `read_manifest`'s tuple.
        ids: the sample ids of the data being loaded.
        clean_labels: if given, checked against the manifest's clean labels (a stale manifest fails).
        exact: require the data and the manifest to hold the same set of ids (False: a subset is fine).
    """
    df = _as_frame(manifest)
    if "noisy_label" not in df.columns:
        raise UserError(
            "this noise manifest is for captions, not labels; use donor_ids_for or a label manifest"
        )
    pos = _positions(df, ids, exact)
    if clean_labels is not None:
        diff = np.flatnonzero(df["clean_label"].to_numpy()[pos] != np.asarray(clean_labels))
        if len(diff):
            raise UserError(
                f"{len(diff)} clean label(s) differ from the noise manifest (e.g. sample "
                f"{np.asarray(ids, dtype=object)[diff[0]]!r}); regenerate it with `nmlbench noise`"
            )
    return df["noisy_label"].to_numpy(dtype=np.int64)[pos]


def donor_ids_for(manifest: Any, ids: Any, exact: bool = True) -> np.ndarray:
    """For each id, the id whose caption it carries under caption noise (itself when not corrupted)."""
    df = _as_frame(manifest)
    if "donor_id" not in df.columns:
        raise UserError("this noise manifest is for labels, not captions; use noisy_labels_for")
    return df["donor_id"].to_numpy(dtype=object)[_positions(df, ids, exact)]
