"""LEVI's small models, trained from scratch beside the frozen pre-trained one: one registry, by name.

Each entry says which input modality it reads; LEVI builds `cnn` for image models and the model named
by `levi.text_model` for text models (`text-cnn` by default). Every one is our reading [ours]: the
LEVI paper describes a small model of another architecture family, not its layers.

    module = small_model_for(backbone, cfg)     # x (B, 3, H, W) or (B, 2, L) -> (B, cfg.small_dim)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nmlbench.errors import UserError
from nmlbench.models.text import pool
from nmlbench.registry import Registry


@dataclass(frozen=True)
class SmallModel:
    modality: str  # "image" or "text": the inputs it reads
    build: Callable[[Any, Any], nn.Module]  # (backbone, LEVIConfig) -> module, input -> (B, small_dim)
    check: Callable[[Any], None] | None = None  # LEVIConfig -> raise UserError before any work


SMALL_MODELS: Registry[SmallModel] = Registry("LEVI small model")


def small_model_name(backbone: Any, cfg: Any) -> str:
    """The registered small model LEVI trains for this backbone; UserError when it reads other inputs."""
    modality = getattr(backbone, "modality", "image")
    name = cfg.text_model if modality == "text" else "cnn"
    entry = SMALL_MODELS.get(name)
    if entry.modality != modality:
        fits = [n for n in SMALL_MODELS if SMALL_MODELS.get(n).modality == modality]
        raise UserError(
            f"levi.text_model {name!r} reads {entry.modality} inputs, not the {modality} of "
            f"{backbone.name!r}; choose one of {', '.join(fits)}"
        )
    if entry.check is not None:
        entry.check(cfg)
    return name


def small_model_for(backbone: Any, cfg: Any) -> nn.Module:
    return SMALL_MODELS.get(small_model_name(backbone, cfg)).build(backbone, cfg)


def small_cnn(widths: tuple[int, ...], out_dim: int) -> nn.Sequential:
    """Conv3x3(stride 2)-BN-ReLU stages, global average pool, linear embedding."""
    layers: list[nn.Module] = []
    prev = 3
    for w in widths:
        layers += [
            nn.Conv2d(prev, w, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(w),
            nn.ReLU(inplace=True),
        ]
        prev = w
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(prev, out_dim))


SMALL_MODELS.add("cnn", SmallModel("image", lambda bb, cfg: small_cnn(cfg.small_widths, cfg.small_dim)))


class TextCNN(nn.Module):
    """(B, 2, L) ids over mask -> (B, out_dim): a word-level CNN (Kim 2014 style) over the same tokens.

    Embedding -> per width a Conv1d(odd kernel, same length)-ReLU stage -> max over the sentence's
    tokens -> Linear. Pad positions are zeroed after every stage, so with ReLU's non-negative outputs
    the plain max over positions is the max over real tokens, and no stage reads past a sentence's
    end. No BatchNorm: its statistics would be dominated by padding when sentences are short.
    """

    def __init__(
        self, vocab: int, embed_dim: int, widths: tuple[int, ...], out_dim: int, kernel: int = 3
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, embed_dim)
        dims = (embed_dim, *widths)
        self.convs = nn.ModuleList(
            nn.Conv1d(a, b, kernel, padding=kernel // 2) for a, b in zip(dims, dims[1:], strict=False)
        )
        self.out = nn.Linear(dims[-1], out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ids, mask = x[:, 0], x[:, 1]
        m = mask.unsqueeze(1).to(self.out.weight.dtype)  # (B, 1, L)
        h = self.embed(ids).transpose(1, 2) * m  # (B, E, L)
        for conv in self.convs:
            h = F.relu(conv(h)) * m
        return self.out(h.amax(dim=2))  # (B, out_dim)


class TextTransformer(nn.Module):
    """(B, 2, L) ids over mask -> (B, out_dim): a small pre-norm transformer encoder (2 layers of 2
    heads by default), learned positions, mean over real tokens, Linear."""

    def __init__(
        self, vocab: int, dim: int, max_len: int, out_dim: int, layers: int = 2, heads: int = 2
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.randn(max_len, dim) * 0.02)
        block = nn.TransformerEncoderLayer(
            dim,
            heads,
            dim_feedforward=4 * dim,
            dropout=0.1,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.blocks = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ids, mask = x[:, 0], x[:, 1]
        h = self.embed(ids) + self.pos[: ids.shape[1]]  # (B, L, dim)
        # a row without any token (an empty text) masks nothing, instead of attending to nothing (NaN)
        pad = (mask == 0) & mask.bool().any(dim=1, keepdim=True)
        h = self.blocks(h, src_key_padding_mask=pad)
        return self.out(pool(self.norm(h), mask, "mean"))


def text_vocab_size(backbone: Any) -> int:
    """Token ids the backbone's tokenizer can produce: its model's vocabulary and any added tokens."""
    model = backbone.encoder.model
    if not hasattr(model, "config"):  # an open_clip text tower: its token embedding's rows
        return int(model.token_embedding.num_embeddings)
    return max(len(backbone.tokenizer), int(model.config.vocab_size))


def _text_cnn(bb: Any, cfg: Any) -> nn.Module:
    return TextCNN(text_vocab_size(bb), cfg.text_embed_dim, cfg.small_widths, cfg.small_dim, cfg.text_kernel)


def _heads_divide(cfg: Any) -> None:
    if cfg.text_embed_dim % cfg.text_heads:
        raise UserError(
            f"levi.text_heads ({cfg.text_heads}) must divide levi.text_embed_dim ({cfg.text_embed_dim}) "
            "for the text-transformer; change either"
        )


def _text_transformer(bb: Any, cfg: Any) -> nn.Module:
    vocab = text_vocab_size(bb)
    return TextTransformer(
        vocab, cfg.text_embed_dim, bb.max_length, cfg.small_dim, cfg.text_layers, cfg.text_heads
    )


SMALL_MODELS.add("text-cnn", SmallModel("text", _text_cnn))
SMALL_MODELS.add("text-transformer", SmallModel("text", _text_transformer, _heads_divide))
