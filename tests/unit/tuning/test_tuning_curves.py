"""Tuning curves: per-epoch train loss / val top-1 / lr, one TensorBoard run per evaluation cell."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from nmlbench import tracking
from nmlbench.tuning.loop import Schedule, param_groups, run_training


def _fit(epochs: int = 3) -> None:
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 4, generator=gen), torch.arange(32) % 2
    head = nn.Linear(4, 2)

    def evaluate() -> float:
        return float((head(x).argmax(1) == y).float().mean() * 100)

    run_training([head], param_groups([(head.parameters(), 0.1, 0.0)]), 32, Schedule(epochs, 8),
                 lambda idx: nn.functional.cross_entropy(head(x[idx]), y[idx]), evaluate, gen, "lp")


def test_one_tensorboard_run_per_cell(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with tracking.activated(tracking.TrackOptions(tensorboard=str(tmp_path))):
        for cell in ("toys/m__lp__a__s0__k", "toys/m__lp__a__s1__k"):
            with tracking.cell(cell):
                _fit()
        _fit()  # outside an evaluation cell: no run to file it under, nothing written
    runs = sorted(p.name for p in (tmp_path / "tune" / "toys").iterdir())
    assert runs == ["m__lp__a__s0__k", "m__lp__a__s1__k"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tune"]
    acc = EventAccumulator(str(tmp_path / "tune" / "toys" / runs[0]))
    acc.Reload()
    assert {"tune/train_loss", "tune/val_top1", "tune/lr"} <= set(acc.Tags()["scalars"])
    assert [e.step for e in acc.Scalars("tune/val_top1")] == [1, 2, 3]
    lrs = [e.value for e in acc.Scalars("tune/lr")]
    assert lrs[0] > lrs[-1] > 0  # cosine decay, read at each epoch's start


def test_no_tracking_by_default(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with tracking.cell("toys/x"):
        _fit(1)
    assert not any(tmp_path.iterdir())
