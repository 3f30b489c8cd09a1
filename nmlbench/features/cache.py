"""Feature cache: one safetensors file per (model weights, task, split, transform/view), integrity-checked.

Layout (docs/architecture.md): `feats/<model-key>/<task>/<split>-<transform-hash>.safetensors`. Each
augmented view is its own file, seeded by its index, so K=8 reuses the files of K=4 and an
interrupted extraction resumes at the next missing view. The file's metadata holds the sha256 of
its tensor bytes and of the split's sample ids: a corrupt, truncated or stale file is rebuilt.
The metadata is one JSON string with sorted keys (safetensors writes a metadata map in random
order), so the same features give the same file bytes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from nmlbench.io import atomic_path
from nmlbench.paths import output_root

log = logging.getLogger(__name__)
CACHE_VERSION = 2  # bump when the same inputs would give different features or files


@dataclass(frozen=True)
class SplitRef:
    """Which data a cache file holds: task name and version, split, and the sample-id fingerprint."""

    task: str
    version: int
    split: str
    ids_sha256: str


def ids_fingerprint(ids: np.ndarray) -> str:
    """sha256 of the ordered sample ids: a re-generated or edited split invalidates its cache."""
    return hashlib.sha256("\n".join(map(str, ids)).encode()).hexdigest()


def cache_path(
    root: str | Path | None, model_key: str, ref: SplitRef, transform_desc: dict[str, Any]
) -> Path:
    """Where the features of `ref` under `transform_desc` (transform repr, view index, seed) live."""
    blob = json.dumps(
        {"v": CACHE_VERSION, "task_version": ref.version, **transform_desc}, sort_keys=True, default=str
    )
    key = hashlib.sha256(blob.encode()).hexdigest()[:12]
    return output_root(root) / "feats" / model_key / ref.task / f"{ref.split}-{key}.safetensors"


def _content_sha256(features: torch.Tensor) -> str:
    return hashlib.sha256(features.contiguous().view(-1).view(torch.uint8).numpy().tobytes()).hexdigest()


def save_features(path: Path, features: torch.Tensor, ref: SplitRef, desc: dict[str, Any]) -> None:
    """Write atomically with the content and ids hashes in the safetensors metadata."""
    features = features.detach().cpu().contiguous()
    meta = {
        "content_sha256": _content_sha256(features),
        "ids_sha256": ref.ids_sha256,
        "task": ref.task,
        "split": ref.split,
        "transform": desc,
    }
    with atomic_path(path) as tmp:
        save_file({"features": features}, str(tmp), metadata={"nmlbench": _canonical(meta)})


def _canonical(meta: dict[str, Any]) -> str:
    return json.dumps(meta, sort_keys=True, default=str, separators=(",", ":"))


def load_features(path: Path, ref: SplitRef) -> torch.Tensor | None:
    """The cached tensor, or None when absent, unreadable, stale or not matching its hash."""
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get("nmlbench", "{}"))
        meta = meta if isinstance(meta, dict) else {}
        features = load_file(str(path))["features"]
    except (SafetensorError, OSError, KeyError, ValueError, RuntimeError) as e:
        log.warning("feature cache %s is unreadable (%s); rebuilding it", path, type(e).__name__)
        return None
    if meta.get("ids_sha256") != ref.ids_sha256:
        log.warning("feature cache %s was built for other sample ids; rebuilding it", path)
        return None
    if meta.get("content_sha256") != _content_sha256(features):
        log.warning("feature cache %s fails its sha256 check (corrupt); rebuilding it", path)
        return None
    return features
