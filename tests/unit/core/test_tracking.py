"""Tracking options: flags -> TrackOptions -> environment (what worker processes and SLURM jobs see)."""

from __future__ import annotations

import argparse
import importlib.util
import os
from pathlib import Path

import pytest

from nmlbench import tracking
from nmlbench.errors import UserError


def _parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    tracking.add_arguments(p)
    return p.parse_args(argv)


def test_flags_resolve_and_travel_by_environment(tmp_path: Path) -> None:
    assert tracking.from_args(_parse(), tmp_path) == tracking.TrackOptions()
    opts = tracking.from_args(_parse("--tensorboard"), tmp_path)
    assert opts.tensorboard == str((tmp_path / "tb").resolve()) and opts.wandb is None
    own = tracking.from_args(_parse("--tensorboard", "runs"), tmp_path)
    assert own.tensorboard == str(Path("runs").resolve())
    with tracking.activated(opts):
        assert tracking.active() == opts and os.environ[tracking.ENV_TENSORBOARD] == opts.tensorboard
    assert tracking.ENV_TENSORBOARD not in os.environ and tracking.active() == tracking.TrackOptions()


def _without_tensorboard(real):
    return lambda name, *a: None if name == "tensorboard" else real(name, *a)


def test_missing_tensorboard_is_a_user_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", _without_tensorboard(real))
    with pytest.raises(UserError, match="pip install tensorboard"):
        tracking.from_args(_parse("--tensorboard"), tmp_path)
    with pytest.raises(UserError, match="needs a project name"):
        tracking.from_args(_parse("--wandb", " "), tmp_path)


def test_curves_do_nothing_without_a_name_or_settings(tmp_path: Path) -> None:
    with tracking.activated(tracking.TrackOptions(tensorboard=str(tmp_path))):
        assert not tracking.open_curves("tune", None).enabled
    assert not tracking.open_curves("tune", "x").enabled
    assert not any(tmp_path.iterdir())
