"""Library weights on this machine before any work: `check_models` resolves every reference and finds
(or downloads into the HF cache) its pretrained weights, so a grid fails in one line before it writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import open_clip
from timm.models import get_pretrained_cfg

from nmlbench.errors import UserError
from nmlbench.models.refs import (
    FIX_RANDOM,
    HUB,
    identity_of,
    model_identity,
    parse_ref,
    quiet_open_clip,
    resolve_weights,
)


def check_models(
    refs: Iterable[str], pretrained: bool | str | None, image_size: int | None, text: Any = None
) -> None:
    """Every reference resolved and its library weights found (or fetched) before anything is
    written: an ambiguous name or unreachable weights fail here, not halfway through a grid."""
    for ref in refs:
        model_identity(ref, pretrained, image_size, text=text)
        fetch_weights(ref, pretrained)


def fetch_weights(ref: str | Path, pretrained: bool | str | None = None) -> None:
    """Make sure a library model's pretrained weights are on this machine (HF cache or download).

    Cheap once cached, and builds no model: callers run it for every model before writing anything,
    so unreachable weights stop the command with one line (exit 2) and no output. Checkpoints and
    random inits need nothing.
    """
    mref = parse_ref(ref)
    want, tag = resolve_weights(mref, pretrained)
    if not want or mref.library == "transformers":  # transformers fetches while loading
        return
    try:
        if mref.library == "timm":
            _fetch_timm(mref.arch, tag)
        else:
            with quiet_open_clip():
                _fetch_open_clip(mref.arch, tag)
    except Exception as e:  # hub/network/cache errors come in many types
        name = identity_of(mref, pretrained, None).name
        raise UserError(
            f"cannot get pretrained weights for {name!r} ({type(e).__name__}); check the network or the "
            f"HF cache (HF_HOME), or pass {FIX_RANDOM} for a seeded random init"
        ) from None


def _fetch_timm(arch: str, tag: str | None) -> None:
    from timm.models._builder import _resolve_pretrained_source
    from timm.models._hub import download_cached_file

    if arch.startswith(HUB):
        _hub_file(arch.removeprefix(HUB), ["config.json"])
        _hub_file(arch.removeprefix(HUB), ["model.safetensors", "pytorch_model.bin"])
        return
    cfg = get_pretrained_cfg(f"{arch}.{tag}" if tag else arch)
    load_from, loc = _resolve_pretrained_source(cfg.to_dict())
    if load_from == "hf-hub":
        _hub_file(loc, [cfg.hf_hub_filename or "model.safetensors", "model.safetensors", "pytorch_model.bin"])
    elif load_from == "url":
        download_cached_file(loc, check_hash=False, progress=False)
    elif load_from == "file" and not Path(loc).is_file():
        raise FileNotFoundError(loc)


def _fetch_open_clip(arch: str, tag: str | None) -> None:
    if arch.startswith(HUB):
        repo = arch.removeprefix(HUB)
        _hub_file(repo, ["open_clip_config.json"])
        _hub_file(repo, ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"])
        return
    cfg = open_clip.get_pretrained_cfg(arch, tag or "")
    if not open_clip.download_pretrained(cfg):
        raise FileNotFoundError(f"{arch}/{tag}")


def _hub_file(repo: str, names: list[str]) -> str:
    """The first of `names` the hub repo (or the local HF cache) has; the last error otherwise."""
    from huggingface_hub import hf_hub_download

    repo, _, revision = repo.partition("@")
    error: Exception = FileNotFoundError(repo)
    for name in dict.fromkeys(names):
        try:
            return str(hf_hub_download(repo, name, revision=revision or None))
        except Exception as e:  # missing file, offline, no network: try the next name
            error = e
    raise error
