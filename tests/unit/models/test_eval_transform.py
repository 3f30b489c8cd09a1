"""The eval transform is the reference's: Resize(ceil(size / crop_pct)) + CenterCrop(size), with the
interpolation, mean and std of the model's timm pretrained_cfg. Regression: crop_pct was ignored
(Resize(224) + CenterCrop(224) for every model)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import timm
from ckpt_files import write_checkpoint
from torchvision import transforms as T

from nmlbench.models import load_backbone


def _steps(backbone) -> tuple[int, int, str]:
    resize, crop = backbone.eval_transform().transforms[:2]
    assert isinstance(resize, T.Resize) and isinstance(crop, T.CenterCrop)
    return resize.size, crop.size[0], resize.interpolation.value


@pytest.mark.parametrize("arch", ["resnet50", "vit_tiny_patch16_224"])
def test_timm_models_follow_their_pretrained_cfg(arch: str) -> None:
    cfg = timm.get_pretrained_cfg(arch)
    bb = load_backbone(arch, pretrained=False)
    assert _steps(bb) == (math.ceil(224 / cfg.crop_pct), 224, cfg.interpolation)
    assert bb.mean == tuple(cfg.mean) and bb.std == tuple(cfg.std)


def test_resnet50_is_resized_to_236_then_cropped_to_224() -> None:
    assert _steps(load_backbone("resnet50", pretrained=False))[:2] == (236, 224)


def test_checkpoints_use_their_architectures_cfg_and_mini_models_are_not_cropped(tmp_path: Path) -> None:
    ckpt = write_checkpoint(tmp_path / "r18", arch="resnet18")
    size = load_backbone(str(ckpt)).image_size
    assert _steps(load_backbone(str(ckpt)))[:2] == (math.ceil(size / 0.95), size)
    assert _steps(load_backbone("tinyresnet", pretrained=False)) == (32, 32, "bilinear")
