"""`EvalConfig`: every tuning method's settings in one frozen config, from a preset + YAML + `--set`.

    cfg = load_eval_config("mini", overrides=["nmtune.epochs=5", "features.batch_size=128"])

Presets live in nmlbench/eval/presets/: `reference` (the reference code's published settings,
i.e. the dataclass defaults) and `mini` (short schedules for the built-in mini benchmark).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from nmlbench.config import bounded, load_config, to_dict
from nmlbench.dense.recipe import DetFrozenConfig, DetFTConfig, DetLoRAConfig
from nmlbench.errors import UserError
from nmlbench.features.extract import FeatureConfig
from nmlbench.launch import SlurmConfig
from nmlbench.models.text import TextOptions
from nmlbench.tuning.levi import LEVIConfig, LEVILoRAConfig
from nmlbench.tuning.linear_probe import LPConfig
from nmlbench.tuning.lora import FTConfig, LoRAConfig, NMTuneLoRAConfig
from nmlbench.tuning.nmtune import MLPConfig, NMTuneConfig

PRESET_DIR = Path(__file__).parent / "presets"


@dataclass(frozen=True)
class EvalConfig:
    """One section per method (`nmtune_lora` for `nmtune-lora`), plus features and model loading."""

    features: FeatureConfig = field(default_factory=FeatureConfig)
    # timm/open_clip names: auto (or true) = the library's pretrained weights, an error when they
    # cannot be had; false = seeded random init. Checkpoint dirs ignore it (docs/models.md).
    pretrained: bool | Literal["auto"] | None = None
    # evaluation resolution in pixels for transforms and the model (ViTs resample position
    # embeddings); None = the model's own. Part of the model's identity key.
    image_size: int | None = bounded(None, ge=1)
    device: str = "auto"  # "auto" (cuda when available), "cpu", "cuda" or "cuda:N"
    # text models (hf:NAME, tinytext): tokens per sample and pooling; part of the model's identity key
    text: TextOptions = field(default_factory=TextOptions)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        if self.image_size is not None and self.image_size < 1:
            raise ValueError(f"image_size must be a positive number of pixels or null, got {self.image_size}")

    lp: LPConfig = field(default_factory=LPConfig)
    mlp: MLPConfig = field(default_factory=MLPConfig)
    nmtune: NMTuneConfig = field(default_factory=NMTuneConfig)
    nmtune_lora: NMTuneLoRAConfig = field(default_factory=NMTuneLoRAConfig)
    lora: LoRAConfig = field(default_factory=LoRAConfig)
    ft: FTConfig = field(default_factory=FTConfig)
    levi: LEVIConfig = field(default_factory=LEVIConfig)
    levi_lora: LEVILoRAConfig = field(default_factory=LEVILoRAConfig)
    # dense tasks (docs/dense.md): Faster/Mask R-CNN recipes, frozen backbone or fine-tuned
    det_frozen: DetFrozenConfig = field(default_factory=DetFrozenConfig)
    det_ft: DetFTConfig = field(default_factory=DetFTConfig)
    det_lora: DetLoRAConfig = field(default_factory=DetLoRAConfig)
    slurm: SlurmConfig = field(default_factory=SlurmConfig)  # resources per job for --launcher slurm


def resolve_device(name: str) -> str:
    """'auto' -> 'cuda' when a GPU is visible, else 'cpu'; asking for an absent GPU is an error."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device {name!r} was asked for but no CUDA GPU is visible; use --set device=cpu")
    return name


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_eval_config(
    preset: str = "reference", path: str | Path | None = None, overrides: Sequence[str] = ()
) -> EvalConfig:
    """Dataclass defaults <- preset <- YAML file <- `--set` overrides."""
    preset_file = PRESET_DIR / f"{preset}.yaml"
    if not preset_file.is_file():
        raise UserError(f"unknown tuning preset {preset!r}; known: {', '.join(preset_names())}")
    base: dict[str, Any] = yaml.safe_load(preset_file.read_text(encoding="utf-8")) or {}
    return load_config(EvalConfig, path, overrides, base=base)


def method_config(cfg: EvalConfig, config_key: str) -> Any:
    return getattr(cfg, config_key)


def method_config_dict(
    cfg: EvalConfig, config_key: str, consumes: str, modality: str = "image"
) -> dict[str, Any]:
    """What a record stores as `method.config`: the method's section (+ features for feature tuners).

    Only the settings that apply to the model's input `modality` enter it (and the result key hashed
    from it): a text model's records hold the token dropout of its views, an image model's the crop
    and flip of its augmentation, so a setting of one modality never moves the other's keys. Settings
    that change no number (`key=False`: how often to log or save state) stay out as well.
    """
    section = to_dict(getattr(cfg, config_key), modality, keyed=True)
    if consumes == "dense":  # detectors have their own augmentation (flip) in their section
        return {config_key: section}
    out = {config_key: section, "augment": to_dict(cfg.features.augment, modality, keyed=True)}
    if consumes == "features":
        out["features"] = to_dict(cfg.features, modality, keyed=True)
    return out
