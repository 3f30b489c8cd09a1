"""Audit a manifest: hash, sidecar consistency, rates, flips, and a check against the source data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from nmlbench.errors import UserError
from nmlbench.noise.base import SampleTable
from nmlbench.noise.manifest import read_manifest_table, summarize
from nmlbench.noise.sources import SourceSpec, fingerprint, read_source
from nmlbench.noise.verify import verify_rows

TOP = 10


def recorded_source(meta: dict, path: str | Path) -> SourceSpec:
    try:
        return SourceSpec(**meta["source"]["spec"])
    except (KeyError, TypeError) as e:
        raise UserError(
            f"sidecar of {path} records no readable source ({e}); pass the source's flags to audit it"
        ) from None


def read_recorded_source(path: str | Path, meta: dict, spec: SourceSpec) -> SampleTable:
    """The source as it is now; when it cannot be read, say how to audit anyway."""
    try:
        return read_source(spec, meta["target"])
    except UserError as e:
        raise UserError(
            f"cannot re-derive {path} from its source ({str(e).rstrip('.')}); pass the source's flags "
            "(e.g. --npz FILE) if it moved, or --no-check to re-derive from the manifest's own clean rows"
        ) from None


def check_source(tbl: pa.Table, meta: dict, spec: SourceSpec, table: SampleTable) -> dict[str, Any]:
    """Compare the manifest with the source as it is now: same ids, same clean labels / caption hashes.

    Raises:
        UserError: the manifest no longer matches (names counts and a first example).
    """
    src_ids = table.ids.cast(pa.string())
    man_ids = tbl.column("sample_id").combine_chunks().cast(pa.string())
    missing = pc.invert(pc.is_in(man_ids, value_set=src_ids))
    extra = pc.invert(pc.is_in(src_ids, value_set=man_ids))
    problems = []
    if pc.any(missing).as_py():
        problems.append(
            f"{pc.sum(missing).as_py()} manifest ids are missing from the source "
            f"(e.g. {man_ids.filter(missing)[0].as_py()!r})"
        )
    if pc.any(extra).as_py():
        problems.append(
            f"{pc.sum(extra).as_py()} source ids are not in the manifest "
            f"(e.g. {src_ids.filter(extra)[0].as_py()!r})"
        )
    if not problems:  # same id set, both sorted: rows align
        if meta["target"] == "label":
            if list(table.classes) != meta.get("classes"):
                problems.append("the class list changed")
            diff = np.flatnonzero(tbl.column("clean_label").to_numpy() != table.labels)
            what = "clean labels"
        else:
            diff = np.flatnonzero(
                pc.not_equal(
                    tbl.column("caption_sha256").combine_chunks().cast(pa.string()),
                    table.caption_sha256.cast(pa.string()),
                ).to_numpy(zero_copy_only=False)
            )
            what = "captions"
        if len(diff):
            problems.append(f"{len(diff)} {what} differ (e.g. sample {man_ids[int(diff[0])].as_py()!r})")
    if not problems and fingerprint(table) != meta.get("source", {}).get("fingerprint"):
        problems.append("its fingerprint differs from the one in the sidecar")
    if problems:
        raise UserError(
            f"manifest no longer matches its source {spec.type}:{spec.path or 'built-in'}: "
            f"{'; '.join(problems)}; regenerate it with `nmlbench noise ... --overwrite`"
        )
    return {"status": "ok", "type": spec.type, "path": spec.path, "n_checked": len(table)}


def audit(path: str | Path, source: SourceSpec | None = None, check: bool = True) -> dict[str, Any]:
    """Report on a manifest after re-deriving it row by row (see `nmlbench.noise.verify`).

    With `check` the rows are re-derived from the source (default: the one recorded in the
    sidecar), which must still hold the manifest's ids and clean labels / captions; without it,
    from the manifest's own clean rows (the source is then trusted, everything else still checked).
    """
    tbl, meta = read_manifest_table(path)
    labels, table = None, None
    source_report: dict[str, Any] = {"status": "skipped"}
    if check:
        spec = source or recorded_source(meta, path)
        table = read_recorded_source(path, meta, spec)
        source_report = check_source(tbl, meta, spec, table)
        labels = table.labels if meta["target"] == "caption" and meta.get("classes") else None
    rows = verify_rows(tbl, meta, str(path), table)
    recomputed = summarize(tbl, meta.get("classes"), labels)
    per_class = recomputed["per_class"] or meta.get("per_class") or {}
    flip_key = "flipped_out" if meta["target"] == "label" else "corrupted"
    worst = sorted(per_class.items(), key=lambda kv: (-kv[1].get(flip_key, 0), kv[0]))[:TOP]
    return {
        "manifest": str(path),
        "recipe": meta["recipe"],
        "kind": meta["kind"],
        "params": meta["params"],
        "seed": meta["seed"],
        "nominal_rate": meta["nominal_rate"],
        "realized_rate": recomputed["realized_rate"],
        "realized_text_rate": recomputed.get("realized_text_rate"),  # captions: text changed
        "n_text_changed": recomputed.get("n_text_changed"),
        "n_samples": recomputed["n_samples"],
        "n_eligible": meta.get("n_eligible"),
        "n_corrupted": recomputed["n_corrupted"],
        "manifest_sha256": meta["manifest_sha256"],
        "top_classes": [{"class": k, **v} for k, v in worst],
        "top_transitions": (recomputed["transitions"] or meta.get("transitions") or {}).get("top", [])[:TOP],
        "source_check": source_report,
        "rows_check": rows,
    }


def format_report(rep: dict[str, Any]) -> str:
    """A short human summary of `audit`'s report."""
    lines = [
        f"manifest  {rep['manifest']}",
        f"recipe    {rep['recipe']} ({rep['kind']}, seed {rep['seed']})",
        f"rate      nominal {rep['nominal_rate']:.4%}  realized {rep['realized_rate']:.4%}  "
        f"({rep['n_corrupted']} of {rep['n_samples']} samples; {rep['n_eligible']} eligible)",
        *(
            [
                f"captions  donor changed {rep['realized_rate']:.4%}, text changed "
                f"{rep['realized_text_rate']:.4%} ({rep['n_text_changed']} samples)"
            ]
            if rep.get("realized_text_rate") is not None
            else []
        ),
        f"sha256    {rep['manifest_sha256']} (verified)",
        f"rows      {rep['rows_check']['n_rows']} re-derived from the {rep['rows_check']['from']} "
        "(recipe, rate and seed) and equal",
        f"source    {rep['source_check']['status']}"
        + (
            f" ({rep['source_check']['n_checked']} samples match)"
            if rep["source_check"]["status"] == "ok"
            else " (the manifest's clean rows were trusted; drop --no-check to compare with the source)"
        ),
    ]
    if rep["top_classes"]:
        lines.append(
            "most-corrupted classes: "
            + ", ".join(
                f"{c['class']}={c.get('flipped_out', c.get('corrupted'))}/{c['n']}"
                for c in rep["top_classes"]
            )
        )
    if rep["top_transitions"]:
        lines.append(
            "top transitions: "
            + ", ".join(f"{t['from']}->{t['to']}:{t['count']}" for t in rep["top_transitions"])
        )
    return "\n".join(lines)
