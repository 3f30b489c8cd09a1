"""load_backbone: nmlbench checkpoints (timm and open_clip), names, transforms, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from ckpt_files import write_checkpoint

from nmlbench.errors import UserError
from nmlbench.io import sha256_file
from nmlbench.models import load_backbone, read_checkpoint_info, zoo


def test_timm_checkpoint_loads_with_provenance(tmp_path: Path) -> None:
    ckpt = write_checkpoint(tmp_path / "tinyresnet.mini_sym10_s0")
    bb = load_backbone(ckpt)
    assert bb.name == "tinyresnet.mini_sym10_s0" and bb.library == "timm"
    assert bb.provenance["checkpoint_sha256"] == sha256_file(ckpt / "model.safetensors")
    assert bb.provenance["manifest_sha256"] == "a" * 64 and bb.provenance["noise"]["recipe"] == "sym10"
    feats = bb.features(torch.randn(3, 3, 32, 32))
    assert feats.shape == (3, 256) and bb.feature_dim == 256 and bb.calls == 1
    assert not any(p.requires_grad for p in bb.encoder.parameters())


def test_open_clip_checkpoint_loads_custom_config(tmp_path: Path) -> None:
    bb = load_backbone(write_checkpoint(tmp_path / "tinyclip.mini_sym10_s0", library="open_clip"))
    assert bb.library == "open_clip" and bb.feature_dim == 64  # projected embedding width
    assert bb.features(torch.randn(2, 3, 32, 32)).shape == (2, 64)


def test_other_schema_version_is_refused(tmp_path: Path) -> None:
    ckpt = write_checkpoint(tmp_path / "old", schema_version=2)
    with pytest.raises(UserError, match="schema_version 2"):
        load_backbone(ckpt)


def test_edited_weights_are_detected(tmp_path: Path) -> None:
    ckpt = write_checkpoint(tmp_path / "c")
    info = read_checkpoint_info(ckpt)
    info["weights_sha256"] = "0" * 64
    (ckpt / "checkpoint.json").write_text(json.dumps(info))
    with pytest.raises(UserError, match="sha256 does not match"):
        load_backbone(ckpt)


def test_unknown_model_suggests_close_names() -> None:
    with pytest.raises(UserError, match="did you mean"):
        load_backbone("resnet5O", pretrained=False)


def test_names_load_and_transforms_follow_methods_md() -> None:
    timm_bb = load_backbone("tinyvit", pretrained=False)
    clip_bb = load_backbone(f"open_clip:{zoo.TINY_CLIP_NAME}", pretrained=False)
    t = repr(timm_bb.train_transform())
    assert "scale=(0.8, 1.0)" in t and "RandomHorizontalFlip" in t
    c = repr(clip_bb.train_transform())
    assert "scale=(0.9, 1.0)" in c and "RandomHorizontalFlip" not in c
    # random init is seeded: the same name gives the same weights key
    assert load_backbone("tinyvit", pretrained=False).key == timm_bb.key
