"""A recipe that would corrupt nothing is refused in one line naming the recipe and why."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nmlbench.cli import main


@pytest.fixture
def labels_csv(tmp_path: Path) -> Path:
    f = tmp_path / "labels.csv"
    pd.DataFrame({"id": [f"x{i:03d}" for i in range(40)], "label": np.arange(40) % 4}).to_csv(f, index=False)
    return f


def _refused(argv: list[str], out: Path, capsys: pytest.CaptureFixture) -> str:
    assert main(["noise", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and not out.exists(), err  # one line, nothing written
    return err


def test_empty_eligible_sets_are_refused(
    labels_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    singletons = tmp_path / "groups.yaml"
    singletons.write_text("a: ['0']\nb: ['1']\nc: ['2']\nd: ['3']\n")  # every group of size one
    src = ["--labels", str(labels_csv)]
    err = _refused(
        [*src, "--type", "asym", "--asym", "group", "--groups", str(singletons), "--rate", "10%"],
        tmp_path / "g",
        capsys,
    )
    assert "noise recipe 'group10-" in err and "no sample is eligible" in err and "alone in its group" in err
    labels = tmp_path / "labels3.csv"  # class 3 exists but has no samples
    pd.DataFrame({"id": [f"y{i}" for i in range(30)], "label": np.arange(30) % 3}).to_csv(labels, index=False)
    err = _refused(
        ["--labels", str(labels), "--num-classes", "4", "--type", "asym", "--asym", "subset"]
        + ["--classes", "3", "--rate", "20%"],
        tmp_path / "s",
        capsys,
    )
    assert "noise recipe 'subset20-" in err and "no sample has a class in the subset [3]" in err
    zero = tmp_path / "conf.csv"
    np.savetxt(zero, np.eye(4), delimiter=",")  # no confusions at all
    err = _refused(
        [*src, "--type", "asym", "--asym", "confusion", "--confusion", str(zero), "--rate", "10%"],
        tmp_path / "c",
        capsys,
    )
    assert "noise recipe 'confusion10-" in err and "off-diagonal" in err


def test_a_rate_that_rounds_to_no_sample_is_refused(
    labels_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    err = _refused(["--labels", str(labels_csv), "--type", "sym", "--rate", "1%"], tmp_path / "r", capsys)
    assert "noise recipe 'sym1'" in err and "rounds to 0 corrupted samples" in err
    assert (
        main(
            [
                "noise",
                "--labels",
                str(labels_csv),
                "--type",
                "sym",
                "--rate",
                "0",
                "--out",
                str(tmp_path / "z"),
            ]
        )
        == 0
    )
