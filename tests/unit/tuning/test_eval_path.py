"""The image methods' evaluation path: merged LoRA for inference, eval tensors made once per job,
channels_last training weights — each gives the numbers of the plain path (up to float rounding)."""

from __future__ import annotations

import gc

import numpy as np
import torch
from torch import nn

from nmlbench.models import load_backbone
from nmlbench.tasks.split import Split
from nmlbench.tuning import images as img
from nmlbench.tuning.images import EvalImages, add_lora, merged_lora


def _lora_encoder() -> nn.Module:
    torch.manual_seed(0)
    enc = add_lora(load_backbone("tinyresnet", pretrained=False).trainable_encoder(), 4, 4.0, 0.0, "auto")
    for name, p in enc.named_parameters():
        if "lora_B" in name:  # peft starts B at 0: make the adapters change the output
            nn.init.normal_(p, std=0.1)
    return enc.eval()


def test_merged_lora_gives_the_unmerged_output_and_restores_the_weights_exactly() -> None:
    enc = _lora_encoder()
    x = torch.randn(4, 3, 32, 32)
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    with torch.no_grad():
        plain = enc(x)
        with merged_lora(enc) as merged:
            fast = merged(x)
            layers = [m for m in enc.modules() if hasattr(m, "merged")]
            assert layers and all(m.merged for m in layers)  # the adapters' branch is not run
        again = enc(x)
    assert torch.allclose(plain, fast, atol=1e-4, rtol=1e-4)
    assert all(not m.merged for m in layers)
    assert all(torch.equal(v, enc.state_dict()[k]) for k, v in before.items())  # bit-identical
    assert torch.equal(plain, again)


def test_merged_lora_restores_the_weights_when_the_evaluation_fails() -> None:
    enc = _lora_encoder()
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    try:
        with merged_lora(enc):
            raise RuntimeError("evaluation failed")
    except RuntimeError:
        pass
    assert all(torch.equal(v, enc.state_dict()[k]) for k, v in before.items())


def _split(n: int = 6) -> Split:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, size=(n, 32, 32, 3), dtype=np.uint8)
    from PIL import Image

    return Split(np.arange(n) % 2, ["a", "b"], np.array([f"s{i}" for i in range(n)]),
                 get_image=lambda i: Image.fromarray(images[i]), images=images)


def test_eval_tensors_are_made_once_per_split_and_transform_and_die_with_the_split() -> None:
    bb = load_backbone("tinyresnet", pretrained=False)
    split = _split()
    a = EvalImages.of(split, bb.eval_transform())
    assert EvalImages.of(split, bb.eval_transform()) is a  # the next method of the job reuses it
    fresh = EvalImages(split, bb.eval_transform())
    assert torch.equal(a._tensor, fresh._tensor) and torch.equal(a.labels, fresh.labels)
    other = bb.eval_transform()
    other.transforms[-1].mean = (0.0, 0.0, 0.0)  # another transform never reuses the tensors
    assert EvalImages.of(split, other) is not a
    assert len(img._EVAL_MEMO) == 1
    del split, fresh  # `fresh` was made without the memo and holds the split
    gc.collect()
    assert len(img._EVAL_MEMO) == 0  # the memo does not keep a finished job's data alive


def test_eval_tensors_beyond_the_memo_budget_are_not_kept(monkeypatch) -> None:
    monkeypatch.setattr(img, "_MEMO_BYTES", 1)
    bb = load_backbone("tinyresnet", pretrained=False)
    split = _split()
    assert EvalImages.of(split, bb.eval_transform()) is not EvalImages.of(split, bb.eval_transform())


def test_trainable_encoder_is_channels_last_and_computes_the_same_features() -> None:
    bb = load_backbone("tinyresnet", pretrained=False)
    enc = bb.trainable_encoder().eval()
    convs = [m for m in enc.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(m.weight.is_contiguous(memory_format=torch.channels_last) for m in convs)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(enc(x), bb.encoder.eval()(x), atol=1e-5, rtol=1e-4)
