"""`image_size`: a 32 px dataset trains at 32 px whatever the model's own size, and evaluation uses it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from fakes import TINY
from PIL import Image

import nmlbench.pretrain.train as train_mod
from nmlbench.cli import main
from nmlbench.models.load import load_backbone


@pytest.fixture
def batch_sizes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, ...]]:
    """The (B, C, H, W) of every training batch."""
    seen: list[tuple[int, ...]] = []
    step = train_mod._step

    def recording(run, images, items, n):
        seen.append(tuple(images.shape))
        return step(run, images, items, n)

    monkeypatch.setattr(train_mod, "_step", recording)
    return seen


def _npz(path: Path, n: int = 16) -> Path:
    images = np.random.default_rng(0).integers(0, 255, (n, 32, 32, 3), dtype=np.uint8)
    np.savez(path, images=images, labels=np.arange(n) % 2)
    return path


def _pretrain(tmp_path: Path, model: str, size: int | None) -> Path:
    data = _npz(tmp_path / "up32.npz")
    argv = ["pretrain", "--out", str(tmp_path / "out"), "--model", model, "--set", "optim.batch_size=8"]
    argv += ["--set", "optim.epochs=1", "--set", "data.source=npz", "--set", f"data.path={data}"]
    argv += ["--set", "data.name=up32"] + (["--set", f"image_size={size}"] if size else [])
    assert main(argv) == 0
    return next((tmp_path / "out" / "ckpt").glob("*.up32_clean_s0"))


def test_vit_native_160_trains_and_evaluates_at_32(tmp_path: Path, batch_sizes) -> None:
    """timm's test_vit is built for 160 px: image_size=32 gives it img_size=32 and 32 px crops."""
    ckpt = _pretrain(tmp_path, "test_vit", 32)
    assert batch_sizes and all(s[-2:] == (32, 32) for s in batch_sizes)
    meta = json.loads((ckpt / "checkpoint.json").read_text())
    assert meta["image_size"] == 32 and meta["model_kwargs"]["img_size"] == 32
    bb = load_backbone(ckpt)
    assert bb.image_size == 32
    x = bb.eval_transform()(Image.new("RGB", (32, 32)))
    assert tuple(x.shape) == (3, 32, 32) and bb.features(x[None]).shape[0] == 1


def test_default_is_the_models_own_size(tmp_path: Path, batch_sizes) -> None:
    ckpt = _pretrain(tmp_path, "test_vit", None)
    assert all(s[-2:] == (160, 160) for s in batch_sizes)
    meta = json.loads((ckpt / "checkpoint.json").read_text())
    assert meta["image_size"] == 160 and "img_size" not in meta["model_kwargs"]


def test_cnn_takes_any_size_without_img_size(tmp_path: Path, batch_sizes) -> None:
    ckpt = _pretrain(tmp_path, "tinyresnet", 16)
    assert all(s[-2:] == (16, 16) for s in batch_sizes)
    meta = json.loads((ckpt / "checkpoint.json").read_text())
    assert meta["image_size"] == 16 and "img_size" not in meta["model_kwargs"]
    assert load_backbone(ckpt).image_size == 16


def test_clip_image_size(tiny_mini, tmp_path: Path, batch_sizes) -> None:
    out = tmp_path / "out"
    argv = ["pretrain", "--preset", "mini-clip", "--out", str(out), *TINY, "--set", "image_size=16"]
    assert main(argv) == 0
    assert all(s[-2:] == (16, 16) for s in batch_sizes)
    ckpt = next((out / "ckpt").glob("tinyclip.*"))
    assert json.loads((ckpt / "checkpoint.json").read_text())["image_size"] == 16
    bb = load_backbone(ckpt)
    assert bb.image_size == 16 and bb.features(torch.zeros(2, 3, 16, 16)).shape[0] == 2


def test_bad_image_size_one_line(tiny_mini, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["pretrain", "--out", str(tmp_path), *TINY, "--set", "image_size=0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "image_size: 0 is out of range; give a value >= 1" in err
