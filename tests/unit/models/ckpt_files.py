"""Checkpoint directories written in the real on-disk format, for the model tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import timm
import torch
from safetensors.torch import save_file

from nmlbench.io import sha256_file
from nmlbench.models import zoo


def write_checkpoint(
    dest: Path,
    library: str = "timm",
    schema_version: int = 1,
    seed: int = 0,
    arch: str = "nmlbench_tinyresnet",
    **extra: Any,
) -> Path:
    """A checkpoint dir in the format of docs/architecture.md, as pretraining writes it.

    `seed` picks the weights; `extra` adds checkpoint.json fields (e.g. data, pretrain_key).
    """
    dest.mkdir(parents=True)
    torch.manual_seed(seed)
    if library == "timm":
        model = timm.create_model(arch, num_classes=7)
        kwargs, oc, mean, std = (
            {"num_classes": 7},
            None,
            zoo.MINI_MEAN,
            zoo.MINI_STD,
        )
    else:
        import open_clip

        model = open_clip.create_model(zoo.TINY_CLIP_NAME, pretrained=None)
        arch, kwargs, oc = "ckpt-tinyclip", {}, zoo.TINY_CLIP_CONFIG
        mean, std = zoo.OPENAI_MEAN, zoo.OPENAI_STD
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(dest / "model.safetensors"))
    info = {
        "format": "nmlbench-checkpoint",
        "schema_version": schema_version,
        "library": library,
        "arch": arch,
        "model_kwargs": kwargs,
        "open_clip_config": oc,
        "image_size": 32,
        "mean": list(mean),
        "std": list(std),
        "noise": {"kind": "symmetric_label", "rate": 0.1, "seed": 0, "recipe": "sym10"},
        "manifest_sha256": "a" * 64,
        "data_fingerprint": "f",
        "epoch": 1,
        "step": 10,
        "versions": {},
        "git_sha": None,
        "weights_sha256": sha256_file(dest / "model.safetensors"),
        **extra,
    }
    (dest / "checkpoint.json").write_text(json.dumps(info))
    (dest / "config.yaml").write_text("seed: 0\n")
    return dest
