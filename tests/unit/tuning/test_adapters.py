"""LoRA trains only adapters + head; LEVI taps the intended layers and trains only its own parts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from nmlbench.errors import UserError
from nmlbench.models import load_backbone
from nmlbench.tuning import TUNERS, ImageData
from nmlbench.tuning.images import add_lora
from nmlbench.tuning.levi import LEVIConfig
from nmlbench.tuning.lora import LoRAConfig


class Split:
    def __init__(self, n: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.labels = rng.integers(0, 2, n)
        self.ids = np.array([f"i{i}" for i in range(n)])
        self.images = [
            Image.fromarray((rng.integers(0, 60, (32, 32, 3)) + 180 * (y == 1)).astype(np.uint8))
            for y in self.labels
        ]

    def __getitem__(self, i: int):
        return self.images[i], int(self.labels[i])


def _data(bb) -> ImageData:
    return ImageData(bb, Split(32, 0), Split(16, 1), 2)


@pytest.mark.parametrize(
    "ref,expect",
    [
        ("tinyvit", r"\.mlp\.fc[12]$"),
        ("open_clip:nmlbench-tinyclip", r"\.mlp\.c_(fc|proj)$"),
        ("tinyresnet", r"conv|downsample"),
    ],
)
def test_lora_targets_and_trainable_set(ref: str, expect: str) -> None:
    import re

    bb = load_backbone(ref, pretrained=False)
    enc = add_lora(bb.trainable_encoder(), 8, 8.0, 0.0, "auto")
    trainable = [n for n, p in enc.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    wrapped = {n.rsplit(".lora_", 1)[0] for n in trainable}
    assert all(re.search(expect, n) for n in wrapped)


def test_lora_fit_changes_only_adapters_and_head() -> None:
    bb = load_backbone("tinyvit", pretrained=False)
    before = {k: v.clone() for k, v in bb.encoder.state_dict().items()}
    tuner = TUNERS.get("lora")(LoRAConfig(epochs=1, batch_size=16))
    fitted = tuner.fit(_data(bb), seed=0)
    lora_params = sum(
        p.numel()
        for n, p in add_lora(bb.trainable_encoder(), 8, 8.0, 0.0, "auto").named_parameters()
        if "lora_" in n
    )
    assert fitted.trainable_params == lora_params + (64 * 2 + 2)  # adapters + linear head
    assert all(
        torch.equal(v, bb.encoder.state_dict()[k]) for k, v in before.items()
    )  # frozen model untouched


def test_levi_taps_intended_layers_and_trains_small_parts() -> None:
    bb = load_backbone("tinyresnet", pretrained=False)
    assert bb.tap_indices((0.5, 0.75, 1.0)) == [2, 3, 4]
    names = [bb.encoder.model.feature_info[i]["module"] for i in bb.tap_indices((0.5, 0.75, 1.0))]
    assert names == ["layer2", "layer3", "layer4"]
    before = {k: v.clone() for k, v in bb.encoder.state_dict().items()}
    tuner = TUNERS.get("levi")(LEVIConfig(epochs=1, batch_size=16))
    fitted = tuner.fit(_data(bb), seed=0)
    assert tuner.tap_indices == [2, 3, 4]
    backbone_params = sum(p.numel() for p in bb.encoder.parameters())
    assert fitted.total_params - fitted.trainable_params == backbone_params  # all of it frozen
    assert all(torch.equal(v, bb.encoder.state_dict()[k]) for k, v in before.items())


def test_levi_vit_taps_class_token() -> None:
    bb = load_backbone("tinyvit", pretrained=False)
    taps = bb.encoder.taps(torch.randn(2, 3, 32, 32), bb.tap_indices((0.5, 1.0)))
    assert [t.shape for t in taps] == [(2, 64), (2, 64)]


def test_model_without_taps_is_refused() -> None:
    bb = load_backbone("tinyresnet", pretrained=False)
    bb.encoder.model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    with pytest.raises(UserError, match="LEVI can tap"):
        TUNERS.get("levi")(LEVIConfig()).check_backbone(bb)


def test_model_without_lora_targets_is_refused() -> None:
    bb = load_backbone("tinyresnet", pretrained=False)
    with pytest.raises(UserError, match="no LoRA target"):
        TUNERS.get("lora")(LoRAConfig(lora_targets=r"nothing\.here")).check_backbone(bb)
