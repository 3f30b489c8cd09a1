"""`checkpoint.json` of a nmlbench checkpoint folder, read and checked (format, schema, library).

Shared by model identity (`refs`, which must not load weights) and the loader (`load`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nmlbench.errors import UserError

CHECKPOINT_FORMAT = "nmlbench-checkpoint"
CHECKPOINT_SCHEMA_VERSION = 1


def read_checkpoint_info(path: str | Path) -> dict[str, Any]:
    """checkpoint.json of a nmlbench checkpoint dir, validated; UserError on another format/schema."""
    path = Path(path)
    meta = path / "checkpoint.json"
    if not meta.is_file() or not (path / "model.safetensors").is_file():
        raise UserError(
            f"{path} is not a nmlbench checkpoint (needs checkpoint.json and model.safetensors); "
            "pass a directory written by `nmlbench pretrain`"
        )
    try:
        info = json.loads(meta.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        raise UserError(f"{meta}: not valid JSON; re-run `nmlbench pretrain` for this checkpoint") from None
    if info.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{meta}: format {info.get('format')!r} is not {CHECKPOINT_FORMAT!r}")
    if info.get("schema_version") != CHECKPOINT_SCHEMA_VERSION:
        raise UserError(
            f"{meta}: checkpoint schema_version {info.get('schema_version')!r}, this nmlbench reads "
            f"{CHECKPOINT_SCHEMA_VERSION}; use the nmlbench version that wrote it or re-run pretraining"
        )
    if info.get("library") not in ("timm", "open_clip"):
        raise UserError(f"{meta}: library {info.get('library')!r} must be 'timm' or 'open_clip'")
    return info
