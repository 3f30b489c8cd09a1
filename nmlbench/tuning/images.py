"""Shared parts of the image-consuming tuners: batches through transforms, evaluation, peft LoRA."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from peft import LoraConfig, inject_adapter_in_model
from torch import nn

from nmlbench.errors import UserError
from nmlbench.models.load import PooledEncoder

# Eval tensors of a split are kept in memory below this size, else streamed batch by batch.
_MATERIALISE_BYTES = 256 * 2**20


class ImageBatches:
    """Training batches: the split's images at `indices`, through a (random) train transform."""

    def __init__(self, split: Any, transform: Any, device: str = "cpu") -> None:
        self.split, self.transform, self.device = split, transform, torch.device(device)
        self.labels = torch.as_tensor(np.asarray(split.labels), dtype=torch.long)

    def __call__(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.stack([self.transform(self.split[int(i)][0]) for i in idx])
        return x.to(self.device), self.labels[idx].to(self.device)


class EvalImages:
    """A split through the eval transform, for per-epoch validation and final predictions."""

    def __init__(self, split: Any, transform: Any, batch_size: int = 256, device: str = "cpu") -> None:
        self.split, self.transform, self.batch_size = split, transform, batch_size
        self.device = torch.device(device)
        self.labels = torch.as_tensor(np.asarray(split.labels), dtype=torch.long)
        self._tensor: torch.Tensor | None = None
        first = transform(split[0][0]) if len(self.labels) else torch.zeros(3, 1, 1)
        if first.numel() * 4 * len(self.labels) <= _MATERIALISE_BYTES:
            self._tensor = torch.stack([transform(split[i][0]) for i in range(len(self.labels))])

    def logits(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """Concatenated `fn(batch)` over the split in order, without gradients."""
        outs = []
        with torch.no_grad():
            for start in range(0, len(self.labels), self.batch_size):
                if self._tensor is not None:
                    x = self._tensor[start : start + self.batch_size]
                else:
                    end = min(start + self.batch_size, len(self.labels))
                    x = torch.stack([self.transform(self.split[i][0]) for i in range(start, end)])
                outs.append(fn(x.to(self.device)).cpu())
        return torch.cat(outs)


def lora_targets(encoder: PooledEncoder, pattern: str) -> str | list[str]:
    """METHODS.md targets: timm ViT MLPs, open_clip MLPs, else a CNN's 1x1/3x3 convolutions [ours].

    Args:
        pattern: "auto" or a regex matched against full module names (e.g. `.*\\.attn\\.qkv`).
    """
    names = [n for n, _ in encoder.named_modules()]
    if pattern != "auto":
        chosen = [n for n in names if re.fullmatch(pattern, n)]
    elif any(re.fullmatch(r".*\.mlp\.fc\d", n) for n in names):
        chosen = [n for n in names if re.fullmatch(r".*\.mlp\.fc\d", n)]
    elif any(re.fullmatch(r".*\.mlp\.c_fc|.*\.mlp\.c_proj", n) for n in names):
        chosen = [n for n in names if re.fullmatch(r".*\.mlp\.c_fc|.*\.mlp\.c_proj", n)]
    else:
        chosen = [
            n
            for n, m in encoder.named_modules()
            if isinstance(m, nn.Conv2d) and m.groups == 1 and m.kernel_size in ((1, 1), (3, 3))
        ]
    if not chosen:
        raise UserError(
            f"no LoRA target modules in this {encoder.library} model (pattern {pattern!r}); "
            "set e.g. --set lora.targets='.*\\.qkv' to name its Linear/Conv2d layers"
        )
    return chosen


def add_lora(encoder: PooledEncoder, rank: int, alpha: float, dropout: float, pattern: str) -> PooledEncoder:
    """Inject peft LoRA adapters; afterwards only the adapters require gradients."""
    targets = lora_targets(encoder, pattern)
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets)
    try:
        encoder = inject_adapter_in_model(config, encoder)
    except (ValueError, TypeError) as e:
        raise UserError(
            f"peft cannot add LoRA to this {encoder.library} model: {str(e).splitlines()[0]}; "
            "choose other layers with --set <method>.lora_targets=REGEX"
        ) from None
    for name, p in encoder.named_parameters():
        p.requires_grad_("lora_" in name)
    return encoder


def freeze(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        p.requires_grad_(False)
    return module
