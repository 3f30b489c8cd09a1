"""The checkpoint directory format (docs/checkpoints.md): safetensors weights + checkpoint.json +
config.yaml, written as a whole under a temporary name and renamed, so a reader never sees half of one.

Interval checkpoints of a run in progress live under `ckpt/.partial/<name>/step-XXXXXXXX/` and also
hold `train_state.pt` (optimizer, scheduler, RNG, position); the finished run is `ckpt/<name>/`.
Resuming reads an interval checkpoint whole and checks it (`load_interval`); a corrupt newest one is
skipped, saying so, for the newest one that is good (`newest_good`).
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from nmlbench.errors import UserError
from nmlbench.io import atomic_dir, sha256_file, write_json
from nmlbench.models.info import CorruptCheckpoint, read_checkpoint_info, verified_weights_sha256

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


def interval_dir(work: Path, step: int) -> Path:
    return work / f"step-{step:08d}"


def list_intervals(work: Path) -> list[Path]:
    """Interval checkpoint folders that look complete, oldest first (temporaries are never listed)."""
    return [p for p in all_intervals(work) if (p / META).is_file() and (p / TRAIN_STATE).is_file()]


def all_intervals(work: Path) -> list[Path]:
    """Every `step-*` folder, complete or not, oldest first."""
    if not work.is_dir():
        return []
    return sorted(p for p in work.glob("step-*") if p.is_dir())


def prune(work: Path, keep: int) -> None:
    """Keep the newest `keep` interval checkpoints (killed writes' leftovers: `nmlbench.leftovers`)."""
    for old in list_intervals(work)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


@dataclass(frozen=True)
class Interval:
    """One interval checkpoint, read and checked: what resuming needs."""

    path: Path
    config: dict[str, Any]  # config.yaml as written
    weights: dict[str, torch.Tensor]
    state: dict[str, Any]  # train_state.pt


_STATE_KEYS = ("step", "skipped", "seen", "optimizer", "scheduler", "torch_rng", "python_rng")


def load_interval(path: Path) -> Interval:
    """Read an interval checkpoint whole, checking every file; CorruptCheckpoint names the first problem.

    Checked: checkpoint.json's fields, the weights against its `weights_sha256`, that the weights,
    config.yaml and train_state.pt load, and that train_state.pt is for checkpoint.json's step.
    """
    if not (path / TRAIN_STATE).is_file():
        raise CorruptCheckpoint(path, f"no {TRAIN_STATE} (an incomplete interval checkpoint)")
    info = read_checkpoint_info(path)
    verified_weights_sha256(path, info)
    try:
        weights = load_file(str(path / WEIGHTS))
    except (SafetensorError, OSError) as e:
        raise CorruptCheckpoint(path / WEIGHTS, f"unreadable ({e})") from None
    try:
        config = yaml.safe_load((path / CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError) as e:
        raise CorruptCheckpoint(path / CONFIG, f"unreadable ({type(e).__name__})") from None
    if not isinstance(config, dict):
        raise CorruptCheckpoint(path / CONFIG, "not a YAML mapping")
    try:  # weights_only: a checkpoint never runs code when it is loaded
        with warnings.catch_warnings():  # garbage makes torch warn about its pickle protocol first
            warnings.simplefilter("ignore")
            state = torch.load(path / TRAIN_STATE, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - the unpickler raises whatever arbitrary bytes make it hit
        raise CorruptCheckpoint(path / TRAIN_STATE, f"unreadable ({type(e).__name__})") from None
    if not isinstance(state, dict) or (missing := [k for k in _STATE_KEYS if k not in state]):
        raise CorruptCheckpoint(path / TRAIN_STATE, f"misses {missing if isinstance(state, dict) else 'all'}")
    if not isinstance(state["step"], int) or info.get("step") != state["step"]:
        raise CorruptCheckpoint(
            path, f"{TRAIN_STATE} is for step {state['step']!r}, {META} for step {info.get('step')!r}"
        )
    return Interval(path, config, weights, state)


def problem(e: CorruptCheckpoint, folder: Path) -> str:
    """What is wrong with checkpoint `folder`, naming the file inside it where that is the culprit."""
    return e.reason if e.file == folder else f"{e.file.name}: {e.reason}"


def check_finished(final: Path) -> None:
    """A finished checkpoint is reused only if it is intact; a corrupt one is never trained over."""
    try:
        verified_weights_sha256(final, read_checkpoint_info(final))
    except CorruptCheckpoint as e:
        raise UserError(
            f"{final} is a finished run but {problem(e, final)}; delete {final} to train it again"
        ) from None


def newest_good(work: Path, say: Callable[[str], None]) -> Interval | None:
    """The newest interval checkpoint of `work` that loads and matches its hash; None if there is none.

    Each one skipped is said on one line once a good one is found; if every one is bad, one
    UserError lists them and the fix (and nothing else is said).
    """
    skipped, lines = [], []
    for path in reversed(all_intervals(work)):
        try:
            good = load_interval(path)
        except CorruptCheckpoint as e:
            why = problem(e, path)
            skipped.append(f"{path.name} ({why})")
            lines.append(f"skipping interval checkpoint {path}: {why}; resuming from an older one")
            continue
        for line in lines:
            say(line)
        return good
    if skipped:
        raise UserError(
            f"no usable interval checkpoint in {work}: {'; '.join(skipped)}; pass --resume never "
            f"to start this run over (or delete {work})"
        )
    return None
