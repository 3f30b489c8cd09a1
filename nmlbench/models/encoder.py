"""`PooledEncoder`: a library model as images -> pooled features, plus pooled taps for LEVI."""

from __future__ import annotations

import torch
from torch import nn


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
