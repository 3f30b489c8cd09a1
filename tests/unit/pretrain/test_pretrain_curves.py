"""Pretraining curves: TensorBoard event files, steps continuing after a resume, W&B optional."""

from __future__ import annotations

import sys
import types
from pathlib import Path

from fakes import TINY

from nmlbench import tracking
from nmlbench.cli import main
from nmlbench.io import sha256_file

RUN = "tinyresnet.mini_sym0_s0"


def _scalars(logdir: Path, tag: str) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir))
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def test_tensorboard_curves_and_identity_unchanged(tiny_mini, tmp_path):
    assert main(["pretrain", "--out", str(tmp_path / "tb"), *TINY, "--tensorboard"]) == 0
    logdir = tmp_path / "tb" / "tb" / "pretrain" / RUN
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir))
    acc.Reload()
    assert {"train/loss", "train/lr", "train/img_per_s", "train/train_acc", "train/epoch"} <= set(
        acc.Tags()["scalars"]
    )
    assert [s for s, _ in _scalars(logdir, "train/loss")] == [1, 2, 3, 4]
    # Curves change no number and no identity: same checkpoint name, config and weights without them.
    assert main(["pretrain", "--out", str(tmp_path / "plain"), *TINY]) == 0
    a, b = (tmp_path / d / "ckpt" / RUN for d in ("tb", "plain"))
    assert (a / "config.yaml").read_text() == (b / "config.yaml").read_text()
    assert sha256_file(a / "model.safetensors") == sha256_file(b / "model.safetensors")
    assert not (tmp_path / "plain" / "tb").exists()


def test_tensorboard_steps_continue_after_resume(tiny_mini, tmp_path, monkeypatch):
    """Killed after logging step 5 (last checkpoint at 4): the resumed run logs 5..8 once each."""
    from nmlbench.pretrain import train

    opened: list[tracking.Curves] = []
    real_curves, real_step = tracking.Curves, train._step

    def keep(*a, **kw):
        opened.append(real_curves(*a, **kw))
        return opened[-1]

    def die_at_6th(run, images, items, step):
        if step == 5:
            raise KeyboardInterrupt
        return real_step(run, images, items, step)

    monkeypatch.setattr(tracking, "Curves", keep)
    monkeypatch.setattr(train, "_step", die_at_6th)
    args = ["pretrain", "--out", str(tmp_path), *TINY, "--set", "optim.epochs=2",
            "--set", "ckpt_every_steps=2", "--tensorboard"]
    assert main(args) == 130
    opened[0].close()  # what the writer's timer would have put on disk before the kill
    logdir = tmp_path / "tb" / "pretrain" / RUN
    assert [s for s, _ in _scalars(logdir, "train/loss")] == [1, 2, 3, 4, 5]
    monkeypatch.setattr(train, "_step", real_step)
    assert main(args) == 0
    steps = [s for s, _ in _scalars(logdir, "train/loss")]
    assert steps == [1, 2, 3, 4, 5, 6, 7, 8]  # continues at the checkpoint: no restart at 0, no doubled 5
    assert len(list(logdir.glob("events.out.tfevents.*"))) == 2


def test_wandb_asked_for_but_missing(tiny_mini, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb -> ImportError
    assert main(["pretrain", "--out", str(tmp_path), *TINY, "--wandb", "proj"]) == 2
    err = capsys.readouterr().err
    assert "wandb package is not installed" in err and "pip install wandb" in err and err.count("\n") == 1
    assert not any(tmp_path.iterdir())


class FakeRun:
    def __init__(self, **kw) -> None:
        self.init, self.logged, self.finished = kw, [], False

    def log(self, values, step):
        self.logged.append((step, dict(values)))

    def finish(self):
        self.finished = True


def test_fake_wandb_receives_the_curves(tiny_mini, tmp_path, monkeypatch):
    runs: list[FakeRun] = []
    fake = types.ModuleType("wandb")
    fake.init = lambda **kw: runs.append(FakeRun(**kw)) or runs[-1]
    monkeypatch.setitem(sys.modules, "wandb", fake)
    assert main(["pretrain", "--out", str(tmp_path), *TINY, "--wandb", "noisy-pt"]) == 0
    (run,) = runs
    assert run.init["project"] == "noisy-pt" and run.init["name"] == RUN and run.init["group"] == "pretrain"
    assert run.init["config"]["optim"]["batch_size"] == 32
    assert [s for s, _ in run.logged] == [1, 2, 3, 4] and "train/loss" in run.logged[0][1]
    assert run.finished
    assert tracking.ENV_WANDB not in __import__("os").environ  # the CLI restores the environment
