"""`nmlbench evaluate --tensorboard`: one curve run per cell, and the same result keys as without."""

from __future__ import annotations

from pathlib import Path

from fake_tasks import FAST

from nmlbench.cli import main


def _argv(root: Path, *extra: str) -> list[str]:
    return ["evaluate", "--model", "tinyresnet", "--method", "lp", "--suite", "toys", "--seeds", "0,1",
            "--root", str(root), "--preset", "reference", *[a for s in FAST for a in ("--set", s)], *extra]


def test_evaluate_tensorboard_per_cell_same_keys(fake_tasks, tmp_path: Path) -> None:
    assert main(_argv(tmp_path / "a", "--tensorboard", str(tmp_path / "curves"))) == 0
    runs = sorted(p.name for p in (tmp_path / "curves" / "tune" / "toys").iterdir())
    assert len(runs) == 2 and all("__lp__toy-" in r for r in runs)  # one per (model, method, task, seed)
    assert main(_argv(tmp_path / "b")) == 0
    a, b = (sorted(p.name for p in (tmp_path / d / "results" / "toys").glob("*.json")) for d in "ab")
    assert a == b and len(a) == 4  # tracking is not part of a result's key
    assert {f"{r}.json" for r in runs} <= set(a)  # named after the cell's ID record


def test_evaluate_wandb_missing_is_one_line(fake_tasks, tmp_path: Path, monkeypatch, capsys) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb -> ImportError
    assert main(_argv(tmp_path, "--wandb", "p")) == 2
    err = capsys.readouterr().err
    assert "pip install wandb" in err and err.count("\n") == 1
    assert not tmp_path.exists() or not any(tmp_path.iterdir())
