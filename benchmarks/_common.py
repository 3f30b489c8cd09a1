"""Helpers shared by the evaluation benchmarks (not part of the package)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from nmlbench.eval.metrics import top1
from nmlbench.features import FeatureStore, split_ref


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


def eval_feats(store: FeatureStore, spec: Any, splits: dict[str, Any]) -> dict[str, torch.Tensor]:
    return {
        s: store.eval_features(splits[s], split_ref(spec.name, spec.version, s, splits[s])) for s in splits
    }


def labels(split: Any) -> torch.Tensor:
    return torch.as_tensor(np.asarray(split.labels), dtype=torch.long)


def test_top1(fitted: Any, feats: torch.Tensor, split: Any) -> float:
    with torch.no_grad():
        return top1(np.asarray(split.labels), fitted.predict(feats).argmax(1))
