"""Apply a noise manifest to pretraining data: noisy labels, or donor captions for corrupted pairs.

The manifest is created on demand for the mini benchmark (`nmlbench.noise.ensure_manifest`) and
named by `data.manifest` for real data. Its ids must be exactly the data's ids and its clean
labels / caption hashes must match the data: anything else means it is stale, which is an error.
"""

from __future__ import annotations

import hashlib
import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nmlbench.errors import UserError
from nmlbench.paths import output_root
from nmlbench.pretrain.config import PretrainConfig
from nmlbench.pretrain.sources import Source
from nmlbench.rates import rate_tag


@dataclass(frozen=True)
class NoisyTargets:
    """What the model trains on, aligned with `Source.ids`."""

    labels: np.ndarray | None  # (N,) int64 noisy labels (supervised)
    captions: np.ndarray | None  # (N,) str captions, the donor's for corrupted pairs (CLIP)
    manifest_path: str | None
    manifest_sha256: str | None
    noise: dict[str, Any]  # {kind, rate, seed, recipe} as written into checkpoint.json
    recipe: dict[str, Any]  # the noise's identity without its seed (see `recipe_identity`)


MINI_SOURCES = ("mini", "mini-text")  # built-in data whose manifests are made on demand
CLEAN = "clean"  # recipe of clean data trained without a manifest; its noise kind is "none"
_UNSAFE = re.compile(r"[^A-Za-z0-9.+-]+")


def _derived_recipe(cfg: PretrainConfig) -> str:
    """'sym10', 'cap30': what `ensure_manifest` names a default-parameter recipe."""
    return f"{'cap' if cfg.noise_kind == 'caption' else 'sym'}{rate_tag(cfg.noise.rate)}"


def recipe_name(cfg: PretrainConfig, meta: dict[str, Any] | None = None) -> str:
    """The recipe part of checkpoint names, from what the run trains on.

    The manifest's own recipe when there is one ('pairflip20', 'group20-3f9a1c', 'sym10-ref'), so
    checkpoints of different noise kinds at one rate never share a name; 'sym10' / 'cap30' for
    mini manifests made on demand; 'clean' for clean data without a manifest.
    """
    if meta is not None:
        return (
            _UNSAFE.sub("-", str(meta.get("recipe") or _derived_recipe(cfg))).strip("-.+")[:100] or "recipe"
        )
    if cfg.data.source not in MINI_SOURCES and (not cfg.data.manifest or _sweep_clean(cfg)):
        return CLEAN  # locate_manifest refuses rate > 0 without a manifest
    return _derived_recipe(cfg)


def name_part(cfg: PretrainConfig, meta: dict[str, Any] | None = None) -> str:
    """`recipe_name`, plus '-n<seed>' when the noise seed is not the pretraining seed ('sym10-n3').

    Checkpoint names end in `_s<pretraining seed>`; without this, two noise draws of one recipe
    trained with one seed would share a name. The record's `noise.recipe` stays the bare recipe.
    """
    name = recipe_name(cfg, meta)
    seed = meta.get("seed", cfg.noise_seed) if meta is not None else cfg.noise_seed
    return name if name == CLEAN or seed == cfg.seed else f"{name}-n{seed}"


def manifest_meta(cfg: PretrainConfig, root: str | Path | None = None) -> dict[str, Any] | None:
    """The sidecar of the manifest this run names in `data.manifest`, if it exists yet; else None.

    Read before training so the checkpoint name can carry the manifest's recipe; a missing
    manifest is reported by `locate_manifest` when the run starts.
    """
    path = _configured_manifest(cfg, root)
    if path is None or not path.is_file():
        return None
    try:
        from nmlbench.noise.manifest import read_sidecar

        return dict(read_sidecar(path))
    except (UserError, OSError):
        return None


def _noise_api() -> Any:
    return importlib.import_module("nmlbench.noise")


def _sweep_clean(cfg: PretrainConfig) -> bool:
    """The 0 % run of a sweep pattern (`{rate}` in data.manifest): clean unless a 0 % manifest exists."""
    return cfg.noise.rate == 0 and "{rate}" in (cfg.data.manifest or "")


def _configured_manifest(cfg: PretrainConfig, root: str | Path | None) -> Path | None:
    """`data.manifest` with {rate} and {seed} filled in, under the output root when relative.

    A sweep's pattern (`{rate}` in it) at rate 0 with no such file is the clean run: `--noise 0,20%`
    needs only the 20 % manifest. A fixed path (no `{rate}`) must exist at every rate.
    """
    if not cfg.data.manifest:
        return None
    text = cfg.data.manifest.replace("{rate}", rate_tag(cfg.noise.rate)).replace(
        "{seed}", str(cfg.noise_seed)
    )
    path = Path(text).expanduser()
    path = path if path.is_absolute() else output_root(root) / path
    if _sweep_clean(cfg) and not path.is_file():
        return None
    return path


def locate_manifest(cfg: PretrainConfig, root: str | Path | None = None) -> Path | None:
    """The manifest for this run: created for mini, looked up for real data, None for clean real data."""
    kind, rate, seed = cfg.noise_kind, cfg.noise.rate, cfg.noise_seed
    if cfg.data.source in MINI_SOURCES and not cfg.data.manifest:
        api = _noise_api()
        return Path(api.ensure_manifest(dataset=cfg.data.source, kind=kind, rate=rate, seed=seed, root=root))
    path = _configured_manifest(cfg, root)
    if path is None:
        if rate > 0:
            raise UserError(
                f"noise rate {rate_tag(rate)}% on {cfg.data.name!r} needs a manifest: create one with "
                f"`nmlbench noise` and pass --set data.manifest=PATH"
            )
        return None
    if not path.is_file():
        raise UserError(
            f"noise manifest {path} does not exist; create it with `nmlbench noise` "
            f"(rate {rate_tag(rate)}%, seed {seed}) or fix data.manifest"
        )
    return path


def apply_manifest(cfg: PretrainConfig, source: Source, path: Path | None) -> NoisyTargets:
    """Noisy targets for `source`, after checking that the manifest matches the data."""
    clip = cfg.objective == "clip"
    if clip and source.captions is None:
        raise UserError(
            f"{cfg.data.name!r} has no captions; CLIP needs image-text pairs (txt/json per sample)"
        )
    if not clip and source.labels is None:
        raise UserError(f"{cfg.data.name!r} has no labels; supervised pretraining needs a class per sample")
    if path is None:  # clean data, no manifest: noise kind "none", never a made-up "sym"
        noise = {"kind": "none", "rate": 0.0, "seed": cfg.noise_seed, "recipe": CLEAN}
        return NoisyTargets(
            None if clip else source.labels, source.captions if clip else None, None, None, noise, dict(noise)
        )
    api = _noise_api()
    df, meta = verified_manifest(path, cfg)
    _check_manifest(df, meta, source, cfg, path)
    noise = {
        "kind": meta.get("kind", cfg.noise_kind),
        "rate": cfg.noise.rate,
        "seed": meta.get("seed", cfg.noise_seed),
        "recipe": recipe_name(cfg, meta),
    }
    sha = meta.get("manifest_sha256")
    if clip:
        donors = np.asarray(api.donor_ids_for(df, source.ids)).astype(str)
        position = pd.Series(np.arange(len(source.ids)), index=source.ids)
        captions = source.captions[position.loc[donors].to_numpy()]
        return NoisyTargets(None, captions, str(path), sha, noise, recipe_identity(meta))
    labels = np.asarray(api.noisy_labels_for(df, source.ids, clean_labels=source.labels), dtype=np.int64)
    return NoisyTargets(labels, None, str(path), sha, noise, recipe_identity(meta))


def verified_manifest(path: Path, cfg: PretrainConfig) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The manifest, after checking it can be trusted to be what the run will be named after.

    Its parquet must hash to the sha256 in its sidecar; the sidecar's rate must be the run's; and
    its rows must be what its recipe (kind, params, rate, seed) makes from its clean rows, which
    `_check_manifest` then compares with the data. A sidecar edited to say 30 % on a 10 % manifest,
    or a manifest whose labels were swapped and hash recomputed, is refused here.
    """
    from nmlbench.noise.manifest import read_manifest_table
    from nmlbench.noise.verify import verify_rows

    tbl, meta = read_manifest_table(path)
    rate = meta.get("nominal_rate")
    if not isinstance(rate, int | float) or abs(float(rate) - cfg.noise.rate) > 1e-9:
        shown = f"{rate_tag(float(rate))}%" if isinstance(rate, int | float) else repr(rate)
        raise UserError(
            f"manifest {path} is for noise {shown}, the run asks for {rate_tag(cfg.noise.rate)}%; "
            "regenerate it with `nmlbench noise` at this rate, or point data.manifest at the right one"
        )
    verify_rows(tbl, meta, str(path))
    return tbl.to_pandas(), meta


def recipe_identity(meta: dict[str, Any]) -> dict[str, Any]:
    """What a manifest's noise *is*, without its seed (the seed is a coordinate of its own).

    Part of the checkpoint's `pretrain_key`: equal for the manifests of one recipe drawn with
    different seeds, different for another kind, parameters, rate or generator version.
    """
    keys = ("kind", "kind_version", "params", "nominal_rate", "recipe", "recipe_version", "generator_version")
    return {k: meta.get(k) for k in keys}


def _check_manifest(df: pd.DataFrame, meta: dict, source: Source, cfg: PretrainConfig, path: Path) -> None:
    fix = (
        f"regenerate it with `nmlbench noise` for this data, or point data.manifest at the right one ({path})"
    )
    want = "donor_id" if cfg.objective == "clip" else "noisy_label"
    if want not in df.columns:
        raise UserError(
            f"manifest {path} has no {want!r} column: it is not a "
            f"{'caption' if want == 'donor_id' else 'label'} noise manifest; {fix}"
        )
    rate = meta.get("nominal_rate")
    if rate is not None and abs(float(rate) - cfg.noise.rate) > 1e-9:
        raise UserError(
            f"manifest {path} is for noise {rate_tag(float(rate))}%, the run asks for "
            f"{rate_tag(cfg.noise.rate)}%; {fix}"
        )
    ids = pd.Index(df["sample_id"].astype(str))
    missing = len(pd.Index(source.ids).difference(ids))
    extra = len(ids.difference(pd.Index(source.ids)))
    if missing or extra or len(ids) != len(source.ids):
        raise UserError(
            f"manifest {path} does not match the data: {missing} data ids missing from it, "
            f"{extra} ids not in the data (stale manifest?); {fix}"
        )
    rows = df.set_index(df["sample_id"].astype(str)).loc[source.ids]
    if "clean_label" in rows and source.labels is not None:
        bad = int((rows["clean_label"].to_numpy() != source.labels).sum())
        if bad:
            raise UserError(
                f"manifest {path}: {bad} clean labels differ from the data's (stale manifest?); {fix}"
            )
    if "caption_sha256" in rows and source.captions is not None:
        hashes = np.array([hashlib.sha256(c.encode()).hexdigest() for c in source.captions])
        bad = int((rows["caption_sha256"].to_numpy() != hashes).sum())
        if bad:
            raise UserError(
                f"manifest {path}: {bad} caption hashes differ from the data's (stale manifest?); {fix}"
            )
