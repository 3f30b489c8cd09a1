"""The checkpoint directory format (docs/checkpoints.md): safetensors weights + checkpoint.json +
config.yaml, written as a whole under a temporary name and renamed, so a reader never sees half of one.

Interval checkpoints of a run in progress live under `ckpt/.partial/<name>/step-XXXXXXXX/` and also
hold `train_state.pt` (optimizer, scheduler, RNG, position); the finished run is `ckpt/<name>/`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from nmlbench.errors import UserError
from nmlbench.io import atomic_dir, sha256_file, write_json

FORMAT = "nmlbench-checkpoint"
SCHEMA_VERSION = 1
WEIGHTS = "model.safetensors"
META = "checkpoint.json"
CONFIG = "config.yaml"
TRAIN_STATE = "train_state.pt"


def save_checkpoint(
    dest: Path,
    model: torch.nn.Module,
    meta: dict[str, Any],
    config_yaml: str,
    train_state: dict[str, Any] | None = None,
    extra_files: tuple[Path, ...] = (),
) -> Path:
    """Write a complete checkpoint directory at `dest` atomically (replacing an older one)."""
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    with atomic_dir(dest) as tmp:
        save_file(state, str(tmp / WEIGHTS), metadata={"format": "pt"})
        full = dict(
            meta, format=FORMAT, schema_version=SCHEMA_VERSION, weights_sha256=sha256_file(tmp / WEIGHTS)
        )
        write_json(tmp / META, full)
        (tmp / CONFIG).write_text(config_yaml, encoding="utf-8")
        if train_state is not None:
            torch.save(train_state, tmp / TRAIN_STATE)
        for f in extra_files:
            if f.exists():
                shutil.copy2(f, tmp / f.name)
    return dest


def read_meta(path: str | Path) -> dict[str, Any]:
    """checkpoint.json of a checkpoint directory, checked for format and schema version."""
    meta_path = Path(path) / META
    if not meta_path.is_file():
        raise UserError(f"{path} is not an nmlbench checkpoint (no {META}); pass a checkpoint directory")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT or meta.get("schema_version") != SCHEMA_VERSION:
        raise UserError(
            f"{meta_path}: format {meta.get('format')!r} v{meta.get('schema_version')} is not "
            f"{FORMAT} v{SCHEMA_VERSION}; re-export it with this nmlbench version"
        )
    return meta


def interval_dir(work: Path, step: int) -> Path:
    return work / f"step-{step:08d}"


def list_intervals(work: Path) -> list[Path]:
    """Complete interval checkpoints, oldest first (temporary dirs from a killed write are ignored)."""
    if not work.is_dir():
        return []
    return sorted(p for p in work.glob("step-*") if (p / META).is_file() and (p / TRAIN_STATE).is_file())


def prune(work: Path, keep: int) -> None:
    """Keep the newest `keep` interval checkpoints; also drop leftovers of writes that were killed."""
    for old in list_intervals(work)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    for tmp in work.glob(".step-*.tmp"):
        shutil.rmtree(tmp, ignore_errors=True)


def load_train_state(path: Path) -> dict[str, Any]:
    return torch.load(path / TRAIN_STATE, map_location="cpu", weights_only=True)


