"""Bad checkpoints: corrupt, truncated, edited or foreign checkpoint folders given to pretrain --resume,
evaluate --model and spectrum --model are one line and exit 2, and nothing is written."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from nmlbench.cli import main
from nmlbench.io import sha256_file

sys.path.insert(0, str(Path(__file__).parents[1] / "pretrain"))
import fakes  # noqa: E402

NAME = "tinyresnet.mini_sym10_s0"
# 4 steps an epoch, 8 in all; interval checkpoints every 2 steps, the newest 3 kept
PRETRAIN = ["pretrain", "--noise", "10%", *fakes.TINY, "--set", "optim.epochs=2"]
PRETRAIN += ["--set", "ckpt_every_steps=2", "--set", "keep_checkpoints=3"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A finished run and a run stopped after its step-6 checkpoint, each in its own output root."""
    from nmlbench.pretrain import train

    base = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NMLBENCH_DATA", str(base / "data"))
        up = fakes.make_upstream()
        mp.setattr("nmlbench.mini.load_upstream", lambda data_dir=None, seed=0, progress=False: up)
        assert main([*PRETRAIN, "--out", str(base / "finished")]) == 0
        real = train._save_interval

        def stop_at_6(run, step, metrics):
            real(run, step, metrics)
            if step == 6:
                raise KeyboardInterrupt

        mp.setattr(train, "_save_interval", stop_at_6)
        assert main([*PRETRAIN, "--out", str(base / "stopped")]) == 130
    return {"finished": base / "finished", "stopped": base / "stopped"}


@pytest.fixture(autouse=True)
def _fake_upstream(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every case runs on the tiny fake upstream (no download)."""
    up = fakes.make_upstream()
    monkeypatch.setattr("nmlbench.mini.load_upstream", lambda data_dir=None, seed=0, progress=False: up)


def _root() -> Path:
    return Path(os.environ["NMLBENCH_ROOT"])


def _stopped_run(runs: dict[str, Path]) -> Path:
    """The stopped run copied into this case's output root; returns its interval checkpoints' folder."""
    shutil.copytree(runs["stopped"], _root(), dirs_exist_ok=True)
    return _root() / "ckpt" / ".partial" / NAME


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])


def _edit_meta(ckpt: Path, **changes) -> None:
    meta = json.loads((ckpt / "checkpoint.json").read_text())
    meta.update(changes)
    (ckpt / "checkpoint.json").write_text(json.dumps({k: v for k, v in meta.items() if v is not ...}))


def _rehash(ckpt: Path) -> None:
    """Make checkpoint.json's hash match whatever model.safetensors now holds (a forged checkpoint)."""
    _edit_meta(ckpt, weights_sha256=sha256_file(ckpt / "model.safetensors"))


def _foreign_weights(ckpt: Path) -> None:
    """Weights of another model (7 classes, not 4) under a consistent hash."""
    import timm
    from safetensors.torch import save_file

    import nmlbench.models.zoo  # noqa: F401  (registers the tiny models with timm)

    model = timm.create_model("nmlbench_tinyresnet", num_classes=7)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(ckpt / "model.safetensors"))
    _rehash(ckpt)


def _garbage_weights(ckpt: Path) -> None:
    (ckpt / "model.safetensors").write_bytes(b"\x00\x10not a safetensors file" * 50)
    _rehash(ckpt)


# --- pretrain --resume -----------------------------------------------------------------------------

RESUME_CASES: dict[str, tuple[Callable[[Path], None], str, list[str]]] = {
    # name: (damage done to step-00000006, --resume value, words the line must hold)
    "truncated-weights": (
        lambda s: _truncate(s / "model.safetensors"),
        "step",
        ["model.safetensors", "sha256"],
    ),
    "wrong-hash-weights": (lambda s: _flip(s / "model.safetensors"), "step", ["sha256", "--resume"]),
    "meta-not-json": (
        lambda s: (s / "checkpoint.json").write_text('{"format": '),
        "step",
        ["checkpoint.json"],
    ),
    "meta-misses-fields": (lambda s: _edit_meta(s, arch=..., image_size=...), "step", ["arch"]),
    "garbage-train-state": (
        lambda s: (s / "train_state.pt").write_bytes(b"PK\x03\x04junk"),
        "step",
        ["train_state.pt"],
    ),
    "train-state-of-another-step": (
        lambda s: shutil.copy(s.parent / "step-00000004" / "train_state.pt", s / "train_state.pt"),
        "step",
        ["step 4", "step 6"],
    ),
    "another-run-config": (
        lambda s: (s / "config.yaml").write_text(
            (s / "config.yaml").read_text().replace("seed: 0", "seed: 5")
        ),
        "step",
        ["different config", "--resume never"],
    ),
    "another-arch-weights": (_foreign_weights, "step", ["does not fit this run", "--resume never"]),
    "garbage-weights-rehashed": (_garbage_weights, "step", ["model.safetensors", "unreadable"]),
    "not-an-interval": (lambda s: None, "final", ["not an interval checkpoint"]),
    "missing-folder": (lambda s: None, "missing", ["not an interval checkpoint"]),
}


@pytest.mark.parametrize("case", RESUME_CASES)
def test_resume_from_a_bad_interval_checkpoint(case, runs, reject, tmp_path):
    damage, which, words = RESUME_CASES[case]
    work = _stopped_run(runs)
    step = work / "step-00000006"
    damage(step)
    target = {"step": step, "final": runs["finished"] / "ckpt" / NAME, "missing": tmp_path / "nope"}[which]
    reject([*PRETRAIN, "--resume", str(target)], expect=words)


def test_resume_latest_with_every_interval_corrupt(runs, reject):
    work = _stopped_run(runs)
    for step in work.glob("step-*"):
        _flip(step / "model.safetensors")
    reject(PRETRAIN, expect=["no usable interval checkpoint", str(work), "--resume never"])


def test_resume_latest_with_only_incomplete_intervals(runs, reject):
    work = _stopped_run(runs)
    for step in work.glob("step-*"):
        (step / "train_state.pt").unlink()
    reject(PRETRAIN, expect=["no usable interval checkpoint", "train_state.pt", "--resume never"])


def test_a_corrupt_finished_run_is_not_skipped_as_done(runs, reject):
    shutil.copytree(runs["finished"], _root(), dirs_exist_ok=True)
    _flip(_root() / "ckpt" / NAME / "model.safetensors")
    reject(PRETRAIN, expect=["is a finished run", "sha256", "delete"])


# --- evaluate --model / spectrum --model ----------------------------------------------------------

MODEL_CASES: dict[str, tuple[Callable[[Path], None], list[str]]] = {
    "truncated-weights": (lambda c: _truncate(c / "model.safetensors"), ["model.safetensors", "sha256"]),
    "meta-not-json": (lambda c: (c / "checkpoint.json").write_text("{trunc"), ["checkpoint.json", "json"]),
    "meta-a-list": (lambda c: (c / "checkpoint.json").write_text("[1, 2]"), ["not a json object"]),
    "meta-not-utf8": (lambda c: (c / "checkpoint.json").write_bytes(b'{"arch": "\xff\xfe"}'), ["utf-8"]),
    "meta-misses-arch": (lambda c: _edit_meta(c, arch=...), ["arch"]),
    "meta-misses-image-size": (lambda c: _edit_meta(c, image_size=...), ["image_size"]),
    "meta-image-size-text": (lambda c: _edit_meta(c, image_size="big"), ["image_size"]),
    "meta-misses-hash": (lambda c: _edit_meta(c, weights_sha256=...), ["weights_sha256"]),
    "meta-of-another-arch": (lambda c: _edit_meta(c, arch="resnet18"), ["does not describe its weights"]),
    "garbage-weights-rehashed": (_garbage_weights, ["does not describe its weights"]),
    "empty-folder": (lambda c: [p.unlink() for p in c.iterdir()], ["not a nmlbench checkpoint"]),
}
SPECTRUM_CASES = [
    "meta-not-json",
    "meta-misses-image-size",
    "meta-of-another-arch",
    "garbage-weights-rehashed",
]


def _bad_model(runs: dict[str, Path], tmp_path: Path, case: str) -> Path:
    ckpt = tmp_path / "ck" / NAME
    shutil.copytree(runs["finished"] / "ckpt" / NAME, ckpt)
    MODEL_CASES[case][0](ckpt)
    return ckpt


@pytest.mark.parametrize("case", MODEL_CASES)
def test_evaluate_a_bad_checkpoint(case, runs, reject, tmp_path):
    ckpt = _bad_model(runs, tmp_path, case)
    argv = ["evaluate", "--model", str(ckpt), "--method", "lp", "--task", "mini-objects"]
    reject(argv, expect=MODEL_CASES[case][1], watch=[tmp_path / "ck"])


@pytest.mark.parametrize("case", SPECTRUM_CASES)
def test_spectrum_a_bad_checkpoint(case, runs, reject, tmp_path):
    ckpt = _bad_model(runs, tmp_path, case)
    argv = ["spectrum", "--model", str(ckpt), "--task", "mini-objects"]
    reject(argv, expect=MODEL_CASES[case][1], watch=[tmp_path / "ck"])


def test_evaluate_a_weights_file_instead_of_its_folder(runs, reject):
    weights = runs["finished"] / "ckpt" / NAME / "model.safetensors"
    reject(
        ["evaluate", "--model", str(weights), "--method", "lp", "--task", "mini-objects"],
        expect=["no checkpoint directory", "nmlbench pretrain"],
        watch=[weights.parent],
    )
