"""The detector takes its pyramid from any CNN either library builds: a timm ResNet (what a timm name or
an nmlbench checkpoint loads) and an open_clip ModifiedResNet tower (`open_clip:RN50`), no per-model code."""
from __future__ import annotations

import pytest
import timm
import torch
import torchvision.transforms.functional as TF
from open_clip.modified_resnet import ModifiedResNet
from test_model import SMALL, make_split

from nmlbench.dense.model import build_detector
from nmlbench.models.load import Backbone


def _backbone(model: torch.nn.Module, library: str) -> Backbone:
    meta = {"image_size": 64, "mean": (0.5,) * 3, "std": (0.5,) * 3, "key": "0" * 16, "provenance": {}}
    return Backbone(model, library=library, arch="x", name="x", ref="x", meta=meta)


@pytest.mark.parametrize(
    "make",
    [
        lambda: _backbone(timm.create_model("resnet18", pretrained=False, num_classes=0), "timm"),
        # open_clip's RN tower at a tiny width: stem + layer1..4, attention pooling never used here
        lambda: _backbone(ModifiedResNet(layers=(1, 1, 1, 1), output_dim=32, heads=2, image_size=64, width=8),
                          "open_clip"),
    ],
    ids=["timm-resnet18", "open_clip-modified-resnet"],
)
@pytest.mark.parametrize("train_backbone", [False, True], ids=["frozen", "ft"])
def test_mask_rcnn_on_timm_and_open_clip_resnets(make, train_backbone: bool) -> None:
    torch.manual_seed(0)
    split = make_split(2, masks=True)
    bb = make()
    model = build_detector(bb, len(split.classes), True, SMALL, train_backbone=train_backbone)
    # four stage maps at strides 4..32 of a ResNet (+ the pooled level), all at the FPN's width
    maps = model.backbone(torch.zeros(1, 3, 64, 64))
    assert [m.shape[1] for m in maps.values()] == [SMALL.fpn_channels] * 5
    assert [m.shape[-1] for m in maps.values()] == [16, 8, 4, 2, 1]
    model.train()
    images, targets = zip(*(split[i] for i in range(2)), strict=True)
    images = [TF.to_tensor(im) for im in images]
    targets = [{k: v for k, v in t.items() if k != "image_id"} for t in targets]
    losses = model(images, targets)
    assert {"loss_mask", "loss_box_reg", "loss_objectness"} <= set(losses)
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    body_grads = [p.grad for p in model.backbone.body.parameters() if p.requires_grad]
    assert bool(body_grads) == train_backbone  # frozen: no backbone parameter trains
