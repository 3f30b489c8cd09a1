"""Text model reference -> a frozen `TextBackbone`: the image `Backbone`'s interface over token tensors.

    bb = load_text_backbone(parse_ref("hf:bert-base-uncased"), ident, TextOptions())
    x = bb.eval_transform()(("a premise", "a hypothesis"))   # (2, L): ids over attention mask
    feats = bb.features(torch.stack([x]))                       # (1, D) pooled, no grad

Every stage that moves images through a transform, a backbone and a tuner moves texts the same way:
`eval_transform` tokenizes, `train_transform` tokenizes with token dropout (the text views),
`trainable_encoder` is a copy LoRA/FT train, `tap_indices`/`depth` count transformer blocks.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from nmlbench.errors import UserError
from nmlbench.models.refs import FIX_RANDOM, ModelIdentity, ModelRef
from nmlbench.models.text import (
    TINY_TEXT,
    TextEncoder,
    TextOptions,
    Tokenize,
    hashed_tokenizer,
    resolve_pooling,
    tiny_text_config,
)

TEXT_LIBRARY = "transformers"
DEFAULT_DROP = 0.1  # token dropout of the text views [ours]


class TextBackbone:
    """A frozen text encoder plus what every stage needs to know about it (see `Backbone`)."""

    modality = "text"

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        opts: TextOptions,
        *,
        arch: str,
        name: str,
        ref: str,
        meta: dict,
        encoder: Any = None,
        library: str = TEXT_LIBRARY,
    ) -> None:
        """`encoder` (with its `pooling`) replaces the transformers TextEncoder for other families."""
        if encoder is None:
            pooling = resolve_pooling(opts.pooling, model.config, tokenizer)
            encoder = TextEncoder(model, pooling)
        pooling = encoder.pooling
        self.encoder = encoder.eval()
        self.encoder.library = library
        for p in self.encoder.parameters():
            p.requires_grad_(False)
        self.tokenizer, self.max_length, self.pooling = tokenizer, opts.max_length, pooling
        self.library, self.arch, self.name, self.ref = library, arch, name, ref
        self.image_size = opts.max_length  # the input size slot of records: tokens per sample
        ident = f"{meta['digest']}:{opts.max_length}:{pooling}"
        self.key: str = hashlib.sha256(ident.encode()).hexdigest()[:16]
        self.provenance: dict[str, Any] = dict(
            meta["block"], checkpoint_sha256=meta["digest"], max_length=opts.max_length, pooling=pooling
        )
        self.calls = 0
        self.device = torch.device("cpu")
        with torch.no_grad():
            probe = self.encoder(torch.stack([self.eval_transform()("probe")]))
        self.feature_dim = int(probe.shape[-1])

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.encoder.eval()
        return self.encoder(x.to(self.device)).float().cpu()

    def to(self, device: str | torch.device) -> TextBackbone:
        self.device = torch.device(device)
        self.encoder.to(self.device)
        return self

    def trainable_encoder(self) -> TextEncoder:
        enc = copy.deepcopy(self.encoder)
        for p in enc.parameters():
            p.requires_grad_(True)
        return enc

    def tokenize(self, drop: float = 0.0) -> Any:
        return Tokenize(self.tokenizer, self.max_length, f"{self.name}:{self.pooling}", drop)

    def eval_transform(self) -> Any:
        return self.tokenize()

    def train_transform(self, aug: Any = None) -> Any:
        drop = getattr(aug, "token_drop", None)
        return self.tokenize(DEFAULT_DROP if drop is None else drop)

    def probe_input(self, n: int = 2) -> torch.Tensor:
        """A batch of `n` token tensors, for shape probes (LEVI's tap widths)."""
        return torch.stack([self.eval_transform()("probe")] * n)

    def depth(self) -> int:
        return self.encoder.depth()

    def tap_indices(self, fractions: tuple[float, ...]) -> list[int]:
        """Blocks at the given depth fractions (1.0 = the last), 0-based, as `Backbone.tap_indices`."""
        import math

        n = self.depth()
        return sorted({min(n, max(1, math.ceil(f * n - 1e-9))) - 1 for f in fractions})


def load_text_backbone(mref: ModelRef, ident: ModelIdentity, opts: TextOptions) -> TextBackbone:
    """`hf:NAME` through AutoModel/AutoTokenizer, or the registered tiny model; seeded random init when
    `pretrained` is False (from the model's config, which must then be loadable: cached or tiny)."""
    want = ident.block["pretrained"]
    if mref.arch == TINY_TEXT:
        from transformers import BertModel

        model, tokenizer = BertModel(tiny_text_config(), add_pooling_layer=False), hashed_tokenizer()
    else:
        model, tokenizer = _from_hub(mref.arch, bool(want))
    meta = {"digest": weights_digest(model), "block": ident.block}
    return TextBackbone(model, tokenizer, opts, arch=mref.arch, name=ident.name, ref=mref.ref, meta=meta)


def _from_hub(name: str, pretrained: bool) -> tuple[Any, Any]:
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
        if pretrained:
            model = AutoModel.from_pretrained(name)
        else:
            model = AutoModel.from_config(AutoConfig.from_pretrained(name))
    except Exception as e:  # hub/network/cache errors come in many types
        what = "weights" if pretrained else "config and tokenizer"
        hint = "" if not pretrained else f", or pass {FIX_RANDOM} for a seeded random init from its config"
        raise UserError(
            f"cannot load the {what} of transformers model {name!r} ({type(e).__name__}); check the "
            f"name, the network or the HF cache (HF_HOME){hint}"
        ) from None
    return model, tokenizer


def load_text_checkpoint(
    path: Path, info: dict[str, Any], digest: str, ident: ModelIdentity, opts: TextOptions
) -> TextBackbone:
    """A text model nmlbench pretrained: its config (checkpoint.json `hf_config`) and weights."""
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModel

    from nmlbench.models.load import _described_by

    with _described_by(path):
        hf = dict(info["hf_config"])
        config = AutoConfig.for_model(hf.pop("model_type"), **hf)
        model = AutoModel.from_config(config, add_pooling_layer=False)
        state = load_file(str(path / "model.safetensors"))
        # pretraining saved encoder + head; downstream uses the encoder alone (the head is never used)
        model.load_state_dict(
            {k.removeprefix("encoder."): v for k, v in state.items() if k.startswith("encoder.")}
        )
    tokenizer = hashed_tokenizer() if info.get("tokenizer") == "hashed-words" else _saved_tokenizer(path)
    meta = {"digest": digest, "block": ident.block}
    return TextBackbone(model, tokenizer, opts, arch=info["arch"], name=ident.name, ref=str(path), meta=meta)


def _saved_tokenizer(path: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path / "tokenizer"))


def weights_digest(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(json.dumps(list(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
