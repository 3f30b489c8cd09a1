"""LEVI taps: ~1/2, ~3/4 and the last *stage* (the stem is not a stage), on timm and open_clip ResNets."""

from __future__ import annotations

import open_clip
import pytest
import timm
import torch
from open_clip.modified_resnet import ModifiedResNet

from nmlbench.models.load import Backbone

FRACTIONS = (0.5, 0.75, 1.0)


def _backbone(model: torch.nn.Module, library: str, size: int) -> Backbone:
    meta = {"image_size": size, "mean": (0.5,) * 3, "std": (0.5,) * 3, "key": "0" * 16, "provenance": {}}
    return Backbone(model, library=library, arch="x", name="x", ref="x", meta=meta)


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_timm_resnet_taps_layer2_3_4(arch: str) -> None:
    bb = _backbone(timm.create_model(arch, pretrained=False, num_classes=0), "timm", 32)
    idx = bb.tap_indices(FRACTIONS)
    assert [bb.encoder.model.feature_info[i]["module"] for i in idx] == ["layer2", "layer3", "layer4"]
    widths = [t.shape[1] for t in bb.encoder.taps(torch.zeros(1, 3, 32, 32), idx)]
    assert widths == [bb.encoder.model.feature_info[i]["num_chs"] for i in idx]


def test_open_clip_rn50_taps_layer2_3_4() -> None:
    # open_clip's RN50 stage layout (3, 4, 6, 3), with a small width and input so it runs in ~1 s
    layers = tuple(open_clip.get_model_config("RN50")["vision_cfg"]["layers"])
    width = 8
    model = ModifiedResNet(layers=layers, output_dim=32, heads=2, image_size=64, width=width)
    bb = _backbone(model, "open_clip", 64)
    idx = bb.tap_indices(FRACTIONS)
    taps = bb.encoder.taps(torch.zeros(1, 3, 64, 64), idx)
    # ModifiedResNet's Bottleneck widens 4x: layer1..4 give 4w, 8w, 16w, 32w channels
    assert idx == [2, 3, 4] and [t.shape[1] for t in taps] == [8 * width, 16 * width, 32 * width]


def test_vit_and_stemless_cnn_taps() -> None:
    vit = _backbone(timm.create_model("nmlbench_tinyvit", pretrained=False, num_classes=0), "timm", 32)
    assert vit.tap_indices(FRACTIONS) == [1, 2, 3]  # 4 blocks: 2nd, 3rd, 4th
    convnext = _backbone(timm.create_model("convnext_atto", pretrained=False, num_classes=0), "timm", 32)
    assert convnext.tap_indices(FRACTIONS) == [1, 2, 3]  # 4 stages, no stem entry
