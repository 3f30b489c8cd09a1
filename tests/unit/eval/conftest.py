"""Fixtures of the evaluation tests: the fake task stage from fake_tasks.py."""

from __future__ import annotations

import pytest
from fake_tasks import install


@pytest.fixture
def fake_tasks(monkeypatch: pytest.MonkeyPatch) -> dict:
    """Install the fake task stage; returns a dict counting load_split calls."""
    calls: dict = {}
    install(monkeypatch, calls)
    return calls
