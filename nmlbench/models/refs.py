"""Model reference string -> what it names, and that model's identity, without loading weights.

    ident = model_identity("convnext_tiny", pretrained=None, image_size=None)  # UserError: ambiguous
    ident = model_identity("timm:convnext_tiny", pretrained=None, image_size=32)
    ident.key, ident.name, ident.block                                          # no download

Resolution order of a reference (docs/models.md), first match wins:

1. an existing directory: a nmlbench checkpoint (checkpoint.json + model.safetensors);
2. a zoo alias (`zoo.MODELS`: tinyresnet, tinyvit, tinyclip, resnet50, clip-rn50, clip-vit-b-16);
3. `timm:NAME`, `timm:NAME.TAG`, `timm:hf-hub:ORG/REPO`;
4. `open_clip:NAME`, `open_clip:NAME/TAG` (the older `open_clip:NAME:TAG` too), `open_clip:hf-hub:ORG/REPO`;
5. a bare `hf-hub:ORG/REPO` is refused: both libraries load hub repos, so the prefix must say which;
6. a bare name: timm if only timm knows it, open_clip if only open_clip knows it; a name both know
   (convnext_tiny, swin_base_patch4_window7_224, ...) is refused with both spellings.

Pretrained weights (`pretrained`): None or "auto" = the library's pretrained weights, and a UserError
when the model has none; False = seeded random init; True = the same as auto. open_clip without a tag
takes the first tag of `open_clip.list_pretrained_tags_by_model(name)` [ours]; timm without a tag takes
timm's default tag. Checkpoint directories ignore the setting (their weights are the checkpoint's).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import open_clip
import timm
from timm.models import get_pretrained_cfg

from nmlbench.errors import UserError
from nmlbench.models import zoo

HUB = "hf-hub:"
TEXT_PREFIX = "hf:"  # a transformers AutoModel (text encoders and decoders)
CLIP_TEXT_PREFIX = "open_clip-text:"  # an open_clip model's text tower
FIX_RANDOM = "--set pretrained=false"


@dataclass(frozen=True)
class ModelRef:
    """What a reference string names (no weights looked at).

    Attributes:
        ref: the string as given.
        library: "timm" or "open_clip" (checkpoints: from checkpoint.json).
        arch: timm model name without tag, open_clip config name, or "hf-hub:ORG/REPO".
        tag: the pretrained tag written in the reference, if any.
        path: absolute checkpoint directory, for checkpoints only.
        alias: the zoo alias, if the reference was one.
        kwargs: extra `timm.create_model` arguments of a zoo alias.
        native_size: the model's own input resolution when known without a download.
    """

    ref: str
    library: str
    arch: str
    tag: str | None = None
    path: str | None = None
    alias: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    native_size: int | None = None


@dataclass(frozen=True)
class ModelIdentity:
    """A model as results are filed: `key` changes whenever the weights or the input size would.

    Attributes:
        name: display name (checkpoint folder name, zoo alias, or `timm:NAME.TAG` / `open_clip:NAME/TAG`).
        key: 16 hex chars: checkpoints hash weights_sha256 + image size; library models hash library,
            arch, tag, pretrained, image size (and the seed and library version for random init).
        block: the record's `model` fields known without loading (checkpoint_sha256 is None for
            library models until the weights are loaded).
    """

    name: str
    key: str
    block: dict[str, Any]


def parse_ref(ref: str | Path) -> ModelRef:
    """Resolve a reference string by the order in the module docstring; UserError when it names nothing."""
    text = str(ref)
    path = Path(text)
    if path.is_dir():
        from nmlbench.models.load import read_checkpoint_info

        info = read_checkpoint_info(path)
        return ModelRef(
            text, info["library"], info["arch"], path=str(path.resolve()), native_size=int(info["image_size"])
        )
    if text in zoo.MODELS:
        spec = zoo.MODELS.get(text)
        return ModelRef(
            text, spec.library, spec.arch, alias=text, kwargs=dict(spec.kwargs), native_size=spec.image_size
        )
    if text.startswith(TEXT_PREFIX):
        name = text.removeprefix(TEXT_PREFIX)
        if not name:
            raise UserError("model 'hf:' names no model; write hf:NAME, e.g. hf:bert-base-uncased")
        return ModelRef(text, "transformers", name)
    if text.startswith(CLIP_TEXT_PREFIX):  # an open_clip model's text tower
        ref = _open_clip_ref(text, text.removeprefix(CLIP_TEXT_PREFIX))
        ctx = int((open_clip.get_model_config(ref.arch) or {}).get("text_cfg", {}).get("context_length", 77))
        return ModelRef(text, "open_clip-text", ref.arch, tag=ref.tag, native_size=ctx)
    if text.startswith("timm:"):
        return _timm_ref(text, text.removeprefix("timm:"))
    if text.startswith("open_clip:"):
        return _open_clip_ref(text, text.removeprefix("open_clip:"))
    if "/" in text and not text.startswith(HUB):  # meant as a path: a typo must not become a name lookup
        raise UserError(f"no checkpoint directory at {text}; pass a directory written by `nmlbench pretrain`")
    if text.startswith(HUB):
        raise UserError(
            f"model {text!r} could be a timm or an open_clip hub repo; write timm:{text} or open_clip:{text} "
            f"(or hf:{text.removeprefix(HUB)} for a transformers text model)"
        )
    in_timm, in_clip = timm.is_model(text), text in open_clip.list_models()
    if in_timm and in_clip:
        raise UserError(
            f"model {text!r} is ambiguous: both timm and open_clip have it; "
            f"write timm:{text} or open_clip:{text}"
        )
    if in_clip:
        return _open_clip_ref(text, text)
    if in_timm:
        return _timm_ref(text, text)
    zoo.resolve_model(text)  # raises the did-you-mean error
    raise AssertionError("unreachable: resolve_model accepted a name neither library knows")


def _timm_ref(text: str, name: str) -> ModelRef:
    if name.startswith(HUB):
        return ModelRef(text, "timm", name)
    arch, _, tag = name.partition(".")
    if not timm.is_model(arch):
        zoo.resolve_model(arch, library="timm")  # did-you-mean
    if tag and tag not in (tags := _timm_tags(arch)):
        raise UserError(
            f"timm model {arch!r} has no pretrained tag {tag!r}; known: {', '.join(tags) or 'none'}"
        )
    cfg = get_pretrained_cfg(name if tag else arch)
    size = int(cfg.input_size[-1]) if cfg is not None else 224
    return ModelRef(text, "timm", arch, tag=tag or None, native_size=size)


def _open_clip_ref(text: str, name: str) -> ModelRef:
    if name.startswith(HUB):
        return ModelRef(text, "open_clip", name)
    sep = "/" if "/" in name else ":"  # NAME/TAG, or the older NAME:TAG
    arch, _, tag = name.partition(sep)
    if arch not in open_clip.list_models():
        zoo.resolve_model(arch, library="open_clip")  # did-you-mean
    tags = open_clip.list_pretrained_tags_by_model(arch)
    if tag and tag not in tags:
        raise UserError(
            f"open_clip model {arch!r} has no pretrained tag {tag!r}; known: {', '.join(tags) or 'none'}"
        )
    cfg = (open_clip.get_model_config(arch) or {}).get("vision_cfg", {})
    size = cfg.get("image_size", 224)
    size = size[-1] if isinstance(size, (list, tuple)) else size
    return ModelRef(text, "open_clip", arch, tag=tag or None, native_size=int(size))


def _timm_tags(arch: str) -> list[str]:
    return [n.partition(".")[2] for n in timm.list_pretrained(f"{arch}.*")]


def resolve_weights(mref: ModelRef, pretrained: bool | str | None) -> tuple[bool | None, str | None]:
    """(pretrained, tag) a library model loads with; UserError when pretrained weights cannot be had.

    Checkpoints return (None, None): their weights are the checkpoint's whatever the setting, and the
    record's `pretrained` field (library weights loaded?) is null for them (result.v1.json).
    """
    if mref.path is not None:
        return None, None
    if pretrained not in (None, "auto", True, False):
        raise UserError(f"pretrained must be auto, true or false, got {pretrained!r}")
    want = pretrained is not False
    label = mref.alias or mref.ref
    if not want:
        if mref.tag:
            raise UserError(
                f"model {label!r} names pretrained weights ({mref.tag!r}) but pretrained=false; "
                "drop the tag for a random init or drop pretrained=false"
            )
        return False, None
    if mref.arch.startswith(HUB):
        return True, None  # the repo is the weights
    if mref.library == "transformers":
        if mref.alias:  # the registered tiny model: an architecture, not weights
            raise UserError(
                f"model {label!r} has no pretrained weights; pass {FIX_RANDOM} for a seeded random init"
            )
        return True, None  # an AutoModel name is its weights (its revision: the HF cache's)
    if mref.library == "timm":
        cfg = get_pretrained_cfg(f"{mref.arch}.{mref.tag}" if mref.tag else mref.arch)
        if cfg is None or not cfg.has_weights:
            raise UserError(
                f"model {label!r} has no pretrained weights in timm; "
                f"pass {FIX_RANDOM} for a seeded random init"
            )
        return True, mref.tag or cfg.tag
    if mref.tag:
        return True, mref.tag
    tags = open_clip.list_pretrained_tags_by_model(mref.arch)
    if not tags:
        raise UserError(
            f"model {label!r} has no pretrained weights in open_clip (no tag in "
            f"open_clip.list_pretrained()); pass {FIX_RANDOM} for a seeded random init"
        )
    return True, tags[0]


@contextlib.contextmanager
def quiet_open_clip() -> Iterator[None]:
    """Mute open_clip's root-logger lines (failed download, random init) that we turn into one error."""
    previous = logging.root.manager.disable
    logging.disable(logging.ERROR)
    try:
        yield
    finally:
        logging.disable(previous)


def model_identity(
    ref: str | Path,
    pretrained: bool | str | None = None,
    image_size: int | None = None,
    seed: int = 0,
    text: Any = None,
) -> ModelIdentity:
    """The identity of a model reference under these settings, without loading any weights.

    Args:
        ref: a reference (module docstring).
        pretrained: None/"auto"/True (library weights) or False (random init seeded by `seed`).
        image_size: evaluation resolution; None = the model's own.
        seed: random-init seed; enters the key only when pretrained is False.
    """
    mref = parse_ref(ref)
    return identity_of(mref, pretrained, image_size, seed, text)


def identity_of(
    mref: ModelRef, pretrained: bool | str | None, image_size: int | None, seed: int = 0, text: Any = None
) -> ModelIdentity:
    """`model_identity` for an already parsed reference.

    Text models (library transformers) take `text` (`nmlbench.models.text.TextOptions`): their input
    size is tokens per sample (`max_length`, in the record's `image_size` slot) and their pooling
    enters the key; `image_size` does not apply to them.
    """
    if image_size is not None and image_size < 1:
        raise UserError(f"image_size must be a positive number of pixels, got {image_size}")
    pooling = None
    if mref.library == "open_clip-text":
        asked = getattr(text, "max_length", None)
        if image_size is not None or (asked is not None and asked != mref.native_size):
            raise UserError(
                f"{mref.ref!r} reads {mref.native_size} tokens (its context length), fixed by its position "
                "embeddings; drop image_size / text.max_length"
            )
        if getattr(text, "pooling", "auto") not in ("auto", None):
            raise UserError(f"{mref.ref!r} pools its end-of-text token (open_clip's own); drop text.pooling")
        image_size, pooling = mref.native_size, "eot"
    elif mref.library == "transformers":
        if image_size is not None:
            raise UserError(
                f"image_size applies to image models, not the text model {mref.ref!r}; "
                "set text.max_length (tokens per sample) instead"
            )
        image_size = getattr(text, "max_length", None) or mref.native_size or 128
        pooling = getattr(text, "pooling", None) or "auto"
    size = image_size or mref.native_size
    if mref.path is not None:
        ident = _checkpoint_identity(mref, size, pooling)
        return ident
    want, tag = resolve_weights(mref, pretrained)
    if mref.alias:
        name = mref.alias
    elif mref.library == "transformers":
        name = mref.ref
    elif mref.library == "open_clip-text":
        name = f"{CLIP_TEXT_PREFIX}{mref.arch}" + (f"/{tag}" if tag else "")
    else:
        sep = "." if mref.library == "timm" else "/"
        name = f"{mref.library}:{mref.arch}" + (f"{sep}{tag}" if tag else "")
    payload = {
        "library": mref.library,
        "arch": mref.arch,
        "kwargs": mref.kwargs,
        "tag": tag,
        "pretrained": want,
        "image_size": size,
        # a random init is a function of the seed and of the library's init code
        "seed": None if want else seed,
        "version": None if want else _version(mref.library),
    }
    if pooling is not None:
        payload["pooling"] = pooling
    block = _block(mref, name, _hash(payload), want, tag, size)
    if pooling is not None:
        block.update(max_length=size, pooling=pooling)
    return ModelIdentity(name, block["key"], block)


def _checkpoint_identity(mref: ModelRef, size: int | None, pooling: str | None = None) -> ModelIdentity:
    from nmlbench.models.info import read_checkpoint_info, verified_weights_sha256

    path = Path(mref.path or "")
    info = read_checkpoint_info(path)
    # checked here, before anything is written: the key files results and caches under these weights
    weights = verified_weights_sha256(path, info)
    payload: dict[str, Any] = {"weights_sha256": weights, "image_size": size}
    if pooling is not None:  # text checkpoints: the pooling changes the features
        payload["pooling"] = pooling
    key = _hash(payload)
    noise = info.get("noise")
    block = _block(mref, path.name, key, None, None, size)
    block.update(
        checkpoint_sha256=weights,
        noise=noise,
        manifest_sha256=info.get("manifest_sha256"),
        pretrain_seed=info.get("seed", (noise or {}).get("seed")),
        data=info.get("data"),
        pretrain_key=info.get("pretrain_key"),
    )
    if pooling is not None:
        block.update(max_length=size, pooling=pooling)
    return ModelIdentity(path.name, key, block)


def _block(
    mref: ModelRef, name: str, key: str, want: bool | None, tag: str | None, size: int | None
) -> dict[str, Any]:
    return {
        "ref": mref.ref,
        "name": name,
        "library": mref.library,
        "arch": mref.arch,
        "key": key,
        "pretrained": want,
        "tag": tag,
        "image_size": size,
        "checkpoint_sha256": None,
        "noise": None,
        "manifest_sha256": None,
        "pretrain_seed": None,
        "data": None,
        "pretrain_key": None,
    }


def _hash(payload: dict[str, Any]) -> str:
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _version(library: str) -> str:
    if library == "transformers":
        import transformers

        return str(transformers.__version__)
    return str(timm.__version__ if library == "timm" else open_clip.__version__)
