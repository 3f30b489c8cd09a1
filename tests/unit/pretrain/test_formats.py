"""npz archives and HF parquet/arrow data: noised with `nmlbench noise`, then pretrained on; bad sources."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nmlbench.cli import main
from nmlbench.errors import UserError
from nmlbench.pretrain.config import DataConfig
from nmlbench.pretrain.sources import open_source

TINY = ["--set", "optim.epochs=1", "--set", "optim.batch_size=8", "--set", "model=nmlbench_tinyresnet"]


@pytest.fixture(autouse=True)
def _hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")


def _images(n: int, size: int = 32) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (n, size, size, 3), dtype=np.uint8)


def _npz(path: Path, n: int = 16) -> Path:
    np.savez(path, images=_images(n), labels=np.arange(n) % 2, classes=np.array(["cat", "dog"]))
    return path


def _hf_parquet(path: Path, n: int = 16) -> Path:
    """An HF dataset as parquet: PNG images in an `img` column, a ClassLabel, no id column."""
    import datasets

    feats = datasets.Features({"img": datasets.Image(), "label": datasets.ClassLabel(names=["cat", "dog"])})
    pngs = []
    for arr in _images(n):
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="PNG")
        pngs.append({"bytes": buf.getvalue(), "path": None})
    datasets.Dataset.from_dict({"img": pngs, "label": [i % 2 for i in range(n)]}, features=feats).to_parquet(
        str(path)
    )
    return path


def _one_line(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def _noise_then_pretrain(tmp_path: Path, flag: str, source: str, data: Path) -> dict:
    out = tmp_path / "out"
    assert main(["noise", flag, str(data), "--type", "sym", "--rate", "25%", "--out", str(out / "m")]) == 0
    args = ["pretrain", "--noise", "25%", "--out", str(out), *TINY]
    args += ["--set", f"data.source={source}", "--set", f"data.path={data}", "--set", "data.name=own"]
    assert main([*args, "--set", f"data.manifest={out / 'm' / 'manifest.parquet'}"]) == 0
    return json.loads((out / "ckpt" / "nmlbench_tinyresnet.own_sym25_s0" / "checkpoint.json").read_text())


def test_npz_noise_then_pretrain_keeps_class_names(tmp_path: Path) -> None:
    meta = _noise_then_pretrain(tmp_path, "--npz", "npz", _npz(tmp_path / "up.npz"))
    assert meta["classes"] == ["cat", "dog"] and meta["num_samples"] == 16 and meta["image_size"] == 32


def test_hf_parquet_noise_then_pretrain(tmp_path: Path) -> None:
    """Row-number ids (no id column) are the same in the manifest and in pretraining."""
    src = open_source(DataConfig(source="hf", path=str(_hf_parquet(tmp_path / "train.parquet"))))
    assert src.classes == ["cat", "dog"] and src.ids[3] == "000000003" and src.load(0).size == (32, 32)
    meta = _noise_then_pretrain(tmp_path, "--hf", "hf", tmp_path / "train.parquet")
    assert meta["classes"] == ["cat", "dog"] and meta["num_classes"] == 2


def test_npz_reader(tmp_path: Path) -> None:
    src = open_source(DataConfig(source="npz", path=str(_npz(tmp_path / "a.npz"))))
    assert src.num_classes == 2 and src.ids[0] == "000000000" and np.asarray(src.load(1)).shape == (32, 32, 3)
    np.savez(
        tmp_path / "b.npz", images=_images(16), labels=np.arange(16) % 2, classes=np.array(["cat", "dog"])
    )
    other = open_source(DataConfig(source="npz", path=str(tmp_path / "b.npz")))
    assert other.fingerprint == src.fingerprint  # same bytes, same data
    np.savez(tmp_path / "c.npz", images=_images(16)[::-1], labels=np.arange(16) % 2)
    assert open_source(DataConfig(source="npz", path=str(tmp_path / "c.npz"))).fingerprint != src.fingerprint


@pytest.mark.parametrize(
    "sets, message",
    [
        (["data.source=npz", "data.path={tmp}/missing.npz"], "npz archive not found at"),
        (["data.source=npz", "data.path={tmp}/text.npz"], "cannot read npz archive"),
        (["data.source=npz", "data.path={tmp}/a.npz", "data.image_key=pixels"], "no image column 'pixels'"),
        (["data.source=npz", "data.path={tmp}/a.npz", "data.id_key=names"], "no id column 'names'"),
        (["data.source=hf", "data.path={tmp}/t.parquet", "data.id_key=path"], "no id column 'path'"),
        (["data.source=hf", "data.path={tmp}/t.parquet", "data.label_key=y"], "no label column 'y'"),
        (["data.source=hf", "data.path={tmp}/text.npz"], "unknown HF dataset file type"),
        (["data.source=hf", "data.path=hf-hub:nobody/no-such-set"], "cannot load HF Hub dataset"),
    ],
)
def test_bad_sources_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture, sets, message) -> None:
    _npz(tmp_path / "a.npz")
    _hf_parquet(tmp_path / "t.parquet")
    (tmp_path / "text.npz").write_text("not an archive")
    argv = ["pretrain", "--out", str(tmp_path / "out"), *TINY]
    for s in sets:
        argv += ["--set", s.format(tmp=tmp_path)]
    assert main(argv) == 2
    assert message in _one_line(capsys)
    assert not (tmp_path / "out" / "ckpt").exists() or not list((tmp_path / "out" / "ckpt").rglob("*.json"))


def test_unknown_id_key_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"no id column 'path' \(it has: img, label\).*data.id_key"):
        open_source(DataConfig(source="hf", path=str(_hf_parquet(tmp_path / "t.parquet")), id_key="path"))
