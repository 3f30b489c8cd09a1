"""Check that a manifest is what its recipe makes: re-derive it and compare row by row.

A manifest and its sidecar are plain files: anyone can edit both and recompute the hash, so the
hash only proves the parquet is the one the sidecar describes, not that either is honest. What
cannot be forged is the derivation: the noisy rows are a pure function of the clean rows, the
kind, its parameters, the rate and the seed (`nmlbench.noise.apply.derive`). `verify_rows` runs
that function again and compares every row; `noise audit` feeds it the source as it is now,
pretraining the manifest's own clean rows (which it checks against the data it trains on).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from nmlbench.errors import UserError
from nmlbench.noise.apply import (
    config_from_sidecar,
    derive,
    list_recipes,
    load_recipe,
    make_kind,
    recipe_name,
)
from nmlbench.noise.base import GENERATOR_VERSION, NOISE, NoiseConfig, NoiseKind, SampleTable, make_table
from nmlbench.noise.manifest import summarize
from nmlbench.rates import rate_tag

REGENERATE = "regenerate it with `nmlbench noise ... --overwrite`"
SHOW_ROWS = 3  # differing rows named in the error
# A derived recipe name ('sym10', 'pairflip20', 'group20-3f9a1c'): a kind's short name and a rate.
_DERIVED = re.compile(r"^([a-z]+)(\d+(?:\.\d+)?)(-[0-9a-f]{6})?$")
# Sidecar counts that follow from the rows; a forged sidecar may not change them.
SUMMARY_KEYS = (
    "n_samples",
    "n_corrupted",
    "realized_rate",
    "n_text_changed",
    "realized_text_rate",
    "per_class",
    "transitions",
)


def clean_table(tbl: pa.Table, meta: dict[str, Any], where: str) -> SampleTable:
    """The sample table the manifest's clean columns describe (what noise was applied to)."""
    ids = tbl.column("sample_id").combine_chunks()
    if meta.get("target") == "label":
        classes = meta.get("classes")
        if not isinstance(classes, list) or not classes:
            raise UserError(f"sidecar of {where} lists no classes; {REGENERATE}")
        return make_table(ids, labels=tbl.column("clean_label").to_numpy(), classes=classes, where=where)
    return make_table(ids, caption_sha256=tbl.column("caption_sha256"), where=where)


def check_recipe_name(cfg: NoiseConfig, kind: NoiseKind, where: str) -> None:
    """The recipe name (which names checkpoints) must not claim another kind, rate or parameters.

    It is the derived name ('sym10'), a recipe file of that name with the same kind, rate,
    parameters and version, or a free name that does not read as a derived one.
    """
    name = cfg.name or ""
    derived = recipe_name(dataclasses.replace(cfg, name=None), kind)
    if name == derived:
        return
    known = list_recipes()
    if name in known:
        rec = load_recipe(name)
        differs = [
            what
            for what, same in (
                (f"kind {rec.kind}", NOISE.get(rec.kind) is type(kind)),
                (f"rate {rate_tag(rec.rate)}%", abs(rec.rate - cfg.rate) < 1e-9),
                (f"version {rec.version}", rec.version == cfg.version),
                (f"params {dataclasses.asdict(make_kind(rec).params)}", make_kind(rec).params == kind.params),
            )
            if not same
        ]
        if differs:
            raise UserError(
                f"manifest {where} is named after recipe {name!r}, which has {', '.join(differs)}, but "
                f"its sidecar says {cfg.kind} at {rate_tag(cfg.rate)}% with params "
                f"{dataclasses.asdict(kind.params)} (version {cfg.version}); {REGENERATE}"
            )
        return
    derived_like = _DERIVED.match(name)
    if derived_like and derived_like.group(1) in {NOISE.get(k).short for k in NOISE}:
        raise UserError(
            f"manifest {where} is named {name!r}, but its recipe ({cfg.kind} at {rate_tag(cfg.rate)}%) "
            f"is named {derived!r}; {REGENERATE}"
        )


def _check_param_files(kind: NoiseKind, meta: dict[str, Any], where: str) -> None:
    """Files named in params (groups, confusion) must still hold what the manifest was made from."""
    try:
        now = kind.resolved_params()
    except UserError as e:
        raise UserError(f"cannot re-derive manifest {where}: {e}") from None
    if now != meta.get("params"):
        changed = sorted(
            k for k in set(now) | set(meta.get("params") or {}) if now.get(k) != meta["params"].get(k)
        )
        raise UserError(
            f"manifest {where} was made with other parameters than its recipe's files give now "
            f"({', '.join(changed)} differ); restore the files or {REGENERATE}"
        )


def _differences(tbl: pa.Table, expected: pa.Table) -> list[str]:
    """The first rows where `tbl` and `expected` differ: "row 7 (sample 'x'): noisy_label 2, expected 5"."""
    if tbl.column_names != expected.column_names:
        return [f"columns {tbl.column_names}, expected {expected.column_names}"]
    if tbl.num_rows != expected.num_rows:
        return [f"{tbl.num_rows} rows, expected {expected.num_rows}"]
    differs = np.zeros(tbl.num_rows, dtype=bool)
    for name in tbl.column_names:
        a = tbl.column(name).combine_chunks()
        b = expected.column(name).combine_chunks().cast(a.type)
        differs |= ~pc.fill_null(pc.equal(a, b), False).to_numpy(zero_copy_only=False)
    out = []
    for i in np.flatnonzero(differs)[:SHOW_ROWS]:
        got, want = tbl.slice(int(i), 1).to_pylist()[0], expected.slice(int(i), 1).to_pylist()[0]
        cols = [f"{c} {got[c]!r}, expected {want[c]!r}" for c in tbl.column_names if got[c] != want[c]]
        out.append(f"row {i} (sample {got['sample_id']!r}): {'; '.join(cols)}")
    if differs.sum() > SHOW_ROWS:
        out.append(f"{int(differs.sum()) - SHOW_ROWS} more rows")
    return out


def verify_rows(
    tbl: pa.Table, meta: dict[str, Any], where: str, table: SampleTable | None = None
) -> dict[str, Any]:
    """Re-derive the manifest from `table` (default: its own clean columns) + recipe + seed; compare.

    Returns:
        {'status': 'ok', 'n_rows': N, 'from': 'source' | 'manifest'} when every row matches.

    Raises:
        UserError: a row, the recipe name, a parameter file or a sidecar count does not match.
    """
    cfg = config_from_sidecar(meta, where)
    kind = make_kind(cfg)
    for key, want in (("kind_version", kind.version), ("generator_version", GENERATOR_VERSION)):
        if meta.get(key) != want:
            raise UserError(
                f"manifest {where} was made with {key} {meta.get(key)!r}, this nmlbench makes {want!r}; "
                f"its rows cannot be re-derived: {REGENERATE}"
            )
    if kind.target != meta.get("target"):
        raise UserError(
            f"sidecar of {where}: kind {cfg.kind} is {kind.target} noise, not {meta.get('target')}"
        )
    _check_param_files(kind, meta, where)
    check_recipe_name(cfg, kind, where)
    source = "source" if table is not None else "manifest"
    table = table if table is not None else clean_table(tbl, meta, where)
    kind.check(table)
    result, expected = derive(kind, table, cfg)
    diff = _differences(tbl, expected)
    if diff:
        raise UserError(
            f"manifest {where} is not what recipe {cfg.name!r} ({cfg.kind}, {rate_tag(cfg.rate)}%, "
            f"seed {cfg.seed}) makes from its {'source' if source == 'source' else 'clean rows'}: "
            f"{'; '.join(diff)}; {REGENERATE}"
        )
    counts = {"n_eligible": result.eligible, "n_selected": result.selected, **result.extra}
    labels = table.labels if kind.target == "caption" else None
    counts.update(summarize(expected, list(table.classes) if table.classes else None, labels))
    for key in ("n_eligible", "n_selected", *result.extra, *SUMMARY_KEYS):
        if key in counts and key in meta and meta[key] != counts[key] and not _empty_summary(key, counts):
            raise UserError(
                f"sidecar of {where} disagrees with the rows on {key}: it says {meta[key]!r}, the rows "
                f"give {counts[key]!r} (edited by hand?); {REGENERATE}"
            )
    return {"status": "ok", "n_rows": tbl.num_rows, "from": source}


def _empty_summary(key: str, counts: dict[str, Any]) -> bool:
    """Caption manifests re-derived without labels have no per-class figures to compare."""
    return key in ("per_class", "transitions") and not counts[key]
