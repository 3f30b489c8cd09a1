"""Fixtures for the noise tests: output root and a stand-in for the mini benchmark."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture
def out_root() -> Path:
    """$NMLBENCH_ROOT, which tests/conftest.py points at a fresh directory per test."""
    return Path(os.environ["NMLBENCH_ROOT"])


@pytest.fixture
def fake_mini(monkeypatch: pytest.MonkeyPatch):
    """A stand-in for nmlbench.mini with the contract's fields (ids, labels, captions, classes)."""
    rng = np.random.default_rng(3)
    n, classes = 300, [f"shape{i}" for i in range(6)]
    labels = rng.integers(0, len(classes), n)
    up = types.SimpleNamespace(
        ids=np.array([f"up/c{c:03d}/{i:06d}" for i, c in enumerate(labels)]),
        labels=labels,
        captions=np.array([f"a drawing of {classes[c]} number {i}" for i, c in enumerate(labels)]),
        classes=classes,
        images=np.zeros((n, 32, 32, 3), np.uint8),
    )
    mod = types.ModuleType("nmlbench.mini")
    mod.load_upstream = lambda data_dir=None, **kw: up
    monkeypatch.setitem(sys.modules, "nmlbench.mini", mod)
    return up
