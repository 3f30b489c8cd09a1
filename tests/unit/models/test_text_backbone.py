"""Text models: the registered tiny model, sentence-pair encoding, pooling, identity and one-line errors."""

from __future__ import annotations

import pytest
import torch

from nmlbench.errors import UserError
from nmlbench.models.load import load_backbone
from nmlbench.models.refs import model_identity
from nmlbench.models.text import TextOptions, pool


def test_tinytext_encodes_single_and_pair_texts():
    bb = load_backbone("tinytext", pretrained=False)
    tok = bb.eval_transform()
    one, pair = tok("The cat sat."), tok(("The cat sat.", "A dog ran!"))
    assert one.shape == pair.shape == (2, 64) and one.dtype == torch.int64
    ids = pair[0][pair[1].bool()].tolist()
    assert ids[0] == 2 and ids.count(3) == 2  # [CLS] a [SEP] b [SEP]: both sentences, as BERT expects
    assert ids[: ids.index(3) + 1] == one[0][one[1].bool()].tolist()
    feats = bb.features(torch.stack([one, pair]))
    assert feats.shape == (2, bb.feature_dim) and bb.pooling == "cls"
    assert bb.provenance["library"] == "transformers" and bb.provenance["max_length"] == 64


def test_token_dropout_views_differ_and_keep_special_tokens():
    bb = load_backbone("tinytext", pretrained=False)
    view = bb.train_transform()
    text = " ".join(f"w{i}" for i in range(40))
    torch.manual_seed(0)
    a, b = view(text), view(text)
    assert not torch.equal(a, b) and torch.equal(a[1], b[1])
    assert a[0, 0] == 2 and (a[0] == 4).any()  # [CLS] kept; some words became [MASK]
    assert torch.equal(bb.eval_transform()(text), bb.eval_transform()(text))


def test_pooling_modes():
    h = torch.arange(2 * 4 * 1, dtype=torch.float32).view(2, 4, 1)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    assert pool(h, mask, "cls").flatten().tolist() == [0.0, 4.0]
    assert pool(h, mask, "last").flatten().tolist() == [1.0, 7.0]  # last non-pad token (decoders)
    assert pool(h, mask, "mean").flatten().tolist() == [0.5, 5.5]


def test_identity_changes_with_length_and_pooling():
    base = model_identity("tinytext", pretrained=False)
    longer = model_identity("tinytext", pretrained=False, text=TextOptions(max_length=32))
    mean = model_identity("tinytext", pretrained=False, text=TextOptions(pooling="mean"))
    assert len({base.key, longer.key, mean.key}) == 3
    assert longer.block["image_size"] == longer.block["max_length"] == 32
    with pytest.raises(UserError, match="image_size applies to image models"):
        model_identity("tinytext", pretrained=False, image_size=32)
    with pytest.raises(UserError, match="no pretrained weights"):
        model_identity("tinytext")


def tiny_hf(folder, decoder: bool) -> str:
    """A tiny transformers model + its own word-level tokenizer saved as on the hub; returns `hf:PATH`."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import BertConfig, BertModel, GPT2Config, GPT2Model, PreTrainedTokenizerFast

    words = "the a cat dog sat ran on mat . ! is was good bad movie".split()
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    special = {"pad_token": "[PAD]", "unk_token": "[UNK]"}
    if decoder:
        fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="[SEP]", **special)
        cfg = GPT2Config(n_embd=32, n_layer=2, n_head=2, vocab_size=len(vocab), bos_token_id=3,
                         eos_token_id=3,
                         architectures=["GPT2LMHeadModel"])  # fmt: skip
        GPT2Model(cfg).save_pretrained(folder)
    else:
        fast = PreTrainedTokenizerFast(
            tokenizer_object=tok, cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]", **special
        )
        cfg = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, architectures=["BertForMaskedLM"])  # fmt: skip
        BertModel(cfg, add_pooling_layer=False).save_pretrained(folder)
    fast.save_pretrained(folder)
    return f"hf:{folder}"


@pytest.mark.parametrize(("decoder", "pooling"), [(False, "cls"), (True, "last")])
def test_hf_model_from_a_local_folder(tmp_path, decoder, pooling):
    """`hf:PATH` loads any AutoModel and its own tokenizer offline; a decoder pools its last token."""
    ref = tiny_hf(tmp_path / "m", decoder)
    bb = load_backbone(ref, text=TextOptions(max_length=16))
    assert bb.pooling == pooling and bb.provenance["pretrained"] is True
    x = torch.stack([bb.eval_transform()("the cat sat on the mat"), bb.eval_transform()(("a dog", "ran"))])
    assert x.shape == (2, 2, 16) and bb.features(x).shape == (2, bb.feature_dim)
    random = load_backbone(ref, pretrained=False, text=TextOptions(max_length=16))
    assert random.key != bb.key  # a seeded random init from the config is another model


def test_unknown_hf_model_is_one_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="cannot load the weights of transformers model 'no-such/model'"):
        load_backbone("hf:no-such/model")


def test_open_clip_text_tower():
    """`open_clip-text:NAME`: the tower's own BPE tokenizer and end-of-text pooling, another identity
    than the image tower's, no image tower left to tune."""
    ref = "open_clip-text:nmlbench-tinyclip"
    bb = load_backbone(ref, pretrained=False)
    assert bb.library == "open_clip-text" and bb.pooling == "eot" and bb.max_length == 16
    one, pair = bb.eval_transform()("a cat"), bb.eval_transform()(("a cat", "on a mat"))
    assert pair[1].sum() > one[1].sum() and one[0, 0] == 49406  # start token; the pair is one text
    assert bb.features(torch.stack([one, pair])).shape == (2, 64)
    torch.manual_seed(0)
    view = bb.train_transform()(" ".join(["cat"] * 12))
    n = int(view[1].sum())
    assert view[0, 0] == 49406 and view[0, n - 1] == 49407 and (view[0, 1 : n - 1] == 0).any()
    assert not any(name.startswith("model.visual.") for name, _ in bb.encoder.named_parameters())
    image = model_identity("open_clip:nmlbench-tinyclip", pretrained=False)
    assert model_identity(ref, pretrained=False).key != image.key
    with pytest.raises(UserError, match="reads 16 tokens"):
        model_identity(ref, pretrained=False, text=TextOptions(max_length=32))
