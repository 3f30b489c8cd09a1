"""`noise audit` and pretraining re-derive a manifest instead of trusting its sidecar.

A manifest is forged consistently (labels swapped, hash and counts recomputed): only re-deriving
its rows from source + recipe + seed can tell, and both the audit and pretraining must.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nmlbench.cli import main
from nmlbench.errors import UserError
from nmlbench.io import sha256_file
from nmlbench.noise.audit import audit
from nmlbench.noise.manifest import summarize, write_parquet

TINY = ["--set", "optim.epochs=1", "--set", "optim.batch_size=8", "--set", "model=nmlbench_tinyresnet"]


@pytest.fixture
def made(tmp_path: Path) -> Path:
    """A 10 % symmetric manifest of a 40-sample npz (three classes), at tmp_path/m."""
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "src.npz",
        images=rng.integers(0, 255, (40, 8, 8, 3), dtype=np.uint8),
        labels=np.arange(40) % 3,
        classes=np.array(["ant", "bee", "cow"]),
    )
    argv = ["noise", "--npz", str(tmp_path / "src.npz"), "--type", "sym", "--rate", "10%"]
    assert main([*argv, "--out", str(tmp_path / "m")]) == 0
    return tmp_path / "m"


def _sidecar(d: Path) -> dict:
    return json.loads((d / "manifest.json").read_text())


def _forge(d: Path) -> None:
    """Swap the noisy labels of a flipped and a clean sample, then make every file agree again."""
    df = pq.read_table(d / "manifest.parquet").to_pandas()
    i, j = int(np.flatnonzero(df["corrupted"])[0]), int(np.flatnonzero(~df["corrupted"])[0])
    df.loc[[i, j], "noisy_label"] = df.loc[[j, i], "noisy_label"].to_numpy()
    df["corrupted"] = df["noisy_label"] != df["clean_label"]
    tbl = pa.Table.from_pandas(df, preserve_index=False)
    write_parquet(tbl, d / "manifest.parquet")
    meta = _sidecar(d)
    meta.update(summarize(tbl, meta["classes"]), manifest_sha256=sha256_file(d / "manifest.parquet"))
    (d / "manifest.json").write_text(json.dumps(meta))


def test_consistent_forgery_fails_the_audit_with_and_without_the_source(made: Path) -> None:
    assert audit(made)["rows_check"] == {"status": "ok", "n_rows": 40, "from": "source"}
    _forge(made)
    for check in (True, False):
        with pytest.raises(
            UserError, match=r"not what recipe 'sym10'.*row \d+ \(sample '\d+'\): noisy_label"
        ):
            audit(made, check=check)


@pytest.mark.parametrize(
    "edit, words",
    [
        ({"nominal_rate": 0.3}, "30%"),
        ({"recipe": "sym30"}, "'sym30'"),
        ({"seed": 7}, "seed 7"),
        ({"nominal_rate": 0.3, "recipe": "sym30"}, "not what recipe 'sym30'"),
        ({"nominal_rate": 0.3, "recipe": "mine"}, "not what recipe 'mine'"),
        ({"params": {"include_true_class": True}}, "which has params {'include_true_class': False}"),
    ],
)
def test_sidecar_edits_fail_the_audit(made: Path, edit: dict, words: str, capsys) -> None:
    (made / "manifest.json").write_text(json.dumps({**_sidecar(made), **edit}))
    assert main(["noise", "audit", str(made)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err, err


def test_audit_without_its_source_says_how_and_no_check_still_rederives(made: Path, tmp_path: Path) -> None:
    (tmp_path / "src.npz").rename(tmp_path / "moved.npz")
    with pytest.raises(UserError, match="cannot re-derive.*--no-check"):
        audit(made)
    assert audit(made, check=False)["rows_check"]["from"] == "manifest"
    from nmlbench.noise.sources import SourceSpec

    assert (
        audit(made, source=SourceSpec(type="npz", path=str(tmp_path / "moved.npz")))["source_check"]["status"]
        == "ok"
    )


def _pretrain(tmp_path: Path, made: Path, rate: str) -> list[str]:
    return [
        "pretrain",
        "--noise",
        rate,
        "--out",
        str(tmp_path / "out"),
        *TINY,
        "--set",
        "data.source=npz",
        "--set",
        f"data.path={tmp_path / 'src.npz'}",
        "--set",
        "data.name=own",
        "--set",
        f"data.manifest={made / 'manifest.parquet'}",
    ]


@pytest.mark.parametrize(
    "tamper, rate, words",
    [
        ("hash", "10%", "does not match the sha256 in its sidecar"),
        ("forge", "10%", "not what recipe 'sym10'"),
        ("rate", "30%", "not what recipe 'sym30'"),
        ("rate-only", "10%", "is for noise 30%"),
    ],
)
def test_pretrain_refuses_a_manifest_that_is_not_what_it_says(
    made: Path, tmp_path: Path, capsys, tamper: str, rate: str, words: str
) -> None:
    if tamper == "hash":
        (made / "manifest.parquet").write_bytes((made / "manifest.parquet").read_bytes() + b"\0")
    elif tamper == "forge":
        _forge(made)
    else:
        extra = {"recipe": "sym30"} if tamper == "rate" else {}
        (made / "manifest.json").write_text(json.dumps({**_sidecar(made), "nominal_rate": 0.3, **extra}))
    capsys.readouterr()
    assert main(_pretrain(tmp_path, made, rate)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err, err
    assert not list((tmp_path / "out").glob("ckpt/*.own_*"))


def test_noise_never_reuses_a_forged_manifest(made: Path, tmp_path: Path) -> None:
    _forge(made)
    argv = ["noise", "--npz", str(tmp_path / "src.npz"), "--type", "sym", "--rate", "10%", "--out", str(made)]
    assert main(argv) == 2
    assert main([*argv, "--overwrite"]) == 0 and audit(made)["rows_check"]["status"] == "ok"


def test_every_recipe_kind_rederives(tmp_path: Path, made: Path) -> None:
    """Captions (both modes), reference symmetric, pairflip and group manifests all audit clean."""
    np.savez(
        tmp_path / "cap.npz", labels=np.arange(30) % 3, captions=np.array([f"c {i % 7}" for i in range(30)])
    )
    (tmp_path / "g.yaml").write_text("a: [ant, bee]\nb: [cow]\n")
    runs = {
        "cap": ["--npz", str(tmp_path / "cap.npz"), "--type", "caption", "--rate", "20%"],
        "swap": ["--npz", str(tmp_path / "cap.npz"), "--recipe", "capswap10"],
        "ref": ["--npz", str(tmp_path / "src.npz"), "--recipe", "sym10-ref"],
        "pair": ["--npz", str(tmp_path / "src.npz"), "--type", "asym", "--rate", "20%"],
        "group": [
            "--npz",
            str(tmp_path / "src.npz"),
            "--type",
            "asym",
            "--asym",
            "group",
            "--groups",
            str(tmp_path / "g.yaml"),
            "--rate",
            "20%",
        ],
    }
    for name, argv in runs.items():
        assert main(["noise", *argv, "--out", str(tmp_path / name)]) == 0
        assert audit(tmp_path / name)["rows_check"]["status"] == "ok", name
    (tmp_path / "g.yaml").write_text("a: [ant]\nb: [bee, cow]\n")
    with pytest.raises(UserError, match="groups_sha256"):
        audit(tmp_path / "group")


def test_a_free_recipe_name_is_not_read_as_a_rate(made: Path) -> None:
    """'cifar10' names a recipe, it does not claim 10 % noise; 'pairflip10' does."""
    (made / "manifest.json").write_text(json.dumps({**_sidecar(made), "recipe": "cifar10"}))
    assert audit(made)["recipe"] == "cifar10"
    (made / "manifest.json").write_text(json.dumps({**_sidecar(made), "recipe": "pairflip10"}))
    with pytest.raises(UserError, match="named 'pairflip10', but its recipe .* is named 'sym10'"):
        audit(made)
