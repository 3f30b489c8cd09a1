"""The tuner contract: a registered class that declares what it consumes and fits a predictor.

eval/run.py routes on `Tuner.consumes` ("features": cached frozen features and view sources;
"images": the backbone and the raw splits), never on the tuner's name.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import nn

from nmlbench.registry import Registry
from nmlbench.tuning.loop import Selection


@dataclass
class FeatureData:
    """What a features-consuming tuner gets: eval features of train/val and augmented-view pairs.

    `train` is None for tuners that train on augmented views only (`Tuner.uses_train_features`
    False): their eval-transform train features would be an extra backbone pass over the train
    split that nothing reads.
    """

    train: torch.Tensor | None  # (N, D) eval-transform features, or None (see above)
    train_labels: torch.Tensor  # (N,) int64
    val: torch.Tensor  # (Nv, D)
    val_labels: torch.Tensor
    num_classes: int
    views: Any = None  # a ViewSource (cached or fresh) when the tuner asked for views
    device: str = "cpu"  # where the tuner trains; inputs stay on the CPU until used

    @property
    def n_train(self) -> int:
        return len(self.train_labels)

    @property
    def dim(self) -> int:
        """Feature dimension D (of the eval features; cached views have the same)."""
        return int((self.train if self.train is not None else self.val).shape[1])

    def on_device(self) -> FeatureData:
        """A copy whose eval features and labels live on `device` (views move per batch)."""
        dev = torch.device(self.device)
        return FeatureData(
            None if self.train is None else self.train.to(dev),
            self.train_labels.to(dev),
            self.val.to(dev),
            self.val_labels.to(dev),
            self.num_classes,
            self.views,
            self.device,
        )

    def for_seed(self, seed: int) -> FeatureData:
        """A copy whose view source is bound to the tuning seed (cached views drawn from it)."""
        views = None if self.views is None else self.views.bind(seed)
        return dataclasses.replace(self, views=views)

    def pair(self, indices: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Two augmented views of the images at `indices` (CPU indices), on `device`."""
        f_a, f_b = self.views.pair(indices.cpu(), gen)
        same = f_b is f_a  # K=1 hands out one tensor twice: keep it one object (embedded once)
        f_a = f_a.to(self.device)
        return f_a, (f_a if same else f_b.to(self.device))


@dataclass
class ImageData:
    """What an images-consuming tuner gets: the frozen backbone and the raw task splits."""

    backbone: Any  # nmlbench.models.Backbone
    train: Any  # task split: split[i] -> (PIL image or text, label), .labels
    val: Any
    num_classes: int
    train_transform: Any = None  # augmentation for training batches (None: the backbone's default)
    device: str = "cpu"


@dataclass
class Fitted:
    """A trained predictor plus what the result record reports about it."""

    predict: Callable[[Any], np.ndarray]  # features (N, D) tensor or an image split -> logits (N, C)
    trainable_params: int
    total_params: int  # of the trained module(s); run.py adds the frozen backbone for feature tuners
    selection: Selection  # best-val epoch and last epoch, and which of the two `predict` holds

    @property
    def best_epoch(self) -> int:
        """Epoch with the best ID-val top-1 (whether or not it is the one reported)."""
        return self.selection.best_epoch

    @property
    def val_top1(self) -> float:
        """ID-val top-1 of `best_epoch`."""
        return self.selection.best_val_top1

    def selection_block(self) -> dict[str, Any]:
        """The record's `selection` block: both epochs side by side and which one is reported."""
        s = self.selection
        return {
            "split": "val",
            "reported": s.reported,
            "best_epoch": int(s.best_epoch),
            "val_top1": float(s.best_val_top1),
            "last_epoch": int(s.last_epoch),
            "last_val_top1": float(s.last_val_top1),
        }


class Tuner(ABC):
    """One tuning method. Subclasses set `consumes` and `Config` (a frozen dataclass of defaults)."""

    consumes: ClassVar[Literal["features", "images"]]
    Config: ClassVar[type]
    config_key: ClassVar[str]  # the method's section in EvalConfig (no dashes: `nmtune_lora`)
    # features tuners: whether fit() reads the eval-transform features of the train split
    uses_train_features: ClassVar[bool] = True

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg

    def views_needed(self) -> int | None:
        """Features tuners: cached augmented views wanted (0 = fresh reference views; None = none)."""
        return None

    def check_backbone(self, backbone: Any) -> None:
        """Raise UserError early when this method cannot run on `backbone` (default: it can)."""
        return None

    @abstractmethod
    def fit(self, data: FeatureData | ImageData, seed: int) -> Fitted:
        """Train on `data.train`, select on `data.val`, return the predictor."""


TUNERS: Registry[type[Tuner]] = Registry("tuning method")


def count_params(*modules: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts over the given modules."""
    params = [p for m in modules for p in m.parameters()]
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


HEAD_INITS = ("kaiming_uniform", "torch")


def check_head_init(init: str) -> None:
    if init not in HEAD_INITS:
        raise ValueError(f"init must be one of {', '.join(HEAD_INITS)}, got {init!r}")


def linear_head(dim: int, num_classes: int, init: str = "kaiming_uniform") -> nn.Linear:
    """A new linear classifier (on the CPU, so the same on any device).

    "kaiming_uniform" [ref]: the reference's heads, `kaiming_uniform(empty(C, D))` (±sqrt(6/D))
    and zero bias; "torch": nn.Linear's own init (±1/sqrt(D), bias too).
    """
    check_head_init(init)
    head = nn.Linear(dim, num_classes)
    if init == "kaiming_uniform":
        nn.init.kaiming_uniform_(head.weight)
        nn.init.zeros_(head.bias)
    return head


def top1(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Percentage of correct argmax predictions (selection metric during training)."""
    if len(labels) == 0:
        return 0.0
    return float((logits.argmax(1) == labels).float().mean() * 100)
