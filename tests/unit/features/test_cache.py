"""Feature cache: extracted once, reused from disk, corrupt files rebuilt, views reproducible."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from nmlbench.features import CachedViews, FeatureConfig, FeatureStore, SeededViews, split_ref
from nmlbench.models import load_backbone


class Split:
    def __init__(self, n: int = 20) -> None:
        rng = np.random.default_rng(0)
        self.labels = rng.integers(0, 2, n)
        self.ids = np.array([f"s{i}" for i in range(n)])
        self.images = [Image.fromarray(rng.integers(0, 255, (32, 32, 3)).astype(np.uint8)) for _ in range(n)]

    def __getitem__(self, i: int):
        return self.images[i], int(self.labels[i])


@pytest.fixture
def setup():
    bb = load_backbone("tinyresnet", pretrained=False)
    split = Split()
    return bb, split, split_ref("t", 1, "train", split)


def test_eval_features_extracted_once(setup) -> None:
    bb, split, ref = setup
    a = FeatureStore(bb, FeatureConfig(batch_size=8)).eval_features(split, ref)
    calls = bb.calls
    assert calls == 3 and a.shape == (20, 256)
    b = FeatureStore(bb, FeatureConfig(batch_size=8)).eval_features(split, ref)  # a new store: from disk
    assert bb.calls == calls and torch.equal(a, b)


def test_corrupt_cache_is_rebuilt(setup, caplog) -> None:
    bb, split, ref = setup
    store = FeatureStore(bb, FeatureConfig(batch_size=32))
    a = store.eval_features(split, ref)
    [path] = list((store.root or __import__("nmlbench.paths").paths.output_root()).rglob("*.safetensors"))
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0xFF  # flip bits inside the tensor data
    path.write_bytes(bytes(raw))
    b = store.eval_features(split, ref)
    assert "sha256" in caplog.text and store.extracted == 2 and torch.equal(a, b)
    path.write_bytes(b"not a safetensors file")
    assert torch.equal(store.eval_features(split, ref), a) and store.extracted == 3


def test_views_are_reproducible_and_reused_across_k(setup) -> None:
    bb, split, ref = setup
    store = FeatureStore(bb, FeatureConfig(batch_size=32))
    v2 = store.view_source(split, ref, 2, seed=0)
    assert store.extracted == 2 and not torch.equal(v2.views[0], v2.views[1])
    v3 = store.view_source(split, ref, 3, seed=0)
    assert store.extracted == 3 and torch.equal(v3.views[:2], v2.views)
    f_a, f_b = v3.pair(torch.arange(20), torch.Generator().manual_seed(0))
    assert not torch.equal(f_a, f_b)  # two different cached views per image


def test_stale_ids_invalidate_the_cache(setup) -> None:
    bb, split, ref = setup
    store = FeatureStore(bb)
    store.eval_features(split, ref)
    split.ids = np.array([f"other{i}" for i in range(20)])
    store.eval_features(split, split_ref("t", 1, "train", split))
    assert store.extracted == 2


def test_single_cached_view_pairs_with_itself() -> None:
    views = CachedViews(torch.randn(1, 5, 4))
    f_a, f_b = views.pair(torch.arange(5), torch.Generator().manual_seed(0))
    assert torch.equal(f_a, f_b)


def test_cached_views_are_drawn_from_the_tuning_seed(setup, tmp_path) -> None:
    bb, split, ref = setup
    store = FeatureStore(bb, FeatureConfig(batch_size=32), tmp_path / "a")
    lazy = store.view_source(split, ref, 2)
    assert isinstance(lazy, SeededViews) and store.extracted == 0  # nothing until a seed is bound
    s0, s1 = lazy.bind(0).views, lazy.bind(1).views
    assert store.extracted == 4 and not torch.equal(s0[0], s1[0]) and not torch.equal(s0[1], s1[1])
    assert torch.equal(lazy.bind(0).views, s0) and store.extracted == 4  # seed 0 again: from the cache
    other = FeatureStore(bb, FeatureConfig(batch_size=8), tmp_path / "b")  # a fresh cache, same seed
    assert torch.equal(other.view_source(split, ref, 2, seed=1).views, s1)
    a_files = {p.name: p.read_bytes() for p in (tmp_path / "a").rglob("*.safetensors")}
    b_files = {p.name: p.read_bytes() for p in (tmp_path / "b").rglob("*.safetensors")}
    assert len(b_files) == 2 and all(a_files[name] == raw for name, raw in b_files.items())  # same bytes


def test_nmtune_binds_its_own_seed(setup, tmp_path) -> None:
    from nmlbench.tuning import TUNERS, FeatureData
    from nmlbench.tuning.nmtune import NMTuneConfig

    bb, split, ref = setup
    store = FeatureStore(bb, FeatureConfig(batch_size=32), tmp_path)
    val = store.eval_features(split, ref)
    labels = torch.as_tensor(split.labels)
    data = FeatureData(None, labels, val, labels, 2, store.view_source(split, ref, 2))
    tuner = TUNERS.get("nmtune")(NMTuneConfig(epochs=1, batch_size=10))
    tuner.fit(data, seed=0)
    tuner.fit(data, seed=0)
    assert store.extracted == 1 + 2  # eval features + the two views of seed 0, once
    tuner.fit(data, seed=1)
    assert store.extracted == 1 + 4  # seed 1 draws its own two views
