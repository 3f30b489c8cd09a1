"""A damaged mini cache (truncated by a killed copy or a full disk) is rebuilt, as its docstring says."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nmlbench.mini import data as D


def _tiny_upstream(seed: int = 0, progress: bool = False) -> D.Upstream:
    labels = np.arange(6) % 2
    return D.Upstream(
        np.array([f"up/{i}" for i in range(6)]),
        np.zeros((6, 4, 4, 3), np.uint8),
        labels,
        np.array([f"cap {i}" for i in range(6)]),
        ["a", "b"],
    )


@pytest.mark.parametrize("damage", ["truncated", "garbage", "missing-array"])
def test_damaged_upstream_cache_is_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    monkeypatch.setattr(D, "generate_upstream", _tiny_upstream)  # the real one takes ~15 s
    D.load_upstream(tmp_path)
    cache = D.mini_dir(tmp_path) / "upstream.npz"
    good = cache.read_bytes()
    if damage == "truncated":
        cache.write_bytes(good[: len(good) // 2])
    elif damage == "garbage":
        cache.write_bytes(b"\0" * 300)
    else:
        np.savez(cache, ids=np.array(["x"]))
    up = D.load_upstream(tmp_path)
    assert up.ids.tolist() == _tiny_upstream().ids.tolist()
    assert cache.read_bytes() == good  # rebuilt in place, byte for byte


def test_truncated_task_cache_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def tiny_task(name: str, domain: str, seed: int = 0) -> dict[str, np.ndarray]:
        return {
            f"{s}_{w}": np.zeros(
                (3, 2, 2, 3) if w == "images" else 3, np.uint8 if w == "images" else np.int64
            )
            for s in D.SPLITS
            for w in ("images", "labels")
        }

    monkeypatch.setattr(D, "generate_task", tiny_task)
    D.load_generated("cells", "real", "train", tmp_path)
    cache = D.mini_dir(tmp_path) / "tasks" / "cells-real.npz"
    cache.write_bytes(cache.read_bytes()[:200])
    images, labels = D.load_generated("cells", "real", "test", tmp_path)
    assert images.shape == (3, 2, 2, 3) and len(labels) == 3
