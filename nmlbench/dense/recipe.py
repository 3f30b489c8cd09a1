"""Recipes of the dense transfer methods: one frozen dataclass of named settings per method.

The defaults are the reference scale [ours, per METHODS.md "Dense transfer"]: the standard Mask R-CNN
1x schedule of detectron2 (90k iterations of 16 images, SGD lr 0.02 with momentum 0.9, weight decay
1e-4, 1000 linear warm-up iterations from 0.001x, x0.1 at 60k and 80k) at 800/1333 px. The CPU mini
preset (eval/presets/mini-dense.yaml) shrinks images, anchors, the FPN and the schedule.
"""

from __future__ import annotations

from dataclasses import dataclass

from nmlbench.config import bounded


@dataclass(frozen=True)
class DetConfig:
    """Faster/Mask R-CNN with an FPN on the backbone's four stages, trained with SGD."""

    steps: int = bounded(90_000, ge=1)
    batch_size: int = bounded(16, ge=1)
    lr: float = bounded(0.02, gt=0)  # FPN, RPN and heads (and the backbone unless lr_backbone)
    momentum: float = bounded(0.9, ge=0, lt=1)
    weight_decay: float = bounded(1e-4, ge=0)
    warmup_steps: int = bounded(1000, ge=0)  # linear warm-up from warmup_factor * lr
    warmup_factor: float = bounded(0.001, gt=0, le=1)
    lr_steps: tuple[int, ...] = bounded((60_000, 80_000), ge=1)  # lr *= lr_gamma at each of these
    lr_gamma: float = bounded(0.1, gt=0, le=1)
    lr_backbone: float | None = bounded(None, ge=0)  # det-ft: the backbone's lr (None = lr)
    # GeneralizedRCNNTransform: shorter side to min_size unless the longer one would exceed max_size
    min_size: int = bounded(800, ge=1)
    max_size: int = bounded(1333, ge=1)
    fpn_channels: int = bounded(256, ge=1)
    # one anchor size per pyramid level: the 4 stages and the extra max-pooled level
    anchor_sizes: tuple[int, ...] = bounded((32, 64, 128, 256, 512), ge=1)
    aspect_ratios: tuple[float, ...] = bounded((0.5, 1.0, 2.0), gt=0)
    # RoIs sampled per training image for the box head (detectron2's ROI_HEADS.BATCH_SIZE_PER_IMAGE)
    roi_batch_size: int = bounded(512, ge=1)
    box_head_dim: int = bounded(1024, ge=1)  # width of the box head's two FC layers (torchvision's)
    hflip: float = bounded(0.5, ge=0, le=1)  # probability of a horizontal flip per training image
    # det-ft: BatchNorm statistics and affine stay fixed (detection batches are too small to estimate them)
    freeze_bn: bool = True
    detections_per_img: int = bounded(100, ge=1)  # COCO's AP counts at most 100 per image
    eval_batch_size: int = bounded(8, ge=1)
    log_every: int = bounded(20, ge=1)  # steps between logged losses
    # steps between saved resumable states (a killed run loses at most this many); 0 = never. It
    # changes no number, so it is left out of the result key
    checkpoint_every: int = bounded(500, ge=0, key=False)

    def __post_init__(self) -> None:
        if len(self.anchor_sizes) != 5:
            raise ValueError(
                f"anchor_sizes needs 5 sizes (4 stages + pool level), got {len(self.anchor_sizes)}"
            )
        if not self.aspect_ratios:
            raise ValueError("aspect_ratios needs at least one ratio")
        if list(self.lr_steps) != sorted(self.lr_steps):
            raise ValueError(f"lr_steps must be ascending, got {list(self.lr_steps)}")
        if self.min_size > self.max_size:
            raise ValueError(f"need min_size <= max_size, got {self.min_size} > {self.max_size}")


@dataclass(frozen=True)
class DetFrozenConfig(DetConfig):
    """det-frozen: the backbone stays as pre-trained (eval mode, no gradients); FPN, RPN, heads train."""


@dataclass(frozen=True)
class DetFTConfig(DetConfig):
    """det-ft: the backbone trains too (frozen BatchNorm), at lr_backbone when set."""


@dataclass(frozen=True)
class DetLoRAConfig(DetConfig):
    """det-lora [ours]: peft LoRA adapters in the backbone's convolutions (the `lora` method's CNN targets:
    every 1x1 and 3x3 convolution); the base weights stay as pre-trained, adapters train at lr_backbone."""

    rank: int = bounded(8, ge=1)
    alpha: float = bounded(8.0, gt=0)  # peft lora_alpha, as `lora`
    dropout: float = bounded(0.0, ge=0, lt=1)
    lora_targets: str = "auto"  # "auto" = the CNN convolutions above, else a regex over module names
