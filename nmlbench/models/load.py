"""Model reference -> a frozen `Backbone` with transforms, taps and provenance.

    bb = load_backbone("nmlbench-out/ckpt/tinyresnet.mini_sym10_s0")
    bb = load_backbone("timm:resnet50")                       # timm's default pretrained weights
    bb = load_backbone("open_clip:ViT-B-16/laion2b_s34b_b88k", image_size=112)
    bb = load_backbone("tinyvit", pretrained=False, seed=0)   # seeded random init
    feats = bb.features(images)                               # (B, D) pooled, no grad

Pooled features are what the reference feeds NMTune: timm's pre-logits and open_clip's projected
image embedding (not L2-normalised).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import open_clip
import timm
import torch
from open_clip.model import resize_pos_embed
from safetensors import SafetensorError
from safetensors.torch import load_file
from timm.data import DEFAULT_CROP_PCT
from torch import nn
from torchvision import transforms as T

from nmlbench.errors import UserError
from nmlbench.models import zoo
from nmlbench.models.augment import AugmentConfig
from nmlbench.models.encoder import PooledEncoder
from nmlbench.models.info import FIX, read_checkpoint_info, verified_weights_sha256
from nmlbench.models.refs import FIX_RANDOM, ModelIdentity, ModelRef, identity_of, parse_ref, quiet_open_clip


class Backbone:
    """A frozen feature extractor plus what every stage needs to know about it.

    Attributes:
        name: display name (checkpoint dir name, zoo alias, `timm:NAME.TAG` or `open_clip:NAME/TAG`).
        key: content hash of the weights (and of the input size when it is not the model's own);
            feature caches are keyed by it.
        provenance: `model` block of a result record: `ModelIdentity.block` (key, pretrained, tag,
            image_size, noise, ...) with checkpoint_sha256 = the loaded weights' hash.
        calls: number of batches run through `features` (tests count extraction with it).
    """

    modality = "image"  # what its transforms read (TextBackbone: "text")

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
        # eval resize = ceil(size / crop_pct), then a centre crop [ref: timm models' pretrained_cfg];
        # 1.0 (no crop) for open_clip, whose own eval transform resizes to the size itself
        self.crop_pct: float = float(meta.get("crop_pct") or 1.0)
        self.provenance: dict[str, Any] = meta["provenance"]
        self.key: str = meta["key"]
        self.calls = 0
        self.device = torch.device("cpu")
        try:
            with torch.no_grad():
                probe = self.encoder(torch.zeros(1, 3, self.image_size, self.image_size))  # (1, D)
        except Exception as e:  # a fixed-size model asked for another size fails here, not mid-run
            raise UserError(
                f"model {name!r} does not run at image_size={self.image_size} ({type(e).__name__}: "
                f"{str(e).splitlines()[0] if str(e) else ''}); drop image_size or pick one the model takes"
            ) from None
        self.feature_dim = int(probe.shape[-1])

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
        """A deep copy with gradients on, for methods that tune the backbone (FT, LoRA).

        Its convolution weights are channels_last: oneDNN's NHWC kernels train the tiny mini ResNet in
        0.85x the time on CPU (measured, docs/mini-benchmark.md), as on GPUs; nothing else changes.
        """
        enc = copy.deepcopy(self.encoder).to(memory_format=torch.channels_last)
        for p in enc.parameters():
            p.requires_grad_(True)
        return enc

    def eval_transform(self) -> T.Compose:
        """Resize(ceil(size / crop_pct)) + CenterCrop(size), no augmentation (LP, eval features).

        The reference evaluates timm models this way, from the model's pretrained_cfg (crop_pct,
        interpolation, mean/std): 236 px then a 224 crop for ResNet-50 (crop_pct 0.95).
        """
        interp = T.InterpolationMode(self.interpolation)
        return T.Compose(
            [
                T.Resize(math.ceil(self.image_size / self.crop_pct), interpolation=interp),
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


def load_backbone(
    ref: str | Path,
    pretrained: bool | str | None = None,
    image_size: int | None = None,
    seed: int = 0,
    text: Any = None,
) -> Backbone:
    """Load a model reference (resolution order: `nmlbench.models.refs`, docs/models.md).

    Args:
        ref: checkpoint dir, zoo alias, `timm:NAME[.TAG]`, `open_clip:NAME[/TAG]`, `*:hf-hub:ORG/REPO`,
            or a bare name only one library knows.
        pretrained: None/"auto"/True: the library's pretrained weights (UserError if they cannot be
            had, never a silent random init); False: random init seeded by `seed`. Checkpoints ignore it.
        image_size: input resolution for transforms and the model; None = the model's own.
        seed: seeds random initialisation so that `pretrained=False` models are reproducible.
        text: `nmlbench.models.text.TextOptions` for text models (`hf:NAME`, tinytext, text checkpoints),
            which return a `TextBackbone` with this interface over token tensors.
    """
    mref = parse_ref(ref)
    ident = identity_of(mref, pretrained, image_size, seed, text)
    if mref.path is not None:
        return _load_checkpoint(Path(mref.path), ident)
    torch.manual_seed(seed)
    if mref.library == "transformers":
        from nmlbench.models.textload import load_text_backbone

        return load_text_backbone(mref, ident, _text_options(ident))
    if mref.library == "open_clip-text":
        from nmlbench.models.cliptext import load_clip_text_backbone

        return load_clip_text_backbone(mref, ident, _text_options(ident))
    if mref.library == "open_clip":
        return _load_open_clip(mref, ident)
    return _load_timm(mref, ident)


def _load_timm(mref: ModelRef, ident: ModelIdentity) -> Backbone:
    want, tag = ident.block["pretrained"], ident.block["tag"]
    name = f"{mref.arch}.{tag}" if tag else mref.arch
    try:
        model = timm.create_model(name, pretrained=want, num_classes=0, **mref.kwargs)
    except Exception as e:  # hub/network errors come in many types
        raise UserError(
            f"cannot load pretrained weights for timm model {ident.name!r} ({type(e).__name__}); "
            f"check the network/HF cache or pass {FIX_RANDOM} for a seeded random init"
        ) from None
    cfg = model.pretrained_cfg or {}
    native = int(cfg.get("input_size", (3, mref.native_size or 224, mref.native_size or 224))[-1])
    size = int(ident.block["image_size"] or native)
    if size != native:
        _resize_timm(model, size, ident.name)
    spec = zoo.MODELS.get(mref.alias) if mref.alias else None
    meta = {
        "image_size": size,
        "mean": cfg.get("mean", spec.mean if spec else zoo.MINI_MEAN),
        "std": cfg.get("std", spec.std if spec else zoo.MINI_STD),
        "interpolation": cfg.get("interpolation", "bilinear"),
        "crop_pct": cfg.get("crop_pct") or DEFAULT_CROP_PCT,
    }
    return _backbone(model, mref, ident, meta, native)


def _resize_timm(model: nn.Module, size: int, name: str) -> None:
    """ViT-like timm models resample their position embeddings; CNNs take any size as they are."""
    if not hasattr(model, "set_input_size"):
        return
    try:
        model.set_input_size(img_size=(size, size))
    except Exception as e:
        raise UserError(
            f"timm model {name!r} cannot run at image_size={size} ({e}); "
            "pick a multiple of its patch size or drop image_size"
        ) from None


def _load_open_clip(mref: ModelRef, ident: ModelIdentity) -> Backbone:
    want, tag = ident.block["pretrained"], ident.block["tag"]
    native = mref.native_size
    size = ident.block["image_size"]
    force = size if size and native and size != native else None
    try:
        with quiet_open_clip():  # its download error / random-init warning: our one line instead
            if mref.arch.startswith("hf-hub:"):
                model = open_clip.create_model(mref.arch, load_weights=want, force_image_size=force)
            else:
                model = open_clip.create_model(mref.arch, pretrained=tag, force_image_size=force)
    except Exception as e:
        raise UserError(
            f"cannot load open_clip {ident.name!r} pretrained weights ({type(e).__name__}); check the "
            f"network/HF cache and the tag (open_clip.list_pretrained()) or pass {FIX_RANDOM}"
        ) from None
    visual = model.visual
    pre = getattr(visual, "preprocess_cfg", {}) or {}
    own = visual.image_size[-1] if isinstance(visual.image_size, (tuple, list)) else visual.image_size
    meta = {
        "image_size": int(own),
        "mean": pre.get("mean", zoo.OPENAI_MEAN),
        "std": pre.get("std", zoo.OPENAI_STD),
        "interpolation": pre.get("interpolation", "bicubic"),
    }
    return _backbone(visual, mref, ident, meta, native or int(own))


def _text_options(ident: ModelIdentity) -> Any:
    """A text model's tokens per sample ride in the record's input-size slot (`image_size`)."""
    from nmlbench.models.text import TextOptions

    size, pooling = ident.block["image_size"] or 128, ident.block.get("pooling") or "auto"
    return TextOptions(max_length=int(size), pooling=pooling)


def _load_checkpoint(path: Path, ident: ModelIdentity) -> Backbone:
    info = read_checkpoint_info(path)
    digest = verified_weights_sha256(path, info)
    if info["library"] == "transformers":
        from nmlbench.models.textload import load_text_checkpoint

        return load_text_checkpoint(path, info, digest, ident, _text_options(ident))
    native = info["image_size"]
    size = int(ident.block["image_size"] or native)
    with _described_by(path):
        state = load_file(str(path / "model.safetensors"))
        if info["library"] == "open_clip":
            if info.get("open_clip_config"):
                zoo.register_open_clip_config(info["arch"], info["open_clip_config"])
            # built at the evaluation size; the weights are at the size it was pretrained at
            with quiet_open_clip():  # "initialized randomly": the checkpoint's weights follow
                clip = open_clip.create_model(info["arch"], pretrained=None, force_image_size=size)
            if size != native:
                resize_pos_embed(state, clip)  # open_clip's own resampling, as for its pretrained weights
            clip.load_state_dict(state)
            model = clip.visual
        else:
            model = timm.create_model(info["arch"], pretrained=False, **info.get("model_kwargs", {}))
            model.load_state_dict(state)
    if info["library"] == "timm":
        model.reset_classifier(0)  # the pretraining head is never used downstream
        if size != native:
            _resize_timm(model, size, path.name)
    mref = ModelRef(str(path), info["library"], info["arch"], path=str(path), native_size=native)
    meta = {"image_size": size, "mean": info["mean"], "std": info["std"], **_eval_cfg(info)}
    return _backbone(model, mref, ident, meta, native, digest)


@contextlib.contextmanager
def _described_by(path: Path) -> Iterator[None]:
    """The weights match their hash, so a failure to build or fill the model means checkpoint.json
    names a model they do not fit (an edited arch, kwargs or config): one line, not a traceback."""
    try:
        yield
    except (SafetensorError, RuntimeError, KeyError, ValueError, TypeError) as e:
        reason = " ".join(str(e).split())[:160] or type(e).__name__
        raise UserError(f"{path}: checkpoint.json does not describe its weights ({reason}); {FIX}") from None


def _eval_cfg(info: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's eval transform settings: the architecture's timm pretrained_cfg, as the
    reference evaluates its own checkpoints (timm `create_model(arch)` then its pretrained_cfg)."""
    if info["library"] != "timm":
        return {}
    cfg = timm.get_pretrained_cfg(info["arch"])
    if cfg is None:
        return {}
    return {"crop_pct": cfg.crop_pct or DEFAULT_CROP_PCT, "interpolation": cfg.interpolation or "bilinear"}


def _backbone(
    model: nn.Module,
    mref: ModelRef,
    ident: ModelIdentity,
    meta: dict[str, Any],
    native: int,
    digest: str | None = None,
) -> Backbone:
    """Attach the record's model block; `key` (feature caches) hashes the weights and the input size."""
    digest = digest or _weights_digest(model)
    size = int(meta["image_size"])
    # the native size keeps the key of earlier versions, so existing feature caches stay valid
    key = digest[:16] if size == native else hashlib.sha256(f"{digest}:{size}".encode()).hexdigest()[:16]
    prov = dict(ident.block, checkpoint_sha256=digest, image_size=size)
    meta = dict(meta, key=key, provenance=prov)
    return Backbone(model, library=mref.library, arch=mref.arch, name=ident.name, ref=mref.ref, meta=meta)


def _weights_digest(model: nn.Module) -> str:
    """Content hash of a state dict (names, shapes, bytes): random inits with other seeds differ."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
