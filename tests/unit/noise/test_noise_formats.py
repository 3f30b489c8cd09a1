"""npz archives and Hugging Face datasets in every local form as noise sources; named columns must exist."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from noise_fixtures import hf_dataset, write_hf, write_npz, write_shards

import nmlbench
from nmlbench.cli import main
from nmlbench.errors import UserError
from nmlbench.noise import NoiseConfig, SourceSpec, apply_noise, read_manifest
from nmlbench.noise.audit import audit
from nmlbench.noise.sources import read_source

SYM = NoiseConfig(kind="symmetric_label", rate=0.25, seed=0)


@pytest.fixture(autouse=True)
def _hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`load_dataset` on local parquet/arrow files converts them into this test's own cache."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")


def _one_line(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_npz_keeps_class_names_and_ids(tmp_path: Path, out_root: Path) -> None:
    f = write_npz(tmp_path / "up" / "train.npz")
    t = read_source(SourceSpec(type="npz", path=str(f)), "label")
    assert t.classes == ("ant", "bee", "cow") and len(t) == 12
    assert t.ids[1].as_py() == "000000001" and t.labels.tolist()[:4] == [0, 1, 2, 0]
    p = apply_noise(SourceSpec(type="npz", path=str(f)), SYM, root=out_root)
    df, meta = read_manifest(p)
    assert meta["n_corrupted"] == 3 and meta["classes"] == ["ant", "bee", "cow"]
    assert p.parent.parent.name == "up-train" and audit(p)["source_check"]["status"] == "ok"
    g = write_npz(tmp_path / "ids.npz", ids=True, classes=False)
    t = read_source(SourceSpec(type="npz", path=str(g)), "label")
    assert t.ids[0].as_py() == "img000" and t.classes == ("0", "1", "2")


def test_npz_string_labels_and_captions(tmp_path: Path) -> None:
    f = write_npz(
        tmp_path / "s.npz",
        classes=False,
        labels=np.array(["cow", "ant", "bee"] * 4),
        captions=np.array([f"c{i}" for i in range(12)]),
    )
    t = read_source(SourceSpec(type="npz", path=str(f)), "label")
    assert t.classes == ("ant", "bee", "cow") and t.labels.tolist()[:3] == [2, 0, 1]
    assert read_source(SourceSpec(type="npz", path=str(f)), "caption").caption_sha256 is not None


@pytest.mark.parametrize(
    "write, message",
    [
        (lambda p: p.write_text("not an archive"), "cannot read npz archive"),
        (
            lambda p: np.save(p.with_suffix(".npy"), np.zeros(3)) or p.with_suffix(".npy").rename(p),
            "one array",
        ),
        (lambda p: np.savez(p, images=np.zeros((2, 4, 4, 3), np.uint8)), "has no labels"),
        (lambda p: np.savez(p, labels=np.array([0, 1]), ids=np.array(["a"])), "arrays differ in length"),
        (lambda p: np.savez(p, labels=np.array([0.5, 1.0])), "labels are floating-point numbers"),
        (lambda p: np.savez(p, labels=np.array([0, 3]), classes=np.array(["a", "b"])), "outside 0..1"),
    ],
)
def test_npz_bad_files(tmp_path: Path, write, message: str) -> None:
    f = tmp_path / "bad.npz"
    write(f)
    with pytest.raises(UserError, match=message):
        read_source(SourceSpec(type="npz", path=str(f)), "label")


@pytest.mark.parametrize("form", ["disk", "parquet", "parquet-dir", "arrow", "arrow-dir"])
def test_hf_every_local_form_keeps_class_names(tmp_path: Path, out_root: Path, form: str) -> None:
    path = write_hf(tmp_path / "hf", form)
    spec = SourceSpec(type="hf", path=str(path))
    t = read_source(spec, "label")
    assert t.classes == ("ant", "bee", "cow") and len(t) == 12 and t.ids[0].as_py() == "000000000"
    p = apply_noise(spec, SYM, root=out_root)
    assert read_manifest(p)[1]["classes"] == ["ant", "bee", "cow"]
    assert audit(p)["source_check"]["status"] == "ok"


def test_hf_parquet_folder_splits(tmp_path: Path) -> None:
    path = write_hf(tmp_path / "hf", "parquet-dir")
    assert len(read_source(SourceSpec(type="hf", path=str(path), split="test"), "label")) == 3
    with pytest.raises(UserError, match=r"no split 'val'; choose one of \['test', 'train'\]"):
        read_source(SourceSpec(type="hf", path=str(path), split="val"), "label")


def test_hf_bad_files(tmp_path: Path) -> None:
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(UserError, match="cannot read HF dataset .*bad.parquet"):
        read_source(SourceSpec(type="hf", path=str(tmp_path / "bad.parquet")), "label")
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(UserError, match="unknown HF dataset file type '.csv'"):
        read_source(SourceSpec(type="hf", path=str(tmp_path / "x.csv")), "label")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="not a save_to_disk folder and has no .parquet or .arrow files"):
        read_source(SourceSpec(type="hf", path=str(tmp_path / "empty")), "label")
    with pytest.raises(UserError, match="does not exist"):
        read_source(SourceSpec(type="hf", path=str(tmp_path / "nope")), "label")


def test_unknown_id_column_is_an_error_not_the_row_index(tmp_path: Path) -> None:
    """Regression: an id column the data lacks used to fall back silently to the row index."""
    path = write_hf(tmp_path / "hf", "disk", with_id=True)
    with pytest.raises(
        UserError, match=r"no id column 'path' \(it has: img, label, caption, key\).*--id-column"
    ):
        read_source(SourceSpec(type="hf", path=str(path), id_column="path"), "label")
    assert (
        read_source(SourceSpec(type="hf", path=str(path), id_column="key"), "label").ids[0].as_py() == "k00"
    )


@pytest.mark.parametrize(
    "spec, message",
    [
        (dict(type="hf", label_column="y"), "no label column 'y' (it has: img, label, caption)"),
        (dict(type="npz", id_column="names"), "no id column 'names' (it has: images, labels, classes)"),
        (dict(type="npz", label_column="y"), "no label column 'y'"),
        (dict(type="wds", label_column="klass"), "has no json label key 'klass' (it has: caption, label)"),
    ],
)
def test_unknown_columns_name_the_available_ones(tmp_path: Path, spec: dict, message: str) -> None:
    path = {
        "hf": lambda: write_hf(tmp_path / "hf", "disk"),
        "npz": lambda: write_npz(tmp_path / "a.npz"),
        "wds": lambda: write_shards(tmp_path / "wds", caption_ext="json"),
    }[spec["type"]]()
    with pytest.raises(UserError) as e:
        read_source(SourceSpec(path=str(path), **spec), "label")
    assert message in str(e.value)


def test_label_table_from_hf_parquet_keeps_class_names(tmp_path: Path) -> None:
    """Regression: `--labels` on a parquet written by `datasets` named the classes '0'..'C-1'."""
    f = tmp_path / "labels.parquet"
    hf_dataset(with_id=True).remove_columns(["img", "caption"]).to_parquet(str(f))
    t = read_source(SourceSpec(type="labels", path=str(f), id_column="key"), "label")
    assert t.classes == ("ant", "bee", "cow")
    pd.DataFrame({"id": ["a", "b"], "label": [0, 1]}).to_parquet(tmp_path / "plain.parquet")
    assert read_source(SourceSpec(type="labels", path=str(tmp_path / "plain.parquet")), "label").classes == (
        "0",
        "1",
    )


def test_cli_npz_and_hf(tmp_path: Path, out_root: Path, capsys: pytest.CaptureFixture) -> None:
    f = write_npz(tmp_path / "up.npz")
    assert main(["noise", "--npz", str(f), "--type", "sym", "--rate", "25%"]) == 0
    assert "3 of 12 samples corrupted" in capsys.readouterr().out
    hf = write_hf(tmp_path / "hf", "parquet")
    assert (
        main(["noise", "--hf", str(hf), "--type", "sym", "--rate", "25%", "--out", str(out_root / "h")]) == 0
    )
    assert read_manifest(out_root / "h")[1]["classes"] == ["ant", "bee", "cow"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--npz", "{tmp}/missing.npz"], "npz archive"),
        (["--npz", "{tmp}/text.npz"], "cannot read npz archive"),
        (["--hf", "{tmp}/text.npz"], "unknown HF dataset file type"),
        (["--hf", "{hf}", "--id-column", "path"], "no id column 'path'"),
        (["--hf", "{hf}", "--label-column", "fine_label"], "no label column 'fine_label'"),
    ],
)
def test_cli_bad_sources_one_line_nothing_written(
    tmp_path: Path, out_root: Path, capsys: pytest.CaptureFixture, argv: list[str], message: str
) -> None:
    (tmp_path / "text.npz").write_text("x")
    hf = write_hf(tmp_path / "hf", "parquet")
    argv = [a.format(tmp=tmp_path, hf=hf) for a in argv]
    assert main(["noise", *argv, "--type", "sym", "--rate", "10%"]) == 2
    assert message in _one_line(capsys)
    assert not (out_root / "noisy").exists()


def test_hub_offline_is_one_line(tmp_path: Path) -> None:
    """`--hf hf-hub:NAME` without a network: one line naming the Hub, exit 2, nothing written."""
    env = dict(
        os.environ,
        HF_HOME=str(tmp_path / "hf-home"),
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        NMLBENCH_ROOT=str(tmp_path / "out"),
        PYTHONPATH=str(Path(nmlbench.__file__).parents[1]),  # the nmlbench this test imported
    )
    code = "import sys; from nmlbench.cli import main; sys.exit(main(sys.argv[1:]))"
    argv = ["noise", "--hf", "hf-hub:nobody/no-such-set", "--type", "sym", "--rate", "10%"]
    r = subprocess.run(
        [sys.executable, "-c", code, *argv],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot load HF Hub dataset 'nobody/no-such-set'" in lines[0], r.stderr
    assert not (tmp_path / "out").exists()


def test_shard_that_is_not_a_tar(tmp_path: Path) -> None:
    (tmp_path / "s-000.tar").write_text("not a tar archive")
    with pytest.raises(UserError, match="cannot read shard .*s-000.tar"):
        read_source(SourceSpec(type="wds", path=str(tmp_path / "s-{000..000}.tar")), "label")
