"""`nmlbench noise` and `nmlbench noise audit` through `nmlbench.cli.main`: outputs, exports, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from noise_fixtures import write_shards

from nmlbench.cli import main
from nmlbench.noise import read_manifest


@pytest.fixture
def labels_csv(tmp_path: Path) -> Path:
    f = tmp_path / "data" / "labels.csv"
    f.parent.mkdir()
    pd.DataFrame({"id": [f"x{i:03d}" for i in range(100)], "label": np.arange(100) % 4}).to_csv(
        f, index=False
    )
    return f


def nothing_written(out: Path) -> bool:
    return not (out / "noisy").exists() or not any((out / "noisy").rglob("manifest.*"))


def test_apply_and_audit(labels_csv: Path, out_root: Path, capsys: pytest.CaptureFixture) -> None:
    assert (
        main(
            [
                "noise",
                "--labels",
                str(labels_csv),
                "--type",
                "sym",
                "--rate",
                "10%",
                "--seed",
                "2",
                "--out",
                str(out_root / "m"),
            ]
        )
        == 0
    )
    assert "10 of 100 samples corrupted" in capsys.readouterr().out
    manifest = out_root / "m" / "manifest.parquet"
    assert main(["noise", "audit", str(manifest)]) == 0
    text = capsys.readouterr().out
    assert "realized 10.0000%" in text and "source    ok (100 samples match)" in text
    assert main(["noise", "audit", str(manifest), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["n_corrupted"] == 10 and rep["seed"] == 2 and rep["source_check"]["status"] == "ok"
    assert sum(t["count"] for t in rep["top_transitions"]) <= 10 and rep["top_classes"]


def test_rate_forms_agree(labels_csv: Path, out_root: Path) -> None:
    paths = []
    for i, rate in enumerate(["20%", "20", "0.2"]):
        assert (
            main(
                [
                    "noise",
                    "--labels",
                    str(labels_csv),
                    "--type",
                    "asym",
                    "--rate",
                    rate,
                    "--out",
                    str(out_root / str(i)),
                ]
            )
            == 0
        )
        paths.append(out_root / str(i) / "manifest.parquet")
    assert paths[0].read_bytes() == paths[1].read_bytes() == paths[2].read_bytes()


def test_recipe_set_and_export_labels(labels_csv: Path, out_root: Path, tmp_path: Path) -> None:
    export = tmp_path / "noisy.csv"
    assert (
        main(
            [
                "noise",
                "--labels",
                str(labels_csv),
                "--recipe",
                "sym10-ref",
                "--seed",
                "4",
                "--export-labels",
                str(export),
            ]
        )
        == 0
    )
    manifest = out_root / "noisy" / "labels" / "sym10-ref-s4" / "manifest.parquet"
    df, meta = read_manifest(manifest)
    assert meta["params"] == {"include_true_class": True} and meta["recipe"] == "sym10-ref"
    exported = pd.read_csv(export)
    assert exported.columns.tolist() == ["sample_id", "label", "class", "clean_label"]
    assert exported["label"].tolist() == df["noisy_label"].tolist()
    assert (
        main(
            [
                "noise",
                "--labels",
                str(labels_csv),
                "--type",
                "sym",
                "--rate",
                "10%",
                "--set",
                "params.include_true_class=true",
                "--json",
            ]
        )
        == 0
    )


def test_group_and_subset_from_cli(labels_csv: Path, out_root: Path, tmp_path: Path) -> None:
    groups = tmp_path / "groups.yaml"
    groups.write_text("even: ['0', '2']\nodd: ['1', '3']\n")
    assert (
        main(
            [
                "noise",
                "--labels",
                str(labels_csv),
                "--type",
                "asym",
                "--asym",
                "group",
                "--groups",
                str(groups),
                "--rate",
                "50%",
                "--out",
                str(out_root / "g"),
            ]
        )
        == 0
    )
    df, _ = read_manifest(out_root / "g")
    assert df["corrupted"].sum() == 50 and ((df["noisy_label"] - df["clean_label"]) % 2 == 0).all()
    assert (
        main(
            [
                "noise",
                "--labels",
                str(labels_csv),
                "--type",
                "asym",
                "--asym",
                "subset",
                "--classes",
                "1,3",
                "--rate",
                "40%",
                "--out",
                str(out_root / "s"),
            ]
        )
        == 0
    )
    df, _ = read_manifest(out_root / "s")
    assert df["corrupted"].sum() == 20 and df.loc[df["corrupted"], "clean_label"].isin([1, 3]).all()


def test_export_wds_rewrites_captions(tmp_path: Path, out_root: Path) -> None:
    import webdataset as wds

    pattern = write_shards(tmp_path / "cc", n_shards=2, per_shard=5)
    assert (
        main(
            [
                "noise",
                "--wds",
                pattern,
                "--type",
                "caption",
                "--rate",
                "40%",
                "--export-wds",
                str(tmp_path / "noisy"),
            ]
        )
        == 0
    )
    df, _ = read_manifest(out_root / "noisy" / "cc" / "cap40-s0")
    donors = dict(zip(df["sample_id"], df["donor_id"], strict=True))
    out = list(wds.WebDataset(str(tmp_path / "noisy" / "shards-{000000..000001}.tar"), shardshuffle=False))
    assert len(out) == 10
    for s in out:
        assert s["txt"].decode() == f"a photo of thing number {int(donors[s['__key__']])}"
        assert s["cls"].decode() == str(int(s["__key__"]) % 3)


BAD = [
    (["--rate", "110%"], "outside [0, 1)"),
    (["--rate", "abc"], "cannot read noise rate 'abc'"),
    (["--rate=-5%"], "outside [0, 1)"),
    (["--rate", "10%", "--groups", "g.yaml"], "--groups does not apply to symmetric_label"),
    (["--rate", "10%", "--set", "params.include_true_clas=1"], "did you mean 'include_true_class'"),
]


@pytest.mark.parametrize("extra,message", BAD)
def test_bad_noise_flags(
    labels_csv: Path, out_root: Path, capsys: pytest.CaptureFixture, extra: list[str], message: str
) -> None:
    assert main(["noise", "--labels", str(labels_csv), "--type", "sym", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and nothing_written(out_root)


def test_bad_inputs_exit_2_and_write_nothing(
    tmp_path: Path, out_root: Path, labels_csv: Path, capsys: pytest.CaptureFixture
) -> None:
    bad_groups = tmp_path / "g.yaml"
    bad_groups.write_text("a: ['0', '1']\nb: ['2']\n")
    bad_conf = tmp_path / "c.csv"
    np.savetxt(bad_conf, np.ones((3, 3)), delimiter=",")
    out_of_range = tmp_path / "oor.csv"
    out_of_range.write_text("id,label\na,0\nb,9\n")
    dup = tmp_path / "dup.csv"
    dup.write_text("id,label\na,0\na,1\n")
    empty = tmp_path / "empty.csv"
    empty.write_text("id,label\n")
    recipe = tmp_path / "typo.yaml"
    recipe.write_text("kind: symetric_label\nrate: 10%\n")
    cases = [
        (["--dataset", "imagenet", "--type", "sym", "--rate", "10%"], "unknown dataset 'imagenet'"),
        (["--labels", str(tmp_path / "missing.csv"), "--type", "sym", "--rate", "10%"], "does not exist"),
        (["--imagefolder", str(tmp_path / "nodir"), "--type", "sym", "--rate", "10%"], "does not exist"),
        (["--wds", str(tmp_path / "s-{0..1}.tar"), "--type", "caption", "--rate", "10%"], "does not exist"),
        (["--hf", str(tmp_path / "nohf"), "--type", "sym", "--rate", "10%"], "does not exist"),
        (
            ["--labels", str(out_of_range), "--num-classes", "3", "--type", "sym", "--rate", "10%"],
            "outside 0..2",
        ),
        (["--labels", str(dup), "--type", "sym", "--rate", "10%"], "duplicate sample id"),
        (["--labels", str(empty), "--type", "sym", "--rate", "10%"], "no samples"),
        (
            [
                "--labels",
                str(labels_csv),
                "--type",
                "asym",
                "--asym",
                "group",
                "--groups",
                str(bad_groups),
                "--rate",
                "10%",
            ],
            "covers 3 of 4 classes",
        ),
        (
            [
                "--labels",
                str(labels_csv),
                "--type",
                "asym",
                "--asym",
                "confusion",
                "--confusion",
                str(bad_conf),
                "--rate",
                "10%",
            ],
            "has shape (3, 3) but the source has 4 classes",
        ),
        (["--labels", str(labels_csv), "--recipe", "sym100"], "unknown noise recipe 'sym100'; did you mean"),
        (["--labels", str(labels_csv), "--recipe", str(recipe)], "did you mean 'symmetric_label'"),
        (
            ["--labels", str(labels_csv), "--recipe", "sym10", "--rate", "5%"],
            "--recipe sets the kind and rate",
        ),
        (["--labels", str(labels_csv), "--type", "sym"], "--type sym|asym|caption and --rate"),
        (["--type", "sym", "--rate", "10%"], "name the data"),
    ]
    for argv, message in cases:
        assert main(["noise", *argv]) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (argv, err)
    assert nothing_written(out_root)


def test_unknown_type_is_an_argparse_error_on_one_line(capsys: pytest.CaptureFixture) -> None:
    assert main(["noise", "--dataset", "mini", "--type", "symm", "--rate", "10%"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'symm'" in err and "nmlbench noise --help" in err and err.count("\n") == 1


def test_audit_failures(labels_csv: Path, out_root: Path, capsys: pytest.CaptureFixture) -> None:
    assert (
        main(["noise", "--labels", str(labels_csv), "--type", "sym", "--rate", "10%", "--out", str(out_root)])
        == 0
    )
    manifest = out_root / "manifest.parquet"
    pd.DataFrame({"id": [f"x{i:03d}" for i in range(100)], "label": (np.arange(100) + 1) % 4}).to_csv(
        labels_csv, index=False
    )
    capsys.readouterr()
    assert main(["noise", "audit", str(manifest)]) == 2
    assert "100 clean labels differ" in capsys.readouterr().err
    assert main(["noise", "audit", str(manifest), "--no-check"]) == 0
    manifest.write_bytes(manifest.read_bytes() + b"\0")
    capsys.readouterr()
    assert main(["noise", "audit", str(manifest), "--no-check"]) == 2
    assert "does not match the sha256" in capsys.readouterr().err
    assert main(["noise", "audit", str(out_root / "nothing.parquet")]) == 2


def test_help_has_examples(capsys: pytest.CaptureFixture) -> None:
    for argv in (["noise", "--help"], ["noise", "audit", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        assert "example" in capsys.readouterr().out
