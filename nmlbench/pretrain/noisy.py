"""Apply a noise manifest to pretraining data: noisy labels, or donor captions for corrupted pairs.

The manifest is created on demand for the mini benchmark (`nmlbench.noise.ensure_manifest`) and
named by `data.manifest` for real data. Its ids must be exactly the data's ids and its clean
labels / caption hashes must match the data: anything else means it is stale, which is an error.
"""

from __future__ import annotations

import hashlib
import importlib
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


def recipe_name(cfg: PretrainConfig) -> str:
    """'sym10', 'cap30': the noise part of checkpoint names."""
    return f"{'cap' if cfg.noise_kind == 'caption' else 'sym'}{rate_tag(cfg.noise.rate)}"


def _noise_api() -> Any:
    return importlib.import_module("nmlbench.noise")


def locate_manifest(cfg: PretrainConfig, root: str | Path | None = None) -> Path | None:
    """The manifest for this run: created for mini, looked up for real data, None for clean real data."""
    kind, rate, seed = cfg.noise_kind, cfg.noise.rate, cfg.noise_seed
    if cfg.data.source == "mini" and not cfg.data.manifest:
        return Path(_noise_api().ensure_manifest(dataset="mini", kind=kind, rate=rate, seed=seed, root=root))
    if not cfg.data.manifest:
        if rate > 0:
            raise UserError(
                f"noise rate {rate_tag(rate)}% on {cfg.data.name!r} needs a manifest: create one with "
                f"`nmlbench noise` and pass --set data.manifest=PATH"
            )
        return None
    text = cfg.data.manifest.replace("{rate}", rate_tag(rate)).replace("{seed}", str(seed))
    path = Path(text).expanduser()
    path = path if path.is_absolute() else output_root(root) / path
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
    noise = {
        "kind": cfg.noise_kind,
        "rate": cfg.noise.rate,
        "seed": cfg.noise_seed,
        "recipe": recipe_name(cfg),
    }
    if path is None:
        return NoisyTargets(
            None if clip else source.labels, source.captions if clip else None, None, None, noise
        )
    api = _noise_api()
    df, meta = api.read_manifest(path)
    _check_manifest(df, meta, source, cfg, path)
    noise.update({k: meta[k] for k in ("kind", "recipe") if k in meta})
    sha = meta.get("manifest_sha256")
    if clip:
        donors = np.asarray(api.donor_ids_for(df, source.ids)).astype(str)
        position = pd.Series(np.arange(len(source.ids)), index=source.ids)
        captions = source.captions[position.loc[donors].to_numpy()]
        return NoisyTargets(None, captions, str(path), sha, noise)
    labels = np.asarray(api.noisy_labels_for(df, source.ids, clean_labels=source.labels), dtype=np.int64)
    return NoisyTargets(labels, None, str(path), sha, noise)


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
