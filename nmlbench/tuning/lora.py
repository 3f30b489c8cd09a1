"""Backbone-tuning methods with a linear head: `ft`, `lora` and `nmtune-lora` (reference `nml_finetune.py`).

`nmtune-lora` [ref]: peft LoRA r=8 on the transformer MLP layers, trainable linear head, one view,
loss CE + 0.04·L_cov − 0.001·L_svd on the encoder's output features (no MLP, no MSE term).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nmlbench.config import bounded
from nmlbench.tuning.base import (
    TUNERS,
    Fitted,
    ImageData,
    Tuner,
    check_head_init,
    count_params,
    linear_head,
    top1,
)
from nmlbench.tuning.images import EvalImages, ImageBatches, add_lora, merged_lora
from nmlbench.tuning.loop import Schedule, SelectionName, check_selection, param_groups, run_training
from nmlbench.tuning.nmtune import cov_term, svd_term


@dataclass(frozen=True)
class LoRAConfig:
    """LoRA baseline [ours]: the nmtune-lora set-up with plain cross-entropy."""

    rank: int = bounded(8, ge=1)
    alpha: float = bounded(8.0, gt=0)  # peft's default lora_alpha [ours]
    # on the adapters' input while training (peft lora_dropout); peft's default
    dropout: float = bounded(0.0, ge=0, lt=1)
    lora_targets: str = "auto"  # "auto" = METHODS.md targets, else a regex over module names
    lr: float = bounded(1e-3, gt=0)  # adapters and head [ours]
    weight_decay: float = bounded(1e-4, ge=0)
    batch_size: int = bounded(64, ge=2)
    epochs: int = bounded(30, ge=1)
    selection: SelectionName = "best_val"
    init: str = "kaiming_uniform"  # head: Kaiming-uniform weight, zero bias [ref]; "torch": nn.Linear's
    lambda_cov: float = bounded(0.0, ge=0)
    lambda_svd: float = bounded(0.0, ge=0)
    svd_topk: int = bounded(5, ge=1)

    def __post_init__(self) -> None:
        if self.rank < 1 or self.epochs < 1 or self.batch_size < 2:
            raise ValueError("need rank >= 1, epochs >= 1 and batch_size >= 2")
        check_selection(self.selection)
        check_head_init(self.init)


@dataclass(frozen=True)
class NMTuneLoRAConfig(LoRAConfig):
    """Parameter-efficient NMTune [ref]: LoRA + CE + 0.04·cov − 0.001·svd on encoder features."""

    lambda_cov: float = bounded(0.04, ge=0)
    lambda_svd: float = bounded(0.001, ge=0)


@dataclass(frozen=True)
class FTConfig:
    """Full fine-tuning [ours]: AdamW, a 10x smaller learning rate for the backbone than the head."""

    lr: float = bounded(1e-4, gt=0)  # backbone
    lr_head: float = bounded(1e-3, gt=0)
    weight_decay: float = bounded(1e-4, ge=0)
    batch_size: int = bounded(64, ge=2)
    epochs: int = bounded(30, ge=1)
    selection: SelectionName = "best_val"
    init: str = "kaiming_uniform"  # head, as the reference's fine-tuning heads

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 2:
            raise ValueError("need epochs >= 1 and batch_size >= 2")
        check_selection(self.selection)
        check_head_init(self.init)


class _EncoderHead(Tuner):
    """Encoder (tuned in some way) + linear head on its pooled features, trained on images."""

    consumes = "images"

    def prepare(self, data: ImageData) -> tuple[nn.Module, list[tuple]]:
        """Return the encoder to train and its (params, lr, wd) group."""
        raise NotImplementedError

    def extra_loss(self, feats: torch.Tensor) -> torch.Tensor | float:
        return 0.0

    frozen_base = False  # LoRA: the pre-trained weights (and their BatchNorm statistics) stay fixed

    def fit(self, data: ImageData, seed: int) -> Fitted:
        cfg = self.cfg
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        encoder, groups = self.prepare(data)
        head = linear_head(data.backbone.feature_dim, data.num_classes, cfg.init).to(data.device)
        batches = ImageBatches(
            data.train, data.train_transform or data.backbone.train_transform(), data.device
        )
        val = EvalImages.of(data.val, data.backbone.eval_transform(), device=data.device)

        def forward(x: torch.Tensor) -> torch.Tensor:
            return head(encoder(x))

        def logits(images: EvalImages) -> torch.Tensor:
            with merged_lora(encoder):  # no-op without adapters (FT)
                return images.logits(forward)

        def step(idx: torch.Tensor) -> torch.Tensor:
            x, y = batches(idx)
            feats = encoder(x)  # (B, D)
            return F.cross_entropy(head(feats), y) + self.extra_loss(feats)

        lr_head = getattr(cfg, "lr_head", cfg.lr)
        opt_groups = param_groups([*groups, (head.parameters(), lr_head, cfg.weight_decay)])
        selection = run_training(
            [encoder, head],
            opt_groups,
            len(batches.labels),
            Schedule(cfg.epochs, cfg.batch_size, cfg.selection),
            step,
            lambda: top1(logits(val), val.labels),
            gen,
            desc=self.config_key,
            frozen=encoder if self.frozen_base else None,
        )
        trainable, total = count_params(encoder, head)

        def predict(split: object) -> object:
            return logits(EvalImages.of(split, data.backbone.eval_transform(), device=data.device)).numpy()

        return Fitted(predict, trainable, total, selection)


@TUNERS.register("ft")
class FullFineTune(_EncoderHead):
    """Every backbone weight trained with cross-entropy."""

    Config = FTConfig
    config_key = "ft"

    def prepare(self, data: ImageData) -> tuple[nn.Module, list[tuple]]:
        encoder = data.backbone.trainable_encoder()
        return encoder, [(encoder.parameters(), self.cfg.lr, self.cfg.weight_decay)]


@TUNERS.register("lora")
class LoRA(_EncoderHead):
    """peft LoRA adapters + linear head, cross-entropy only."""

    Config = LoRAConfig
    config_key = "lora"
    frozen_base = True

    def check_backbone(self, backbone: object) -> None:
        from nmlbench.tuning.images import lora_targets

        lora_targets(backbone.encoder, self.cfg.lora_targets)

    def prepare(self, data: ImageData) -> tuple[nn.Module, list[tuple]]:
        cfg = self.cfg
        encoder = add_lora(
            data.backbone.trainable_encoder(), cfg.rank, cfg.alpha, cfg.dropout, cfg.lora_targets
        )
        return encoder, [(encoder.parameters(), cfg.lr, cfg.weight_decay)]

    def extra_loss(self, feats: torch.Tensor) -> torch.Tensor | float:
        cfg = self.cfg
        loss: torch.Tensor | float = 0.0
        if cfg.lambda_cov:
            loss = loss + cfg.lambda_cov * cov_term(feats)
        if cfg.lambda_svd:
            loss = loss - cfg.lambda_svd * svd_term(feats, cfg.svd_topk)
        return loss


@TUNERS.register("nmtune-lora")
class NMTuneLoRA(LoRA):
    """LoRA + NMTune's covariance and singular-value regularisers on the encoder's features."""

    Config = NMTuneLoRAConfig
    config_key = "nmtune_lora"
