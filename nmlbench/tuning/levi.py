"""`levi` and `levi-lora`: our reading of LEVI (Roh et al., ICML 2024; no public code).

A frozen pre-trained model is tapped at several depths; a small model trained from scratch embeds
the same input (a CNN for images, `levi.text_model` for texts: nmlbench/tuning/small.py); per tap
an adapting layer maps [tap feature ; small-model embedding] to logits; the prediction is the mean
of the per-tap logits. Loss: mean per-tap CE + CE of the mean. Trained: the
small model and the adapters (plus LoRA adapters in `levi-lora`). Every choice is a config field.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nmlbench.config import bounded, only_for
from nmlbench.tuning.base import TUNERS, Fitted, ImageData, Tuner, count_params, top1
from nmlbench.tuning.images import (
    EvalImages,
    ImageBatches,
    add_lora,
    freeze,
    lora_targets,
    merged_lora,
)
from nmlbench.tuning.loop import Schedule, SelectionName, check_selection, param_groups, run_training
from nmlbench.tuning.small import small_cnn, small_model_for, small_model_name


@dataclass(frozen=True)
class LEVIConfig:
    """Defaults are ours (METHODS.md §3); none comes from released code."""

    # depths tapped, as fractions of the model's depth
    tap_fractions: tuple[float, ...] = bounded((0.5, 0.75, 1.0), gt=0, le=1)
    small_widths: tuple[int, ...] = bounded((32, 64, 128, 256), ge=1)  # small CNN stages, stride 2 each
    small_dim: int = bounded(256, ge=1)
    adapter_hidden: int = bounded(512, ge=1)
    adapter_dropout: float = bounded(0.1, ge=0, lt=1)
    lr: float = bounded(1e-3, gt=0)
    weight_decay: float = bounded(1e-4, ge=0)
    batch_size: int = bounded(64, ge=2)
    epochs: int = bounded(30, ge=1)
    selection: SelectionName = "best_val"
    lora: bool = False  # levi-lora: also LoRA-tune the pre-trained model
    rank: int = bounded(8, ge=1)
    alpha: float = bounded(8.0, gt=0)
    lora_targets: str = "auto"
    # text models: the small model trained from scratch over the same token ids (SMALL_MODELS) and its
    # token embedding width [ours]; `text-cnn` has one Conv1d(text_kernel) stage per small_widths entry,
    # `text-transformer` text_layers encoder layers of text_heads heads
    text_model: str = only_for("text", "text-cnn")
    text_embed_dim: int = bounded(64, ge=1, only="text")
    text_kernel: int = bounded(3, ge=1, only="text")  # odd: the stages keep the sentence's length
    text_layers: int = bounded(2, ge=1, only="text")
    text_heads: int = bounded(2, ge=1, only="text")  # text-transformer: must divide text_embed_dim

    def __post_init__(self) -> None:
        if not self.tap_fractions or not all(0 < f <= 1 for f in self.tap_fractions):
            raise ValueError(f"levi.tap_fractions must be in (0, 1], got {self.tap_fractions}")
        if self.epochs < 1 or self.batch_size < 2 or not self.small_widths:
            raise ValueError("need epochs >= 1, batch_size >= 2 and at least one small_widths entry")
        check_selection(self.selection)
        if self.text_kernel % 2 == 0:
            raise ValueError(
                f"levi.text_kernel must be odd (same-length convolutions), got {self.text_kernel}"
            )


@dataclass(frozen=True)
class LEVILoRAConfig(LEVIConfig):
    lora: bool = True


class LEVIHead(nn.Module):
    """Small model + one adapting layer per tap; `forward` returns per-tap logits (T, B, C)."""

    def __init__(
        self, tap_dims: list[int], num_classes: int, cfg: LEVIConfig, small: nn.Module | None = None
    ) -> None:
        super().__init__()
        # the small model, (B, ...) -> (B, small_dim); default: the image CNN
        self.small = small_cnn(cfg.small_widths, cfg.small_dim) if small is None else small
        self.adapters = nn.ModuleList(
            nn.Sequential(
                nn.LayerNorm(d + cfg.small_dim),
                nn.Linear(d + cfg.small_dim, cfg.adapter_hidden),
                nn.GELU(),
                nn.Dropout(cfg.adapter_dropout),
                nn.Linear(cfg.adapter_hidden, num_classes),
            )
            for d in tap_dims
        )

    def forward(self, x: torch.Tensor, taps: list[torch.Tensor]) -> torch.Tensor:
        e = self.small(x)  # (B, small_dim)
        return torch.stack([a(torch.cat([t, e], dim=1)) for a, t in zip(self.adapters, taps, strict=True)])


def levi_loss(per_tap: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean of the per-tap CEs plus the CE of the ensembled (mean) logits."""
    taps_ce = torch.stack([F.cross_entropy(logits, y) for logits in per_tap]).mean()
    return taps_ce + F.cross_entropy(per_tap.mean(0), y)


@TUNERS.register("levi")
class LEVI(Tuner):
    """Layer-wise ensemble of a frozen pre-trained model's taps with a small from-scratch model."""

    consumes = "images"
    Config = LEVIConfig
    config_key = "levi"

    def check_backbone(self, backbone: object) -> None:
        backbone.tap_indices(self.cfg.tap_fractions)  # raises when the model has no tap points
        small_model_name(backbone, self.cfg)  # a text_model that exists and reads this modality
        if self.cfg.lora:
            lora_targets(backbone.encoder, self.cfg.lora_targets)

    def fit(self, data: ImageData, seed: int) -> Fitted:
        cfg = self.cfg
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        bb = data.backbone
        indices = bb.tap_indices(cfg.tap_fractions)
        encoder = bb.trainable_encoder()
        encoder = (
            add_lora(encoder, cfg.rank, cfg.alpha, 0.0, cfg.lora_targets) if cfg.lora else freeze(encoder)
        )
        with torch.no_grad():
            dims = [t.shape[1] for t in encoder.eval().taps(_probe(bb).to(data.device), indices)]
        head = LEVIHead(dims, data.num_classes, cfg, small_model_for(bb, cfg)).to(data.device)
        batches = ImageBatches(data.train, data.train_transform or bb.train_transform(), data.device)
        val = EvalImages.of(data.val, bb.eval_transform(), device=data.device)

        def per_tap(x: torch.Tensor) -> torch.Tensor:
            with torch.set_grad_enabled(cfg.lora and torch.is_grad_enabled()):
                taps = encoder.taps(x, indices)
            return head(x, taps)

        def step(idx: torch.Tensor) -> torch.Tensor:
            x, y = batches(idx)
            return levi_loss(per_tap(x), y)

        def logits(images: EvalImages) -> torch.Tensor:
            with merged_lora(encoder):  # no-op without adapters (LEVI)
                return images.logits(lambda x: per_tap(x).mean(0))

        groups = param_groups(
            [(encoder.parameters(), cfg.lr, cfg.weight_decay), (head.parameters(), cfg.lr, cfg.weight_decay)]
        )
        selection = run_training(
            [encoder, head],
            groups,
            len(batches.labels),
            Schedule(cfg.epochs, cfg.batch_size, cfg.selection),
            step,
            lambda: top1(logits(val), val.labels),
            gen,
            desc=self.config_key,
            frozen=encoder,
        )
        trainable, total = count_params(encoder, head)

        def predict(split: object) -> object:
            return logits(EvalImages.of(split, bb.eval_transform(), device=data.device)).numpy()

        self.tap_indices = indices  # what was tapped, for tests and the record
        return Fitted(predict, trainable, total, selection)


def _probe(bb: object) -> torch.Tensor:
    """Two inputs of the backbone's kind, for the taps' widths (text models make their own)."""
    make = getattr(bb, "probe_input", None)
    return make(2) if make is not None else torch.zeros(2, 3, bb.image_size, bb.image_size)


@TUNERS.register("levi-lora")
class LEVILoRA(LEVI):
    """LEVI with LoRA adapters on the pre-trained model as well."""

    Config = LEVILoRAConfig
    config_key = "levi_lora"
