"""torchvision Faster/Mask R-CNN on an FPN over a nmlbench backbone's four stages.

The body is the backbone's own module (a timm model or an open_clip visual tower): its stage maps come
from `forward_intermediates`, so any CNN either library builds works without per-architecture code.
torchvision supplies the FPN (with the extra max-pooled level), RPN, RoI heads and the resize/normalise
transform; nothing of them is re-implemented here.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from timm.layers import freeze_batch_norm_2d
from torch import nn
from torchvision.models.detection import FasterRCNN, MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from nmlbench.dense.recipe import DetConfig, DetLoRAConfig
from nmlbench.errors import UserError

STAGES = (0.25, 0.5, 0.75, 1.0)  # depth fractions of the four stages after the stem
ROI_SIZE = 7  # torchvision's box RoIAlign output side (MultiScaleRoIAlign output_size=7)


class StageBody(nn.Module):
    """images -> {"0".."3": the four stage maps}; frozen bodies stay in eval mode without gradients."""

    def __init__(self, model: nn.Module, library: str, indices: list[int], trainable: bool) -> None:
        super().__init__()
        self.model, self.library, self.indices, self.trainable = model, library, indices, trainable

    def train(self, mode: bool = True) -> StageBody:
        # a frozen body keeps its BatchNorm statistics and dropout off while the detector trains
        return super().train(mode and self.trainable)

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        with torch.set_grad_enabled(self.trainable and torch.is_grad_enabled()):
            out = self.model.forward_intermediates(x, indices=self.indices, intermediates_only=True)
        if isinstance(out, dict):  # open_clip towers return a dict of named lists
            out = out["image_intermediates"]
        return OrderedDict((str(i), f) for i, f in enumerate(out))


class FPNBody(nn.Module):
    """StageBody + torchvision's FeaturePyramidNetwork; `out_channels` as torchvision's detectors need."""

    def __init__(self, body: StageBody, in_channels: list[int], out_channels: int) -> None:
        super().__init__()
        self.body = body
        self.fpn = FeaturePyramidNetwork(in_channels, out_channels, extra_blocks=LastLevelMaxPool())
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        return self.fpn(self.body(x))


def stage_body(
    backbone: Any, train_backbone: bool, freeze_bn: bool = True, lora: DetLoRAConfig | None = None
) -> StageBody:
    """The backbone's four stages after the stem as a StageBody (a deep copy when it trains; with
    `lora`, a copy whose only trainable parameters are peft LoRA adapters in its convolutions)."""
    check_dense_backbone(backbone)
    indices = backbone.tap_indices(STAGES)
    if train_backbone or lora is not None:
        encoder = backbone.trainable_encoder()
        if lora is not None:  # the `lora` method's injection: only the adapters require gradients
            from nmlbench.tuning.images import add_lora

            encoder = add_lora(encoder, lora.rank, lora.alpha, lora.dropout, lora.lora_targets)
        model = encoder.model
        if freeze_bn:
            model = freeze_batch_norm_2d(model)  # FrozenBatchNorm2d: statistics and affine fixed
        return StageBody(model, backbone.library, indices, True)
    return StageBody(backbone.encoder.model, backbone.library, indices, False)


def check_dense_backbone(backbone: Any) -> None:
    """UserError (one line) unless the backbone is an image CNN with four stages of falling stride."""
    name = getattr(backbone, "name", "?")
    fix = "use a CNN (a timm ResNet/ConvNeXt checkpoint or an open_clip ResNet tower, e.g. tinyresnet)"
    if getattr(backbone, "modality", "image") != "image":
        raise UserError(f"model {name!r} is a text model; detection needs an image CNN: {fix}")
    model = backbone.encoder.model
    if not hasattr(model, "forward_intermediates"):
        raise UserError(f"model {name!r} has no forward_intermediates to take stage maps from; {fix}")
    if getattr(model, "transformer", None) is not None or getattr(model, "num_prefix_tokens", 0) > 0:
        raise UserError(f"model {name!r} is a ViT (one feature stride, no pyramid); detection: {fix}")
    reductions = [int(i.get("reduction", 0)) for i in getattr(model, "feature_info", [])]
    if reductions and len(set(reductions)) == 1:
        raise UserError(f"model {name!r} has one feature stride ({reductions[0]}), no pyramid; {fix}")


@torch.no_grad()
def stage_channels(body: StageBody, size: int, device: torch.device) -> list[int]:
    """Channels of the four stage maps from a probe forward; a map whose size does not fall -> UserError."""
    was = body.training
    body.eval()
    maps = list(body(torch.zeros(1, 3, size, size, device=device)).values())
    body.train(was)
    sides = [m.shape[-1] for m in maps]
    if any(m.ndim != 4 for m in maps) or sides != sorted(sides, reverse=True) or len(set(sides)) < 2:
        raise UserError(f"the backbone's stage maps (sides {sides}) form no feature pyramid; use a CNN")
    return [int(m.shape[1]) for m in maps]


def build_detector(
    backbone: Any, num_classes: int, masks: bool, cfg: DetConfig, train_backbone: bool
) -> nn.Module:
    """FasterRCNN (masks False) or MaskRCNN (masks True) with num_classes + 1 outputs (0 = background)."""
    lora = cfg if isinstance(cfg, DetLoRAConfig) else None
    body = stage_body(backbone, train_backbone, cfg.freeze_bn, lora)
    device = next(body.model.parameters()).device
    fpn = FPNBody(body, stage_channels(body, backbone.image_size, device), cfg.fpn_channels)
    anchors = AnchorGenerator(
        sizes=tuple((s,) for s in cfg.anchor_sizes),
        aspect_ratios=(tuple(cfg.aspect_ratios),) * len(cfg.anchor_sizes),
    )
    heads: dict[str, Any] = {
        # torchvision's heads with our widths: at the reference scale (fpn 256, box 1024) they are its own
        "box_head": TwoMLPHead(cfg.fpn_channels * ROI_SIZE**2, cfg.box_head_dim),
        "box_predictor": FastRCNNPredictor(cfg.box_head_dim, num_classes + 1),
    }
    if masks:
        # the mask head's width follows the FPN's (torchvision's is a fixed 256), so a narrow CPU preset
        # does not run four 256-wide convolutions per RoI
        width = cfg.fpn_channels
        heads["mask_head"] = MaskRCNNHeads(width, [width] * 4, 1)
        heads["mask_predictor"] = MaskRCNNPredictor(width, width, num_classes + 1)
    detector = (MaskRCNN if masks else FasterRCNN)(
        fpn,
        num_classes=None,  # the predictors below carry num_classes + 1 (0 = background)
        min_size=cfg.min_size,
        max_size=cfg.max_size,
        image_mean=list(backbone.mean),
        image_std=list(backbone.std),
        rpn_anchor_generator=anchors,
        box_detections_per_img=cfg.detections_per_img,
        box_batch_size_per_image=cfg.roi_batch_size,
        **heads,
    )
    return detector.to(device)
