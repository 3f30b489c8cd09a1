"""A detector fit killed mid-way and run again resumes from its last saved state and ends bit-identical
to an uninterrupted fit; another fit's state is ignored; the save interval is not part of the result key."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest
import torch
from cocotask import write_task
from test_model import SMALL, make_split

import nmlbench.dense.tuners as tuners
from nmlbench.cli import main
from nmlbench.config import dump_config
from nmlbench.eval.config import load_eval_config, method_config_dict
from nmlbench.eval.run import config_key
from nmlbench.models.load import load_backbone
from nmlbench.results.io import read_record
from nmlbench.tuning.base import TUNERS

STEPS, EVERY, KILL_AT = 6, 2, 5  # killed while drawing step 5's batch: the step-4 state is on disk


class Killed(Exception):
    """What the stand-in for kill -9 raises: nothing in the fit handles it."""


@pytest.fixture(scope="module")
def backbone():
    return load_backbone("tinyresnet", pretrained=False, seed=0)


def _count_batches(monkeypatch: pytest.MonkeyPatch, kill_at: int | None = None) -> list[int]:
    """Count the batches the fit draws; with `kill_at`, die while drawing that one."""
    drawn: list[int] = []
    real = tuners.TrainBatches.__call__

    def counted(self, idx, gen):
        drawn.append(len(drawn) + 1)
        if len(drawn) == kill_at:
            raise Killed
        return real(self, idx, gen)

    monkeypatch.setattr(tuners.TrainBatches, "__call__", counted)
    return drawn


def _fit(method: str, backbone, masks: bool, seed: int = 0, state: Path | None = None, **changes):
    tuner = TUNERS.get(method)
    cfg = tuner.Config(**dict(dataclasses.asdict(SMALL), steps=STEPS, checkpoint_every=EVERY, **changes))
    data = tuners.DenseData(backbone, make_split(6, masks), num_classes=2, masks=masks, state_path=state)
    return tuner(cfg).fit(data, seed)


def _weights(fitted) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in fitted.detector.state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("method,masks", [("det-frozen", False), ("det-ft", True)])
def test_killed_fit_resumes_bit_identical(method, masks, backbone, tmp_path, monkeypatch) -> None:
    whole = _fit(method, backbone, masks)
    test = make_split(4, masks, seed=3)
    state = tmp_path / "work" / "dense" / "cell.pt"
    drawn = _count_batches(monkeypatch, kill_at=KILL_AT)
    with pytest.raises(Killed):
        _fit(method, backbone, masks, state=state)
    assert torch.load(state, weights_only=True)["step"] == 4
    drawn = _count_batches(monkeypatch)
    resumed = _fit(method, backbone, masks, state=state)
    assert len(drawn) == STEPS - 4  # it went on from step 4, not from 0
    assert _same(_weights(resumed), _weights(whole))
    assert resumed.predict(test) == whole.predict(test)


def test_another_seeds_state_is_ignored(backbone, tmp_path, monkeypatch, caplog) -> None:
    state = tmp_path / "cell.pt"
    _count_batches(monkeypatch, kill_at=3)
    with pytest.raises(Killed):
        _fit("det-frozen", backbone, False, seed=1, state=state)  # leaves seed 1's step-2 state
    drawn = _count_batches(monkeypatch)
    with caplog.at_level(logging.WARNING):
        other = _fit("det-frozen", backbone, False, seed=0, state=state)
    assert len(drawn) == STEPS and "another fit saved it" in caplog.text
    monkeypatch.undo()
    assert _same(_weights(other), _weights(_fit("det-frozen", backbone, False, seed=0)))


def test_save_interval_leaves_the_key() -> None:
    base = load_eval_config("mini-dense")
    moved = load_eval_config(
        "mini-dense", overrides=["det_frozen.checkpoint_every=7"]
    )
    tuner = TUNERS.get("det-frozen")(base.det_frozen)
    assert config_key(moved, tuner) == config_key(base, tuner)
    assert config_key(load_eval_config("mini-dense", overrides=["det_frozen.steps=7"]), tuner) != config_key(
        base, tuner
    )
    section = method_config_dict(base, "det_frozen", "dense")["det_frozen"]
    assert "checkpoint_every" not in section and "steps" in section
    assert "checkpoint_every: 7" in dump_config(moved)  # the resolved settings still show it


def test_killed_evaluate_rerun_resumes_and_records_the_same(tmp_path, monkeypatch) -> None:
    task = write_task(tmp_path / "data", n_train=4, n_test=2)
    fast = [f"det_frozen.{k}" for k in ("steps=3", "batch_size=2", "min_size=64", "max_size=64",
                                        "fpn_channels=16", "warmup_steps=1", "checkpoint_every=1")]
    argv = ["evaluate", "--model", "tinyresnet", "--method", "det-frozen", "--task", str(task),
            "--set", "pretrained=false", *(a for s in fast for a in ("--set", s))]

    def records(root: Path) -> list[dict]:
        return [read_record(p) for p in sorted((root / "results" / "custom").glob("*.json"))]

    assert main([*argv, "--root", str(tmp_path / "whole")]) == 0
    _count_batches(monkeypatch, kill_at=3)
    with pytest.raises(Killed):
        main([*argv, "--root", str(tmp_path / "killed")])
    assert [p.name for p in (tmp_path / "killed" / "work" / "dense").glob("*.pt")]
    drawn = _count_batches(monkeypatch)
    assert main([*argv, "--root", str(tmp_path / "killed")]) == 0
    assert len(drawn) == 1  # steps 1 and 2 were saved; only step 3 ran again
    assert not list((tmp_path / "killed" / "work" / "dense").glob("*.pt"))  # recorded: the state is gone
    (whole,), (again,) = records(tmp_path / "whole"), records(tmp_path / "killed")
    assert again["predictions"]["sha256"] == whole["predictions"]["sha256"]
    assert again["metrics"] == whole["metrics"] and again["method"] == whole["method"]
