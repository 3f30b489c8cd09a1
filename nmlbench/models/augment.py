"""`AugmentConfig`: the train-time augmentation of tuning and cached views, per input modality."""

from __future__ import annotations

from dataclasses import dataclass

from nmlbench.config import bounded, only_for


@dataclass(frozen=True)
class AugmentConfig:
    """Train-time augmentation for tuning and cached views; None picks the library's reference value.

    Each field applies to one input modality and enters the result keys of that modality's models only.
    """

    # RandomResizedCrop lower scale: timm 0.8, CLIP 0.9 [ref]
    scale_min: float | None = bounded(None, gt=0, le=1, only="image")
    scale_max: float = bounded(1.0, gt=0, le=1, only="image")
    hflip: bool | None = only_for("image", None)  # timm: flip [ref]; CLIP: no flip [ref]
    # text views [ours]: each non-special token becomes [MASK] (else [UNK]) with this probability,
    # drawn independently per view, so NMTune's consistency term compares two corrupted copies
    token_drop: float = bounded(0.1, ge=0, lt=1, only="text")

    def __post_init__(self) -> None:
        if self.scale_min is not None and not 0.0 < self.scale_min <= self.scale_max <= 1.0:
            raise ValueError(f"need 0 < scale_min <= scale_max <= 1, got {self.scale_min}, {self.scale_max}")
