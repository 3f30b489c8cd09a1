"""The two pretraining objectives: supervised (timm model + cross-entropy on noisy labels) and CLIP
(open_clip model + open_clip's tokenizer and ClipLoss on possibly swapped captions)."""

from __future__ import annotations

import copy
import math
from typing import Any

import open_clip
import timm
import torch
import torch.nn.functional as F

from nmlbench.models.zoo import ModelSpec


class Objective:
    """Builds the model, turns a batch's targets into tensors and computes the loss."""

    def __init__(
        self,
        spec: ModelSpec,
        num_classes: int,
        label_smoothing: float = 0.0,
        rank: int = 0,
        world_size: int = 1,
        image_size: int | None = None,
    ) -> None:
        self.spec = spec
        self.clip = spec.library == "open_clip"
        self.text = spec.library == "transformers"
        self.image_size = image_size or spec.image_size  # None: the model's own resolution
        resized = self.image_size != spec.image_size
        if self.text:
            from nmlbench.models.text import tiny_text_config

            self.hf_config = tiny_text_config()
            self.model = TextClassifier(self.hf_config, num_classes)
            self.model_kwargs = {}
        elif self.clip:
            size_kw = {"force_image_size": self.image_size} if resized else {}
            self.model = open_clip.create_model(spec.arch, pretrained=None, **size_kw)
            self.tokenizer = open_clip.get_tokenizer(spec.arch)
            self.loss_fn = open_clip.ClipLoss(cache_labels=True, rank=rank, world_size=world_size)
            self.model_kwargs: dict[str, Any] = {}
        else:
            self.model_kwargs = dict(spec.kwargs, num_classes=num_classes)
            if resized:
                self.model_kwargs, self.model = _timm_at_size(spec.arch, self.model_kwargs, self.image_size)
            else:
                self.model = timm.create_model(spec.arch, pretrained=False, **self.model_kwargs)
        self.label_smoothing = label_smoothing

    def targets(self, items: list[Any]) -> torch.Tensor:
        if self.clip:
            return self.tokenizer([str(t) for t in items])  # (B, context_length)
        return torch.as_tensor([int(t) for t in items], dtype=torch.long)

    def loss(
        self, model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, dict]:
        """Loss and metrics for one batch; `model` may be the DDP wrapper of `self.model`."""
        if self.clip:
            img, txt, scale = model(images, targets)[:3]
            loss = self.loss_fn(img, txt, scale)
            return loss, {"logit_scale": float(scale.detach())}
        logits = model(images)
        loss = F.cross_entropy(logits, targets, label_smoothing=self.label_smoothing)
        acc = (logits.argmax(1) == targets).float().mean()  # against the (noisy) training labels
        return loss, {"train_acc": float(acc) * 100.0}

    def after_step(self) -> None:
        if self.clip:  # as open_clip's trainer: keep the temperature below 100
            with torch.no_grad():
                self.model.logit_scale.clamp_(0, math.log(100))

    def meta(self) -> dict[str, Any]:
        """The model part of checkpoint.json: enough to rebuild the architecture anywhere."""
        cfg = copy.deepcopy(open_clip.get_model_config(self.spec.arch)) if self.clip else None
        if cfg is not None:
            cfg.setdefault("vision_cfg", {})["image_size"] = self.image_size
        if self.text:
            return {
                "library": self.spec.library,
                "arch": self.spec.arch,
                "hf_config": self.hf_config.to_dict(),
                "tokenizer": "hashed-words",
                "image_size": self.image_size,  # tokens per sample
                "model_kwargs": {},
                "open_clip_config": None,
            }
        return {
            "library": self.spec.library,
            "arch": self.spec.arch,
            "model_kwargs": self.model_kwargs,
            "open_clip_config": cfg,
            "image_size": self.image_size,  # what it was trained at: evaluation resizes to this
            "mean": list(self.spec.mean),
            "std": list(self.spec.std),
        }


def _timm_at_size(arch: str, kwargs: dict[str, Any], size: int) -> tuple[dict[str, Any], torch.nn.Module]:
    """A timm model for `size` px inputs: with `img_size=` where the architecture has a fixed input
    (ViTs, Swin, ...: position embeddings), without it where any size works (CNNs reject the kwarg)."""
    sized = dict(kwargs, img_size=size)
    try:
        return sized, timm.create_model(arch, pretrained=False, **sized)
    except TypeError as e:
        if "img_size" not in str(e):
            raise
    return kwargs, timm.create_model(arch, pretrained=False, **kwargs)


class TextClassifier(torch.nn.Module):
    """A transformers encoder + a linear head on its [CLS] state; (B, 2, L) token tensors in.

    The encoder's weights are saved under `encoder.` (its own names after the prefix), which is how
    a text checkpoint is loaded back as a plain transformers model for evaluation.
    """

    def __init__(self, config: Any, num_classes: int) -> None:
        super().__init__()
        from transformers import AutoModel

        self.encoder = AutoModel.from_config(config, add_pooling_layer=False)
        self.head = torch.nn.Linear(config.hidden_size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.encoder(input_ids=x[:, 0], attention_mask=x[:, 1])
        return self.head(out.last_hidden_state[:, 0])
