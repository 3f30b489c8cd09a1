from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import harness  # noqa: E402


@pytest.fixture
def reject(capsys: pytest.CaptureFixture):
    """`reject(argv, expect=..., watch=[...])`: the bad-input contract (see harness.py)."""

    def run(argv, *, expect, watch=()):
        return harness.reject(argv, capsys, expect=expect, watch=watch)

    return run
