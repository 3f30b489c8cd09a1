"""open_clip text towers as text models: `open_clip-text:NAME[/TAG]` (e.g. `open_clip-text:ViT-B-32/openai`).

The tower's own tokenizer (open_clip's BPE, `context_length` tokens with start/end tokens) and its own
pooled output: the end-of-text token's state through the text projection (`encode_text`, not
normalised), as CLIP's contrastive loss reads it; pooling is recorded as `eot`. A sentence pair is one
text, the two sentences joined by a space [ours]: CLIP's tokenizer has no pair encoding. Token dropout
(the text views) replaces a word's token by 0, the padding id, keeping start, end and the mask [ours].
"""

from __future__ import annotations

from typing import Any

import open_clip
import torch
from torch import nn

from nmlbench.errors import UserError
from nmlbench.models.refs import FIX_RANDOM, ModelIdentity, ModelRef, quiet_open_clip
from nmlbench.models.text import TextOptions, pool
from nmlbench.models.textload import TextBackbone, weights_digest

LIBRARY = "open_clip-text"


class ClipTextEncoder(nn.Module):
    """(B, 2, L) ids over mask -> projected end-of-text features; taps pool block outputs (LEVI)."""

    pooling = "eot"

    def __init__(self, clip: nn.Module) -> None:
        super().__init__()
        clip.visual = nn.Identity()  # the image tower is never used: not tuned, not a LoRA target
        self.model = clip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode_text(x[:, 0], normalize=False)

    def taps(self, x: torch.Tensor, indices: list[int]) -> list[torch.Tensor]:
        out = self.model.forward_intermediates(
            text=x[:, 0], text_indices=indices, intermediates_only=True, normalize_intermediates=False
        )
        return [pool(h, x[:, 1], "mean") for h in out["text_intermediates"]]

    def depth(self) -> int:
        return len(self.model.transformer.resblocks)


class ClipTokenize:
    """Text -> (2, L): open_clip's token ids over their non-padding mask; pairs joined by a space."""

    def __init__(self, tokenizer: Any, name: str, drop: float = 0.0) -> None:
        self.tokenizer, self.name, self.drop = tokenizer, name, drop

    def __repr__(self) -> str:
        return f"ClipTokenize({self.name}, drop={self.drop})"

    def __call__(self, text: str | tuple[str, str]) -> torch.Tensor:
        ids = self.tokenizer([text if isinstance(text, str) else f"{text[0]} {text[1]}"])[0].long()
        mask = (ids != 0).long()
        if self.drop > 0:
            ids = ids.clone()
            words = mask.bool().clone()
            words[0] = False  # start token
            words[int(mask.sum()) - 1] = False  # end token: encode_text pools here
            ids[words & (torch.rand(ids.shape) < self.drop)] = 0
        return torch.stack([ids, mask])


class ClipTextBackbone(TextBackbone):
    def tokenize(self, drop: float = 0.0) -> ClipTokenize:
        return ClipTokenize(self.tokenizer, self.name, drop)


def context_length(arch: str) -> int:
    return int((open_clip.get_model_config(arch) or {}).get("text_cfg", {}).get("context_length", 77))


def load_clip_text_backbone(mref: ModelRef, ident: ModelIdentity, opts: TextOptions) -> ClipTextBackbone:
    want, tag = ident.block["pretrained"], ident.block["tag"]
    try:
        with quiet_open_clip():
            clip = open_clip.create_model(mref.arch, pretrained=tag if want else None)
    except Exception as e:
        raise UserError(
            f"cannot load open_clip {ident.name!r} pretrained weights ({type(e).__name__}); check the "
            f"network/HF cache and the tag (open_clip.list_pretrained()) or pass {FIX_RANDOM}"
        ) from None
    tokenizer = open_clip.get_tokenizer(mref.arch)
    encoder = ClipTextEncoder(clip)
    meta = {"digest": weights_digest(encoder), "block": ident.block}
    return ClipTextBackbone(
        clip,
        tokenizer,
        opts,
        arch=mref.arch,
        name=ident.name,
        ref=mref.ref,
        meta=meta,
        encoder=encoder,
        library=LIBRARY,
    )
