"""Apply a noise config to a source and write the manifest; recipes; `ensure_manifest` for later stages."""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from nmlbench.config import dump_config, from_mapping, read_yaml, stable_key
from nmlbench.errors import UserError
from nmlbench.io import atomic_dir, sha256_file, write_json, write_text
from nmlbench.noise.base import (
    GENERATOR_VERSION,
    NOISE,
    NoiseConfig,
    NoiseKind,
    NoiseResult,
    SampleTable,
    resolve_kind,
)
from nmlbench.noise.manifest import (
    MANIFEST_NAME,
    SIDECAR_NAME,
    manifest_table,
    read_sidecar,
    summarize,
    write_parquet,
)
from nmlbench.noise.sources import BUILTIN, SourceSpec, fingerprint, read_source
from nmlbench.paths import output_root, shipped_dir
from nmlbench.rates import parse_rate, rate_tag
from nmlbench.readers.base import describe

FORMAT = "nmlbench-noise-manifest"
# Recipes ship in the repository's noise_recipes/; $NMLBENCH_RECIPES adds directories in front.
REPO_RECIPES = shipped_dir("noise_recipes")


def recipe_dirs() -> list[Path]:
    extra = [Path(p) for p in os.environ.get("NMLBENCH_RECIPES", "").split(os.pathsep) if p]
    return [*extra, REPO_RECIPES]


def list_recipes() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in reversed(recipe_dirs()):  # earlier directories win
        found.update({p.stem: p for p in sorted(d.glob("*.yaml"))} if d.is_dir() else {})
    return dict(sorted(found.items()))


def load_recipe(name_or_path: str, overrides: tuple[str, ...] = ()) -> NoiseConfig:
    """A recipe by name (noise_recipes/<name>.yaml) or by path; the file stem becomes the recipe name."""
    path = Path(name_or_path)
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        known = list_recipes()
        if name_or_path not in known:
            close = difflib.get_close_matches(name_or_path, list(known), n=3, cutoff=0.5)
            hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
            raise UserError(f"unknown noise recipe {name_or_path!r}; {hint}known: {', '.join(known)}")
        path = known[name_or_path]
    from nmlbench.config import deep_merge, parse_overrides

    raw = deep_merge(read_yaml(path), parse_overrides(overrides))
    if not overrides:  # an overridden recipe is no longer that recipe: its name is derived instead
        raw.setdefault("name", path.stem)
    if "rate" in raw:
        raw["rate"] = parse_rate(raw["rate"])
    if "kind" in raw:
        raw["kind"] = resolve_kind(str(raw["kind"]))
    return from_mapping(NoiseConfig, raw, str(path))


def make_kind(cfg: NoiseConfig) -> NoiseKind:
    return NOISE.get(resolve_kind(cfg.kind))(dict(cfg.params))


def recipe_name(cfg: NoiseConfig, kind: NoiseKind) -> str:
    """The recipe's own name, else e.g. 'sym10' (default params) or 'group20-3f9a1c' (others)."""
    if cfg.name:
        return cfg.name
    name = f"{kind.short}{rate_tag(cfg.rate)}"
    return name if kind.is_default() else f"{name}-{stable_key(kind.resolved_params(), 6)}"


def _sidecar(cfg: NoiseConfig, kind: NoiseKind, spec: SourceSpec, table: Any) -> dict:
    return {
        "format": FORMAT,
        "schema_version": 1,
        "recipe": recipe_name(cfg, kind),
        "recipe_version": cfg.version,
        "changelog": cfg.changelog,
        "kind": resolve_kind(cfg.kind),
        "kind_version": kind.version,
        "target": kind.target,
        "params": kind.resolved_params(),
        "seed": cfg.seed,
        "nominal_rate": cfg.rate,
        "classes": list(table.classes) if table.classes else None,
        "source": {
            "type": spec.type,
            "path": spec.path,
            "fingerprint": fingerprint(table),
            "spec": dataclasses.asdict(spec),
        },
        "generator_version": GENERATOR_VERSION,
        "versions": {"numpy": np.__version__, "pyarrow": pa.__version__},
    }


def _identity(meta: dict) -> tuple:
    """What must match for an existing manifest to be reused."""
    keys = ("kind", "kind_version", "params", "seed", "nominal_rate", "generator_version", "recipe_version")
    return tuple(json.dumps(meta.get(k), sort_keys=True) for k in keys) + (
        meta.get("source", {}).get("fingerprint"),
    )


def _reusable(out_dir: Path, meta: dict, tbl: pa.Table) -> bool:
    """True when `out_dir` holds an intact manifest made from the same inputs as `meta` describes,
    with exactly the rows `tbl` (a forged manifest with a recomputed hash is never reused)."""
    if not (out_dir / SIDECAR_NAME).is_file():
        return False
    try:
        old = read_sidecar(out_dir)
        intact = sha256_file(out_dir / MANIFEST_NAME) == old.get("manifest_sha256")
        if not (intact and _identity(old) == _identity(meta)):
            return False
        return pq.read_table(out_dir / MANIFEST_NAME).equals(tbl)
    except (UserError, OSError, pa.ArrowException):
        return False


def derive(kind: NoiseKind, table: SampleTable, cfg: NoiseConfig) -> tuple[NoiseResult, pa.Table]:
    """The manifest rows of `cfg` on `table`: the one code path that makes a manifest and that
    `noise audit` and pretraining re-run to check one (a pure function of table, kind, rate, seed)."""
    try:
        result = kind.apply(table, cfg.rate, np.random.default_rng(cfg.seed))
    except UserError as e:  # every refusal names the recipe it refuses
        raise UserError(f"noise recipe {recipe_name(cfg, kind)!r}: {e}") from None
    return result, manifest_table(table, result)


def config_from_sidecar(meta: dict[str, Any], where: str) -> NoiseConfig:
    """The NoiseConfig a sidecar says its manifest was made with (file params by path, not hash)."""
    try:
        params = {k: v for k, v in dict(meta["params"]).items() if not k.endswith("_sha256")}
        return NoiseConfig(
            kind=resolve_kind(str(meta["kind"])),
            rate=float(meta["nominal_rate"]),
            seed=int(meta["seed"]),
            params=params,
            name=str(meta["recipe"]),
            version=int(meta["recipe_version"]),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(
            f"sidecar {where} does not describe a noise recipe ({describe(e)}); "
            "regenerate the manifest with `nmlbench noise ... --overwrite`"
        ) from None


def apply_noise(
    source_spec: SourceSpec,
    cfg: NoiseConfig,
    root: str | Path | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
) -> Path:
    """Corrupt `source_spec` as `cfg` says and write manifest + sidecar; return the manifest path.

    An existing manifest made from the same inputs is verified and reused; one made from different
    inputs is an error unless `overwrite`.
    """
    kind = make_kind(cfg)
    table = read_source(source_spec, kind.target)
    kind.check(table)
    name = recipe_name(cfg, kind)
    out_dir = (
        Path(out) if out else output_root(root) / "noisy" / source_spec.dataset_name() / f"{name}-s{cfg.seed}"
    )
    meta = _sidecar(cfg, kind, source_spec, table)
    result, tbl = derive(kind, table, cfg)  # cheap (vectorised): reuse only a manifest with these rows
    if _reusable(out_dir, meta, tbl):
        return out_dir / MANIFEST_NAME
    if (out_dir / SIDECAR_NAME).is_file() and not overwrite:
        raise UserError(
            f"{out_dir} holds a manifest made from other inputs (or a damaged one, or one whose rows "
            "were edited); pass --overwrite to replace it or --out to write elsewhere"
        )
    meta.update(n_eligible=result.eligible, n_selected=result.selected, **result.extra)
    meta.update(
        summarize(
            tbl,
            list(table.classes) if table.classes else None,
            table.labels if kind.target == "caption" else None,
        )
    )
    if _reusable(out_dir, meta, tbl):  # a concurrent job (e.g. a sweep array) may have written it meanwhile
        return out_dir / MANIFEST_NAME
    with atomic_dir(out_dir) as tmp:
        write_parquet(tbl, tmp / MANIFEST_NAME)
        meta["manifest_sha256"] = sha256_file(tmp / MANIFEST_NAME)
        write_json(tmp / SIDECAR_NAME, meta)
        write_text(tmp / "config.yaml", dump_config({"noise": cfg, "source": source_spec}))
    return out_dir / MANIFEST_NAME


def ensure_manifest(
    dataset: str | SourceSpec,
    kind: str,
    rate: float | str,
    seed: int = 0,
    root: str | Path | None = None,
    data_root: str | Path | None = None,
    **params: Any,
) -> Path:
    """Create or reuse the manifest for (dataset, kind, rate, seed): what `nmlbench pretrain --noise` calls.

    Args:
        dataset: "mini" or "mini-text" (the built-in benchmarks) or a `SourceSpec`.
        kind: "sym", "asym", "caption" or a full kind name; `variant=` picks the asym/caption variant
            ("pairflip", "group", "confusion", "subset"; "derangement", "pair_swap").
        rate: a fraction or a rate string ("10%").
        root: output root (default $NMLBENCH_ROOT).
        data_root: where the mini benchmark is cached (default $NMLBENCH_DATA).
        params: the kind's parameters, e.g. include_true_class=True, groups="groups.yaml".
    """
    full = resolve_kind(kind, params.pop("variant", None))
    if isinstance(dataset, str):
        if dataset not in BUILTIN:
            close = difflib.get_close_matches(dataset, BUILTIN, n=1, cutoff=0.5)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise UserError(
                f"unknown dataset {dataset!r}; {hint}known: {', '.join(BUILTIN)} (for your own data pass a "
                "SourceSpec, or use `nmlbench noise --imagefolder/--labels/--wds/--captions/--hf`)"
            )
        dataset = SourceSpec(type=dataset, path=str(data_root or ""))
    cfg = NoiseConfig(kind=full, rate=parse_rate(rate), seed=seed, params=params)
    return apply_noise(dataset, cfg, root=root)
