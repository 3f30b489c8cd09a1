"""Frozen-backbone features for black-box tuners: cached eval features, cached views, fresh views.

    store = FeatureStore(backbone, FeatureConfig())
    x = store.eval_features(split, ref)               # (N, D), extracted once, then read from disk
    views = store.view_source(split, ref, k=2)        # K cached augmented views per tuning seed
    views = views.bind(seed)                          # CachedViews of that seed (extracted once)
    fresh = store.view_source(split, ref, k=0)        # the reference protocol: FreshViews

Every view source answers `bind(tuning_seed)` and `pair(indices, generator) -> (f_a, f_b)`, two
augmentations of each image. Cached views are drawn from the tuning seed, so the seed-to-seed
spread of a method includes the sampling of its views, as it does with fresh views.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from nmlbench.config import bounded, seed_field
from nmlbench.features.cache import SplitRef, cache_path, ids_fingerprint, load_features, save_features
from nmlbench.models.augment import AugmentConfig
from nmlbench.models.load import Backbone

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeatureConfig:
    """How features are extracted and cached (shared by every black-box method of a run)."""

    batch_size: int = bounded(256, ge=1)  # extraction batch; no effect on the features
    # view v of tuning seed s is drawn with a seed hashed from (view_seed, s, v)
    view_seed: int = seed_field(0)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"features.batch_size must be >= 1, got {self.batch_size}")


class TransformedSplit(Dataset):
    """A task split `(PIL image, label)` seen through a torchvision transform."""

    def __init__(self, split: Any, transform: Any, indices: np.ndarray | None = None) -> None:
        self.split, self.transform = split, transform
        self.indices = np.arange(len(split.labels)) if indices is None else indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        image, label = self.split[int(self.indices[i])]
        return self.transform(image), int(label)


def split_ref(task: str, version: int, split_name: str, split: Any) -> SplitRef:
    return SplitRef(task, int(version), split_name, ids_fingerprint(split.ids))


class FeatureStore:
    """Extract-once feature access for one backbone, backed by the on-disk cache."""

    def __init__(
        self, backbone: Backbone, cfg: FeatureConfig | None = None, root: str | Path | None = None
    ) -> None:
        self.backbone, self.cfg, self.root = backbone, cfg or FeatureConfig(), root
        self.extracted = 0  # files built (not read from cache) by this store

    def eval_features(self, split: Any, ref: SplitRef) -> torch.Tensor:
        """(N, D) features of the eval transform (no augmentation): LP and every evaluation."""
        transform = self.backbone.eval_transform()
        return self._cached(split, ref, transform, {"transform": repr(transform), "view": "eval"}, seed=None)

    def view(self, split: Any, ref: SplitRef, v: int, tuning_seed: int = 0) -> torch.Tensor:
        """(N, D) features of augmented view `v` for a tuning seed, reproducible from both."""
        transform = self.backbone.train_transform(self.cfg.augment)
        seed = view_draw_seed(self.cfg.view_seed, tuning_seed, v)
        desc = {"transform": repr(transform), "view": v, "tuning_seed": tuning_seed, "seed": seed}
        return self._cached(split, ref, transform, desc, seed)

    def view_source(self, split: Any, ref: SplitRef, k: int, seed: int | None = None) -> ViewSource:
        """K>=1: cached augmented views; K=0: fresh augmentations through the backbone every step.

        Cached views are extracted when a tuner binds its seed (`bind(seed)`), or at once when
        `seed` is given here.
        """
        if k == 0:
            return FreshViews(self.backbone, split, self.backbone.train_transform(self.cfg.augment))
        views = SeededViews(self, split, ref, k)
        return views if seed is None else views.bind(seed)

    def _cached(
        self, split: Any, ref: SplitRef, transform: Any, desc: dict[str, Any], seed: int | None
    ) -> torch.Tensor:
        path = cache_path(self.root, self.backbone.key, ref, desc)
        cached = load_features(path, ref)
        if cached is not None:
            return cached
        features = extract(
            self.backbone,
            TransformedSplit(split, transform),
            self.cfg.batch_size,
            seed,
            desc=f"features {ref.task}/{ref.split} {desc['view']}",
        )
        save_features(path, features, ref, desc)
        self.extracted += 1
        return features


def extract(
    backbone: Backbone, data: Dataset, batch_size: int, seed: int | None, desc: str = "features"
) -> torch.Tensor:
    """Run the frozen backbone over `data` in order; `seed` fixes the augmentations drawn."""
    loader = DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=0)
    out = []
    # fork_rng: drawing augmentations must not disturb the caller's random stream
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        for images, _ in tqdm(loader, desc=desc, leave=False):
            out.append(backbone.features(images))
    return torch.cat(out) if out else torch.zeros(0, backbone.feature_dim)


def view_draw_seed(view_seed: int, tuning_seed: int, v: int) -> int:
    """The seed that draws view `v` of a tuning seed: 60 bits of a sha256 of (view_seed, s, v)."""
    digest = hashlib.sha256(f"{view_seed}/{tuning_seed}/{v}".encode()).hexdigest()
    return int(digest[:15], 16)


class ViewSource(Protocol):
    def bind(self, seed: int) -> ViewSource: ...

    def pair(self, indices: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]: ...


class SeededViews:
    """K cached views per tuning seed, extracted (or read from the cache) when a seed is bound."""

    def __init__(self, store: FeatureStore, split: Any, ref: SplitRef, k: int) -> None:
        self.store, self.split, self.ref, self.k = store, split, ref, k

    def bind(self, seed: int) -> CachedViews:
        return CachedViews(
            torch.stack([self.store.view(self.split, self.ref, v, seed) for v in range(self.k)])
        )

    def pair(self, indices: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        raise RuntimeError("cached views depend on the tuning seed: call bind(seed) first")


class CachedViews:
    """K cached views (K, N, D); each step picks two different views per image (same one if K=1).

    With K=1 both members of the pair are the same tensor object, so NMTune embeds it once.
    """

    def __init__(self, views: torch.Tensor) -> None:
        self.views = views
        self.k = views.shape[0]

    def bind(self, seed: int) -> CachedViews:
        return self  # already extracted (for one seed, or handed in by a caller)

    def pair(self, indices: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        if self.k == 1:
            f = self.views[0, indices]
            return f, f
        a = torch.randint(0, self.k, (len(indices),), generator=gen)
        b = (a + torch.randint(1, self.k, (len(indices),), generator=gen)) % self.k
        return self.views[a, indices], self.views[b, indices]


class FreshViews:
    """The reference protocol: two fresh augmentations of each image through the frozen backbone."""

    def __init__(self, backbone: Backbone, split: Any, transform: Any) -> None:
        self.backbone, self.split, self.transform = backbone, split, transform

    def bind(self, seed: int) -> FreshViews:
        return self  # augmentations are drawn from the tuner's generator, seeded by the tuning seed

    def pair(self, indices: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        images = [self.split[int(i)][0] for i in indices]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
            batch = torch.stack([self.transform(im) for im in images] + [self.transform(im) for im in images])
        f = self.backbone.features(batch)  # one call for both views: (2B, D)
        return f[: len(images)], f[len(images) :]
