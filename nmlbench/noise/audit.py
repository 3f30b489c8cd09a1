"""Audit a manifest: hash, sidecar consistency, rates, flips, and a check against the source data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from nmlbench.errors import UserError
from nmlbench.noise.manifest import read_manifest_table, summarize
from nmlbench.noise.sources import SourceSpec, read_source

TOP = 10


def _check_sidecar(meta: dict, recomputed: dict, path: Path) -> None:
    keys = ["n_samples", "n_corrupted", "per_class"] + (
        ["n_text_changed"] if "n_text_changed" in meta else []
    )
    for key in keys:
        if meta.get(key) != recomputed[key] and not (key == "per_class" and not recomputed[key]):
            raise UserError(
                f"sidecar of {path} disagrees with the manifest on {key!r} (edited by hand?); "
                "regenerate it with `nmlbench noise ... --overwrite`"
            )


def check_source(tbl: pa.Table, meta: dict, spec: SourceSpec) -> dict[str, Any]:
    """Compare the manifest with the source as it is now: same ids, same clean labels / caption hashes.

    Raises:
        UserError: the manifest no longer matches (names counts and a first example).
    """
    table = read_source(spec, meta["target"])
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
    if problems:
        raise UserError(
            f"manifest no longer matches its source {spec.type}:{spec.path or 'built-in'}: "
            f"{'; '.join(problems)}; regenerate it with `nmlbench noise ... --overwrite`"
        )
    return {"status": "ok", "type": spec.type, "path": spec.path, "n_checked": len(table)}


def audit(path: str | Path, source: SourceSpec | None = None, check: bool = True) -> dict[str, Any]:
    """Report on a manifest; verify it against `source` (default: the source recorded in its sidecar)."""
    tbl, meta = read_manifest_table(path)
    labels = None
    spec = source or SourceSpec(**meta["source"]["spec"])
    source_report: dict[str, Any] = {"status": "skipped"}
    if check:
        source_report = check_source(tbl, meta, spec)
        if meta["target"] == "caption" and meta.get("classes"):
            labels = read_source(spec, "caption").labels
    recomputed = summarize(tbl, meta.get("classes"), labels)
    _check_sidecar(meta, recomputed, Path(path))
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
        f"source    {rep['source_check']['status']}"
        + (
            f" ({rep['source_check']['n_checked']} samples match)"
            if rep["source_check"]["status"] == "ok"
            else " (pass --source options, or drop --no-check)"
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
