"""Checkpoint, timm name or open_clip name -> a frozen `Backbone` with transforms, taps and provenance.

    bb = load_backbone("nmlbench-out/ckpt/tinyresnet.mini_sym10_s0")
    bb = load_backbone("resnet50", pretrained=True)          # timm weights when downloadable
    bb = load_backbone("open_clip:ViT-B-16:laion2b_s34b_b88k")
    feats = bb.features(images)                               # (B, D) pooled, no grad

Pooled features are what the reference feeds NMTune: timm's pre-logits and open_clip's projected
image embedding (not L2-normalised).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import open_clip
import timm
import torch
from safetensors.torch import load_file
from torch import nn
from torchvision import transforms as T

from nmlbench.errors import UserError
from nmlbench.io import sha256_file
from nmlbench.models import zoo

CHECKPOINT_FORMAT = "nmlbench-checkpoint"
CHECKPOINT_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class AugmentConfig:
    """Train-time augmentation for tuning and cached views; None picks the library's reference value."""

    scale_min: float | None = None  # RandomResizedCrop lower scale: timm 0.8, CLIP 0.9 [ref]
    scale_max: float = 1.0
    hflip: bool | None = None  # timm: flip [ref]; CLIP: no flip [ref]

    def __post_init__(self) -> None:
        if self.scale_min is not None and not 0.0 < self.scale_min <= self.scale_max <= 1.0:
            raise ValueError(f"need 0 < scale_min <= scale_max <= 1, got {self.scale_min}, {self.scale_max}")


class PooledEncoder(nn.Module):
    """images (B,3,H,W) -> pooled features (B,D); also pooled intermediate taps for LEVI."""

    def __init__(self, model: nn.Module, library: str) -> None:
        super().__init__()
        self.model = model
        self.library = library

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.library == "open_clip":
            return self.model(x)  # the visual tower's projected embedding, (B, D)
        return self.model.forward_head(self.model.forward_features(x), pre_logits=True)

    def taps(self, x: torch.Tensor, indices: list[int]) -> list[torch.Tensor]:
        """Pooled features at the given block/stage indices, each (B, d_i)."""
        if self.library == "open_clip":
            out = self.model.forward_intermediates(
                x,
                indices=indices,
                intermediates_only=True,
                normalize_intermediates=True,
                output_extra_tokens=True,
            )
            prefix = out.get("image_intermediates_prefix")
            if prefix:  # ViT: class token (after ln_post); else pool the maps
                return [p[:, 0] for p in prefix]
            return [m.mean(dim=(2, 3)) for m in out["image_intermediates"]]
        if getattr(self.model, "num_prefix_tokens", 0) > 0:
            # timm ViT: class token after the final norm, the taps METHODS.md describes
            out = self.model.forward_intermediates(
                x, indices=indices, intermediates_only=True, norm=True, return_prefix_tokens=True
            )
            return [prefix[:, 0] for _, prefix in out]
        out = self.model.forward_intermediates(x, indices=indices, intermediates_only=True)
        return [m.mean(dim=(2, 3)) if m.ndim == 4 else m.mean(dim=1) for m in out]


class Backbone:
    """A frozen feature extractor plus what every stage needs to know about it.

    Attributes:
        name: short display name (checkpoint dir name, timm name or open_clip:<model>[:<tag>]).
        key: content hash of the weights; feature caches are keyed by it.
        provenance: `model` block of a result record (checkpoint/manifest hashes, noise, seed).
        calls: number of batches run through `features` (tests count extraction with it).
    """

    def __init__(
        self, model: nn.Module, *, library: str, arch: str, name: str, ref: str, meta: dict[str, Any]
    ) -> None:
        self.encoder = PooledEncoder(model, library).eval()
        for p in self.encoder.parameters():
            p.requires_grad_(False)
        self.library, self.arch, self.name, self.ref = library, arch, name, ref
        self.image_size: int = int(meta["image_size"])
        self.mean: tuple[float, ...] = tuple(meta["mean"])
        self.std: tuple[float, ...] = tuple(meta["std"])
        self.interpolation: str = meta.get(
            "interpolation", "bicubic" if library == "open_clip" else "bilinear"
        )
        self.provenance: dict[str, Any] = meta["provenance"]
        self.key: str = meta["key"]
        self.calls = 0
        self.device = torch.device("cpu")
        with torch.no_grad():
            self.feature_dim = int(
                self.encoder(torch.zeros(1, 3, self.image_size, self.image_size)).shape[-1]
            )

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features (B, D) of a normalised image batch, in eval mode without gradients."""
        self.calls += 1
        self.encoder.eval()
        return self.encoder(x.to(self.device)).float().cpu()  # caches and tuners take CPU tensors

    def to(self, device: str | torch.device) -> Backbone:
        """Move the frozen encoder (and every later `trainable_encoder` copy) to `device`."""
        self.device = torch.device(device)
        self.encoder.to(self.device)
        return self

    def trainable_encoder(self) -> PooledEncoder:
        """A deep copy with gradients on, for methods that tune the backbone (FT, LoRA)."""
        enc = copy.deepcopy(self.encoder)
        for p in enc.parameters():
            p.requires_grad_(True)
        return enc

    def eval_transform(self) -> T.Compose:
        """Resize + centre crop at the model's resolution, no augmentation (LP, eval features)."""
        interp = T.InterpolationMode(self.interpolation)
        return T.Compose(
            [
                T.Resize(self.image_size, interpolation=interp),
                T.CenterCrop(self.image_size),
                T.ToTensor(),
                T.Normalize(self.mean, self.std),
            ]
        )

    def train_transform(self, aug: AugmentConfig | None = None) -> T.Compose:
        """METHODS.md: RandomResizedCrop(0.8-1) + flip for timm; (0.9-1), no flip, for CLIP."""
        aug = aug or AugmentConfig()
        clip = self.library == "open_clip"
        scale = (aug.scale_min if aug.scale_min is not None else (0.9 if clip else 0.8), aug.scale_max)
        flip = aug.hflip if aug.hflip is not None else not clip
        steps: list[Any] = [
            T.RandomResizedCrop(
                self.image_size, scale=scale, interpolation=T.InterpolationMode(self.interpolation)
            )
        ]
        if flip:
            steps.append(T.RandomHorizontalFlip())
        return T.Compose([*steps, T.ToTensor(), T.Normalize(self.mean, self.std)])

    def tap_indices(self, fractions: tuple[float, ...]) -> list[int]:
        """`forward_intermediates` indices at the given depth fractions of the stages (1.0 = last).

        The stem is not a stage: timm lists it first in a CNN's `feature_info` (ResNet `act1`,
        RegNet `stem`, ResNetV2 `stem.conv`, ...) and open_clip's ModifiedResNet at index 0, so
        fractions count the stages after it (resnet50: 0.5, 0.75, 1.0 -> layer2, layer3, layer4).
        Fraction f picks stage ceil(f * depth), 1-based; raises when the model has no tap points.
        """
        n = self.depth()
        model = self.encoder.model
        if self.library == "open_clip":
            stem = 0 if getattr(getattr(model, "transformer", None), "resblocks", None) is not None else 1
        else:
            stem_re = re.compile(r"(stem|act1|bn1|conv1|features\.norm0)(\..*)?")
            stem = 0
            while stem < n - 1 and stem_re.fullmatch(model.feature_info[stem]["module"]):
                stem += 1
        stages = n - stem
        # ceil, not round: round(2.5) == 2 would tap layer1 of a 4-stage ResNet at f = 0.5
        return sorted({stem + min(stages, max(1, math.ceil(f * stages - 1e-9))) - 1 for f in fractions})

    def depth(self) -> int:
        """Length of the model's `forward_intermediates` index space, stem included; UserError if none."""
        model = self.encoder.model
        if not hasattr(model, "forward_intermediates"):
            raise UserError(
                f"model {self.name!r} has no intermediate layers LEVI can tap "
                "(needs timm/open_clip forward_intermediates); use a timm CNN/ViT or an open_clip ViT"
            )
        if self.library == "open_clip":
            blocks = getattr(getattr(model, "transformer", None), "resblocks", None)
            if blocks is None:
                return 5  # ModifiedResNet: stem + 4 stages, indexed like timm feature_info
            return len(blocks)
        info = getattr(model, "feature_info", None)
        if not info:
            raise UserError(
                f"model {self.name!r} does not list its stages (timm feature_info); "
                "LEVI cannot tap it: use levi with a timm CNN/ViT"
            )
        return len(info)


def load_backbone(ref: str | Path, pretrained: bool = True, seed: int = 0) -> Backbone:
    """Load a nmlbench checkpoint dir, a timm name or `open_clip:<model>[:<pretrained>]`.

    Args:
        ref: the model reference (see module docstring); zoo aliases such as "tinyresnet" also work.
        pretrained: timm names only: load the library's pretrained weights (needs a download).
        seed: seeds random initialisation so that `pretrained=False` models are reproducible.
    """
    path = Path(ref)
    if path.is_dir():
        return _load_checkpoint(path)
    text = str(ref)
    torch.manual_seed(seed)
    if text.startswith("open_clip:"):
        return _load_open_clip(text)
    spec = zoo.resolve_model(text)
    if spec.library == "open_clip":
        return _load_open_clip(f"open_clip:{spec.arch}")
    try:
        model = timm.create_model(spec.arch, pretrained=pretrained, num_classes=0, **spec.kwargs)
    except Exception as e:  # hub/network errors come in many types
        raise UserError(
            f"cannot load pretrained weights for timm model {text!r} ({type(e).__name__}); "
            "check the network/HF cache or pass --set pretrained=false for random init"
        ) from None
    cfg = model.pretrained_cfg or {}
    size = int(cfg.get("input_size", (3, spec.image_size, spec.image_size))[-1])
    digest = _weights_digest(model)
    meta = {
        "image_size": size,
        "mean": cfg.get("mean", spec.mean),
        "std": cfg.get("std", spec.std),
        "interpolation": cfg.get("interpolation", "bilinear"),
        "key": digest[:16],
        "provenance": _plain_provenance(text, "timm", spec.arch, digest),
    }
    if not pretrained:
        meta["provenance"]["pretrained"] = False
    return Backbone(model, library="timm", arch=spec.arch, name=text, ref=text, meta=meta)


def _load_open_clip(text: str) -> Backbone:
    parts = text.split(":")
    arch, tag = parts[1], (parts[2] if len(parts) > 2 and parts[2] else None)
    if arch not in open_clip.list_models():
        zoo.resolve_model(arch, library="open_clip")  # raises the did-you-mean error
    try:
        model = open_clip.create_model(arch, pretrained=tag)
    except Exception as e:
        raise UserError(
            f"cannot load open_clip {arch!r} weights {tag!r} ({type(e).__name__}); "
            "check the tag (open_clip.list_pretrained()) and the network"
        ) from None
    visual = model.visual
    pre = getattr(visual, "preprocess_cfg", {}) or {}
    size = visual.image_size[-1] if isinstance(visual.image_size, (tuple, list)) else visual.image_size
    digest = _weights_digest(visual)
    meta = {
        "image_size": int(size),
        "mean": pre.get("mean", zoo.OPENAI_MEAN),
        "std": pre.get("std", zoo.OPENAI_STD),
        "interpolation": pre.get("interpolation", "bicubic"),
        "key": digest[:16],
        "provenance": _plain_provenance(text, "open_clip", arch, digest),
    }
    return Backbone(visual, library="open_clip", arch=arch, name=text, ref=text, meta=meta)


def _load_checkpoint(path: Path) -> Backbone:
    info = read_checkpoint_info(path)
    weights = path / "model.safetensors"
    digest = sha256_file(weights)
    if info.get("weights_sha256") and info["weights_sha256"] != digest:
        raise UserError(
            f"{weights}: sha256 does not match checkpoint.json (corrupt or edited); "
            "re-run `nmlbench pretrain` for this checkpoint"
        )
    state = load_file(str(weights))
    if info["library"] == "open_clip":
        if info.get("open_clip_config"):
            zoo.register_open_clip_config(info["arch"], info["open_clip_config"])
        # the resolution it was pretrained at (`image_size` in the pretraining config), not the config's
        clip = open_clip.create_model(info["arch"], pretrained=None, force_image_size=info["image_size"])
        clip.load_state_dict(state)
        model = clip.visual
    else:
        model = timm.create_model(info["arch"], pretrained=False, **info.get("model_kwargs", {}))
        model.load_state_dict(state)
        model.reset_classifier(0)  # the pretraining head is never used downstream
    noise = info.get("noise")
    prov = {
        "ref": str(path),
        "name": path.name,
        "library": info["library"],
        "arch": info["arch"],
        "checkpoint_sha256": digest,
        "noise": noise,
        "manifest_sha256": info.get("manifest_sha256"),
        "pretrain_seed": info.get("seed", (noise or {}).get("seed")),
    }
    meta = {
        "image_size": info["image_size"],
        "mean": info["mean"],
        "std": info["std"],
        "key": digest[:16],
        "provenance": prov,
    }
    return Backbone(
        model, library=info["library"], arch=info["arch"], name=path.name, ref=str(path), meta=meta
    )


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


def _plain_provenance(ref: str, library: str, arch: str, digest: str) -> dict[str, Any]:
    """Models nmlbench did not pretrain: the weights' content hash, no noise and no manifest."""
    return {
        "ref": ref,
        "name": ref,
        "library": library,
        "arch": arch,
        "checkpoint_sha256": digest,
        "noise": None,
        "manifest_sha256": None,
        "pretrain_seed": None,
    }


def _weights_digest(model: nn.Module) -> str:
    """Content hash of a state dict (names, shapes, bytes): random inits with other seeds differ."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
