"""`checkpoint.json` of a nmlbench checkpoint folder, read and checked (format, schema, fields), and
the weights file checked against the hash it stores.

Shared by model identity (`refs`, which must not load weights), the loader (`load`) and resume
(`nmlbench.pretrain.checkpoint`): a corrupt, truncated or edited checkpoint is one UserError that
names the file, wherever it is read.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

from nmlbench.errors import UserError

CHECKPOINT_FORMAT = "nmlbench-checkpoint"
CHECKPOINT_SCHEMA_VERSION = 1
FIX = "re-run `nmlbench pretrain` for this checkpoint (the file is corrupt, truncated or edited)"

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class CorruptCheckpoint(UserError):
    """A checkpoint folder whose files are missing, unreadable or do not match each other.

    `reason` is the problem alone, for callers that handle it (resume falls back to an older one).
    """

    def __init__(self, file: Path, reason: str, fix: str = FIX) -> None:
        super().__init__(f"{file}: {reason}; {fix}")
        self.file, self.reason = file, reason


def read_checkpoint_info(path: str | Path) -> dict[str, Any]:
    """checkpoint.json of a nmlbench checkpoint dir, validated; UserError on another format/schema
    or a missing or mistyped field that loading needs."""
    path = Path(path)
    meta = path / "checkpoint.json"
    if not meta.is_file() or not (path / "model.safetensors").is_file():
        raise CorruptCheckpoint(
            path,
            "not a nmlbench checkpoint (needs checkpoint.json and model.safetensors)",
            "pass a directory written by `nmlbench pretrain`",
        )
    try:
        info = json.loads(meta.read_text(encoding="utf-8"))
    except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
        raise CorruptCheckpoint(meta, "not valid UTF-8 JSON") from None
    if not isinstance(info, dict):
        raise CorruptCheckpoint(meta, "not a JSON object")
    if info.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{meta}: format {info.get('format')!r} is not {CHECKPOINT_FORMAT!r}")
    if info.get("schema_version") != CHECKPOINT_SCHEMA_VERSION:
        raise UserError(
            f"{meta}: checkpoint schema_version {info.get('schema_version')!r}, this nmlbench reads "
            f"{CHECKPOINT_SCHEMA_VERSION}; use the nmlbench version that wrote it or re-run pretraining"
        )
    if info.get("library") not in ("timm", "open_clip", "transformers"):
        raise UserError(
            f"{meta}: library {info.get('library')!r} must be 'timm', 'open_clip' or 'transformers'"
        )
    if problem := _field_problem(info):
        raise CorruptCheckpoint(meta, problem)
    return info


def _field_problem(info: dict[str, Any]) -> str | None:
    """What is wrong with the fields a loader relies on, or None."""
    if not isinstance(info.get("arch"), str) or not info["arch"]:
        return f"arch {info.get('arch')!r} is not a model name"
    size = info.get("image_size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        return f"image_size {size!r} is not a positive number of pixels"
    if info.get("library") == "transformers":  # text: tokens per sample in image_size, a model config
        return None if isinstance(info.get("hf_config"), dict) else "hf_config is not a mapping"
    for key in ("mean", "std"):
        v = info.get(key)
        if not isinstance(v, list) or len(v) != 3 or not all(_finite(x) for x in v):
            return f"{key} {v!r} is not a list of 3 numbers"
    if not isinstance(info.get("model_kwargs", {}), dict):
        return "model_kwargs is not a mapping"
    if not isinstance(info.get("open_clip_config"), dict | None):
        return "open_clip_config is not a mapping"
    if not isinstance(info.get("weights_sha256"), str) or not _SHA256.match(info["weights_sha256"]):
        return "weights_sha256 is missing or not a sha256"
    return None


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


_verified: dict[tuple[str, int, int], str] = {}


def verified_weights_sha256(path: str | Path, info: dict[str, Any]) -> str:
    """sha256 of `path/model.safetensors`, checked against checkpoint.json's `weights_sha256`.

    Remembered per (file, size, mtime) in this process: identity and loading hash a checkpoint once.
    """
    from nmlbench.io import sha256_file

    weights = Path(path) / "model.safetensors"
    st = os.stat(weights)
    key = (os.path.abspath(weights), st.st_size, st.st_mtime_ns)
    digest = _verified.get(key) or sha256_file(weights)
    if digest != info["weights_sha256"]:
        raise CorruptCheckpoint(weights, "sha256 does not match checkpoint.json")
    _verified[key] = digest
    return digest
