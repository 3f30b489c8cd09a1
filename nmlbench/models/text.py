"""Text encoders through Hugging Face `transformers`: `hf:NAME` (any AutoModel) and the tiny `tinytext`.

A text sample (a string, or a pair of strings) becomes one (2, L) int64 tensor, token ids over the
attention mask, made by the model's own tokenizer padded/truncated to `max_length` (pairs encoded
together, as the model expects: `[CLS] a [SEP] b [SEP]` for BERT-style tokenizers). Batches of these
flow through every stage exactly as image tensors do; the encoder pools the last hidden states:

- `cls`: the first token's state (BERT-style encoders; what their classification heads read);
- `mean`: the mean over non-pad tokens;
- `last`: the state of the last non-pad token (decoders such as GPT-2, which see only the left);
- `auto`: `last` for decoder-only models (a causal-LM model type or architecture, not a masked LM),
  else `cls` when the tokenizer has a CLS token, else `mean`. The pooling used is recorded.

`tinytext` is a 2-layer BERT (hidden 64) with a hashed word-level tokenizer: words (lower-cased
`\\w+` runs and punctuation) map to one of 16384 ids by crc32, so it needs no vocabulary file, reads
any text offline, and is the model the mini text benchmark pretrains [ours].
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from nmlbench.config import bounded

Pooling = Literal["auto", "cls", "mean", "last"]
TINY_TEXT = "nmlbench-tinytext"
_SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


@dataclass(frozen=True)
class TextOptions:
    """How a text model reads a task: tokens per sample, and how hidden states are pooled."""

    max_length: int | None = bounded(None, ge=4, le=8192)  # None: the model's own (tinytext 64, else 128)
    pooling: Pooling = "auto"


def hashed_tokenizer(buckets: int = 16384) -> Any:
    """`tinytext`'s tokenizer: a transformers tokenizer whose word ids are crc32 hashes."""
    from transformers import PreTrainedTokenizer

    class HashedWordTokenizer(PreTrainedTokenizer):
        vocab_files_names: dict[str, str] = {}
        model_input_names = ["input_ids", "attention_mask"]

        def __init__(self, **kw: Any) -> None:
            self.buckets = buckets
            pad, unk, cls, sep, mask = _SPECIAL
            super().__init__(
                pad_token=pad, unk_token=unk, cls_token=cls, sep_token=sep, mask_token=mask, **kw
            )

        @property
        def vocab_size(self) -> int:
            return self.buckets + len(_SPECIAL)

        def get_vocab(self) -> dict[str, int]:
            return {t: i for i, t in enumerate(_SPECIAL)}

        def _tokenize(self, text: str, **kw: Any) -> list[str]:
            return re.findall(r"\w+|[^\w\s]", text.lower())

        def _convert_token_to_id(self, token: str) -> int:
            special = self.get_vocab()
            if token in special:
                return special[token]
            return len(_SPECIAL) + zlib.crc32(token.encode()) % self.buckets

        def _convert_id_to_token(self, index: int) -> str:
            return _SPECIAL[index] if index < len(_SPECIAL) else f"[w{index}]"

        def build_inputs_with_special_tokens(self, a: list[int], b: list[int] | None = None) -> list[int]:
            return [2, *a, 3] + ([] if b is None else [*b, 3])

        def save_vocabulary(self, folder: str, filename_prefix: str | None = None) -> tuple[str, ...]:
            return ()

    return HashedWordTokenizer()


def tiny_text_config(vocab_size: int = 16384 + len(_SPECIAL)) -> Any:
    from transformers import BertConfig

    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=512,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
    )


def resolve_pooling(pooling: str, config: Any, tokenizer: Any) -> str:
    if pooling != "auto":
        return pooling
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES as CAUSAL,
    )
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_MASKED_LM_MAPPING_NAMES as MASKED,
    )

    # decoder-only: a causal LM type that is not also a masked LM one (BERT/RoBERTa are both)
    kind = getattr(config, "model_type", "")
    archs = " ".join(getattr(config, "architectures", None) or [])
    causal = (kind in CAUSAL and kind not in MASKED) or re.search(r"CausalLM|LMHeadModel", archs)
    if causal and "MaskedLM" not in archs:
        return "last"
    return "cls" if getattr(tokenizer, "cls_token_id", None) is not None else "mean"


def pool(hidden: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """(B, L, D) states over a (B, L) mask -> (B, D)."""
    if how == "cls":
        return hidden[:, 0]
    if how == "last":  # right padding: the last attended position of each row
        last = mask.long().sum(dim=1).clamp(min=1) - 1
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)


class TextEncoder(nn.Module):
    """(B, 2, L) ids over mask -> pooled (B, D); `taps` pools intermediate layers' states (LEVI)."""

    def __init__(self, model: nn.Module, pooling: str) -> None:
        super().__init__()
        self.model, self.pooling = model, pooling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ids, mask = x[:, 0], x[:, 1]
        out = self.model(input_ids=ids, attention_mask=mask)
        return pool(out.last_hidden_state, mask, self.pooling)

    def taps(self, x: torch.Tensor, indices: list[int]) -> list[torch.Tensor]:
        """Pooled states after blocks `indices` (0-based; hidden_states[0] is the embeddings)."""
        ids, mask = x[:, 0], x[:, 1]
        out = self.model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        return [pool(out.hidden_states[i + 1], mask, self.pooling) for i in indices]

    def depth(self) -> int:
        return int(self.model.config.num_hidden_layers)


class Tokenize:
    """Text -> (2, L) int64: the tokenizer's ids over its attention mask, padded to max_length.

    With `drop > 0`, each non-special token is replaced by the mask (else unk) token with that
    probability, drawn from torch's global generator: the text-side augmentation [ours] that gives
    NMTune's consistency term two different views of one sentence (docs/language.md).
    """

    def __init__(self, tokenizer: Any, max_length: int, name: str, drop: float = 0.0) -> None:
        self.tokenizer, self.max_length, self.name, self.drop = tokenizer, max_length, name, drop
        if tokenizer.pad_token is None:  # GPT-2 has none; right padding is masked out anyway
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "right"
        mask = tokenizer.mask_token_id
        self.replace = mask if mask is not None else tokenizer.unk_token_id
        self.special = set(tokenizer.all_special_ids)

    def __repr__(self) -> str:  # EvalImages memo key: other tokenizer/length/drop -> other tensors
        return f"Tokenize({self.name}, max_length={self.max_length}, drop={self.drop})"

    def __call__(self, text: str | tuple[str, str]) -> torch.Tensor:
        a, b = (text, None) if isinstance(text, str) else text
        enc = self.tokenizer(
            a, b, padding="max_length", truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        ids, mask = enc["input_ids"][0], enc["attention_mask"][0]
        if self.drop > 0 and self.replace is not None:
            ids = ids.clone()
            can = mask.bool() & torch.tensor([int(i) not in self.special for i in ids.tolist()])
            hit = can & (torch.rand(ids.shape) < self.drop)
            ids[hit] = self.replace
        return torch.stack([ids, mask]).long()
