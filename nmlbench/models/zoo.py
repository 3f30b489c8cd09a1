"""Tiny registered models for the mini benchmark, and `MODELS`: the model names presets use.

The tiny timm models are registered with timm itself (`timm.create_model("nmlbench_tinyresnet")`
works once this module is imported), so `forward_features`, `forward_head(pre_logits=True)` and
`forward_intermediates` come from timm, not from us. The tiny CLIP is an open_clip model config
added with `open_clip.add_model_config`; checkpoints also carry the config JSON so they load anywhere.
"""

from __future__ import annotations

import difflib
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import open_clip
import timm
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models.resnet import BasicBlock, ResNet
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from nmlbench.errors import UserError
from nmlbench.registry import Registry

# The mini benchmark's images are 32x32 RGB; these statistics are the usual ImageNet ones, kept
# so that the same transforms serve mini and real data.
MINI_MEAN = (0.485, 0.456, 0.406)
MINI_STD = (0.229, 0.224, 0.225)
OPENAI_MEAN = tuple(open_clip.OPENAI_DATASET_MEAN)
OPENAI_STD = tuple(open_clip.OPENAI_DATASET_STD)


def _cfg(**kwargs: Any) -> dict[str, Any]:
    return {
        "url": "",
        "num_classes": 100,
        "input_size": (3, 32, 32),
        "pool_size": (1, 1),
        "mean": MINI_MEAN,
        "std": MINI_STD,
        "first_conv": "conv1",
        "classifier": "fc",
        # 32 px images are evaluated whole (no border crop), with the interpolation they were trained with
        "crop_pct": 1.0,
        "interpolation": "bilinear",
        **kwargs,
    }


default_cfgs = generate_default_cfgs(
    {
        "nmlbench_tinyresnet.untrained": _cfg(),
        "nmlbench_tinyvit.untrained": _cfg(first_conv="patch_embed.proj", classifier="head"),
    }
)


@register_model
def nmlbench_tinyresnet(pretrained: bool = False, **kwargs: Any) -> ResNet:
    """A narrow ResNet-10 (BasicBlock x 1 per stage, widths 32-64-128-256) for 32x32 inputs.

    timm's 7x7 stride-2 stem conv is kept but its max-pool is dropped (32x32 -> 16x16 after the
    stem): with the pool, stage 1 saw 8x8 maps and the mini study's encoders learned too little shape
    to transfer (OOD near chance); without it one step costs ~1.7x as much. The network is still a
    timm ResNet (`feature_info` reductions adjusted), so every timm feature API works on it.
    """
    args = dict(block=BasicBlock, layers=(1, 1, 1, 1), channels=(32, 64, 128, 256), stem_width=32)
    model = build_model_with_cfg(ResNet, "nmlbench_tinyresnet", pretrained, **dict(args, **kwargs))
    model.maxpool = nn.Identity()
    for info in model.feature_info[1:]:
        info["reduction"] //= 2
    return model


@register_model
def nmlbench_tinyvit(pretrained: bool = False, **kwargs: Any) -> VisionTransformer:
    """A 4-block ViT (width 64, 2 heads, patch 4) for 32x32 inputs: 64 tokens + class token."""
    args = dict(img_size=32, patch_size=4, embed_dim=64, depth=4, num_heads=2, mlp_ratio=2.0)
    return build_model_with_cfg(VisionTransformer, "nmlbench_tinyvit", pretrained, **dict(args, **kwargs))


TINY_CLIP_NAME = "nmlbench-tinyclip"
TINY_CLIP_CONFIG: dict[str, Any] = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


def register_open_clip_config(name: str, config: dict[str, Any]) -> None:
    """Make `config` loadable as open_clip model `name` (idempotent; open_clip reads files only)."""
    if name in open_clip.list_models():
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.json"
        path.write_text(json.dumps(config), encoding="utf-8")
        open_clip.add_model_config(path)


register_open_clip_config(TINY_CLIP_NAME, TINY_CLIP_CONFIG)


@dataclass(frozen=True)
class ModelSpec:
    """What a preset's `model:` name stands for.

    Attributes:
        library: "timm" (supervised) or "open_clip" (CLIP).
        arch: the timm model name or open_clip model config name.
        tag: short name used in checkpoint names (`<tag>.<dataset>_<recipe>_s<seed>`).
        image_size: training resolution.
        kwargs: extra `timm.create_model` kwargs (never `num_classes`: that comes from the data).
    """

    library: Literal["timm", "open_clip", "transformers"]
    arch: str
    tag: str
    image_size: int
    mean: tuple[float, ...] = MINI_MEAN
    std: tuple[float, ...] = MINI_STD
    kwargs: dict[str, Any] = field(default_factory=dict)


MODELS: Registry[ModelSpec] = Registry("model")
MODELS.add("tinyresnet", ModelSpec("timm", "nmlbench_tinyresnet", "tinyresnet", 32))
MODELS.add("tinyvit", ModelSpec("timm", "nmlbench_tinyvit", "tinyvit", 32))
MODELS.add("tinyclip", ModelSpec("open_clip", TINY_CLIP_NAME, "tinyclip", 32, OPENAI_MEAN, OPENAI_STD))
MODELS.add("tinytext", ModelSpec("transformers", "nmlbench-tinytext", "tinytext", 64))  # 64 tokens
MODELS.add("resnet50", ModelSpec("timm", "resnet50", "resnet50", 224))
MODELS.add("clip-rn50", ModelSpec("open_clip", "RN50", "clip_rn50", 224, OPENAI_MEAN, OPENAI_STD))
MODELS.add("clip-vit-b-16", ModelSpec("open_clip", "ViT-B-16", "clip_vit_b16", 224, OPENAI_MEAN, OPENAI_STD))


def resolve_model(name: str, library: str | None = None) -> ModelSpec:
    """A MODELS alias, else any timm model or open_clip config name; unknown names raise UserError.

    Args:
        name: e.g. "tinyresnet", "resnet18", "timm:convnext_tiny", "open_clip:RN50" or "RN50";
            a bare name both libraries know raises (write `timm:` or `open_clip:`).
        library: restrict the lookup to "timm" or "open_clip" (the objective decides).
    """
    if name in MODELS:
        spec = MODELS.get(name)
        if library and spec.library != library:
            raise UserError(
                f"model {name!r} is a {spec.library} model but the objective needs {library}; "
                f"pick a {library} model (known: {', '.join(_aliases(library))})"
            )
        return spec
    if name.startswith("timm:"):
        library, name = library or "timm", name.removeprefix("timm:")
    elif name.startswith("open_clip:"):
        library = library or "open_clip"
    bare = name.removeprefix("open_clip:")
    if library is None and bare in open_clip.list_models() and timm.is_model(name):
        # a name both libraries know: picking one would silently swap models (docs/models.md)
        raise UserError(
            f"model {name!r} is ambiguous: both timm and open_clip have it; "
            f"write timm:{name} or open_clip:{name}"
        )
    if library in (None, "open_clip") and bare in open_clip.list_models():
        cfg = open_clip.get_model_config(bare) or {}
        size = int(cfg.get("vision_cfg", {}).get("image_size", 224))
        return ModelSpec("open_clip", bare, _tagify(bare), size, OPENAI_MEAN, OPENAI_STD)
    if library in (None, "timm") and timm.is_model(name):
        size = int(timm.get_pretrained_cfg(name).input_size[-1]) if timm.get_pretrained_cfg(name) else 224
        return ModelSpec("timm", name, _tagify(name), size)
    known = list(MODELS) + (timm.list_models() if library != "open_clip" else [])
    known += open_clip.list_models() if library != "timm" else []
    close = difflib.get_close_matches(name, sorted(set(known)), n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
    raise UserError(
        f"unknown model {name!r}; {hint}use a preset name ({', '.join(_aliases(library))}), "
        "a timm model name or an open_clip config name"
    )


def _aliases(library: str | None) -> list[str]:
    return [n for n in MODELS if library is None or MODELS.get(n).library == library]


def _tagify(name: str) -> str:
    return name.lower().replace("-", "_").replace("/", "_")
