from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import fakes  # noqa: E402  (test modules import TINY from it too)


@pytest.fixture
def tiny_mini(monkeypatch: pytest.MonkeyPatch) -> None:
    import nmlbench.mini

    up = fakes.make_upstream()
    monkeypatch.setattr(nmlbench.mini, "load_upstream", lambda data_dir=None, seed=0, progress=False: up)
