"""Helpers shared by the evaluation benchmarks (not part of the package)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from nmlbench.eval.metrics import top1
from nmlbench.features import FeatureStore, split_ref
from nmlbench.models import load_backbone

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def timed(fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    """(fn(*args), seconds it took)."""
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def load_task(name: str) -> tuple[Any, dict[str, Any]]:
    """A registered task's spec and its train/val/test splits (through nmlbench.tasks)."""
    from nmlbench.tasks import get_task, load_split

    spec = get_task(name)
    return spec, {s: load_split(spec, s) for s in ("train", "val", "test")}


class NpzSplit:
    """A split of a ../shared/data archive with the task-split interface: split[i] -> (PIL, label)."""

    def __init__(self, images: np.ndarray, labels_: np.ndarray, prefix: str) -> None:
        self.images, self.labels = images, labels_.astype(np.int64)
        self.ids = np.array([f"{prefix}/{i:06d}" for i in range(len(labels_))])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Image.Image, int]:
        return Image.fromarray(self.images[i]).convert("RGB"), int(self.labels[i])


class NpzSpec:
    """The task fields the benchmarks read (name, version, num_classes)."""

    def __init__(self, name: str, num_classes: int) -> None:
        self.name, self.version, self.num_classes = name, 1, num_classes


def cifar10_subset(data: Path, n_train: int, n_val: int, n_test: int) -> tuple[Any, dict[str, Any]]:
    """Train/val from CIFAR-10 train (a seeded permutation), test from CIFAR-10 test; 32x32 RGB."""
    tr, te = np.load(data / "cifar10_train.npz"), np.load(data / "cifar10_test.npz")
    idx = np.random.default_rng(0).permutation(len(tr["labels"]))[: n_train + n_val]
    tidx = np.random.default_rng(1).permutation(len(te["labels"]))[:n_test]
    splits = {
        "train": NpzSplit(tr["images"][idx[:n_train]], tr["labels"][idx[:n_train]], "train"),
        "val": NpzSplit(tr["images"][idx[n_train:]], tr["labels"][idx[n_train:]], "val"),
        "test": NpzSplit(te["images"][tidx], te["labels"][tidx], "test"),
    }
    return NpzSpec(f"cifar10-sub{n_train}", 10), splits


def add_setting_args(ap: argparse.ArgumentParser, n_train: int, n_val: int, n_test: int, size: int) -> None:
    """The benchmark setting: backbone, input size and a CIFAR-10 subset (or a registered task)."""
    ap.add_argument("--model", default="resnet18", help="timm name or checkpoint dir")
    ap.add_argument("--pretrained", action="store_true", help="timm names: library weights, not random")
    ap.add_argument("--size", type=int, default=size, help="input resolution (CIFAR is upsampled)")
    ap.add_argument("--task", default="cifar10-npz", help="'cifar10-npz' (../shared/data) or a task name")
    ap.add_argument("--data", type=Path, default=DATA, help="folder with cifar10_{train,test}.npz")
    ap.add_argument("--n-train", type=int, default=n_train)
    ap.add_argument("--n-val", type=int, default=n_val)
    ap.add_argument("--n-test", type=int, default=n_test)


def setting(args: argparse.Namespace) -> tuple[Any, Any, dict[str, Any]]:
    """(backbone at --size, task spec, splits) from the arguments of `add_setting_args`."""
    torch.set_num_threads(1)
    bb = load_backbone(args.model, pretrained=args.pretrained)
    if args.size:
        bb.image_size = args.size  # the transforms resize to it; the cache key includes it
    if args.task == "cifar10-npz":
        spec, splits = cifar10_subset(args.data, args.n_train, args.n_val, args.n_test)
    else:
        spec, splits = load_task(args.task)
    n = {s: len(splits[s].labels) for s in splits}
    init = "checkpoint" if Path(args.model).is_dir() else "pretrained" if args.pretrained else "random init"
    print(f"model {bb.name} ({init}) at {bb.image_size}px, D={bb.feature_dim}; task {spec.name} {n}")
    return bb, spec, splits


def eval_feats(store: FeatureStore, spec: Any, splits: dict[str, Any]) -> dict[str, torch.Tensor]:
    return {
        s: store.eval_features(splits[s], split_ref(spec.name, spec.version, s, splits[s])) for s in splits
    }


def labels(split: Any) -> torch.Tensor:
    return torch.as_tensor(np.asarray(split.labels), dtype=torch.long)


def test_top1(fitted: Any, feats: torch.Tensor, split: Any) -> float:
    with torch.no_grad():
        return top1(np.asarray(split.labels), fitted.predict(feats).argmax(1))
