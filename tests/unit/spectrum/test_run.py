"""Spectrum records: written once per (model, task), resumable, attached to result records, CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from nmlbench.cli import main
from nmlbench.leaderboard.schema import schema_errors
from nmlbench.spectrum import run as srun

sys.path.insert(0, str(Path(__file__).parents[1] / "leaderboard"))
from lb_fakes import Model, make_submission  # noqa: E402


def _fake_features(calls: list):
    def features(model_ref: str, task: str, opts: srun.SpectrumOptions) -> srun.Features:
        calls.append((model_ref, task))
        rng = np.random.default_rng(len(task))
        model = {"name": Model(rate=0.0).name, "arch": "tinynet", "checkpoint_sha256": None, "noise": None}
        return srun.Features(rng.normal(size=(64, 12)), model, {"name": task, "version": 1, "split": "test"})

    return features


def test_records_are_written_once_and_valid(tmp_path: Path) -> None:
    calls: list = []
    opts = srun.SpectrumOptions(centring="column", root=str(tmp_path))
    paths = srun.run_spectrum(["m"], ["fake-a", "fake-b"], opts, features=_fake_features(calls))
    assert [p.name for p in paths] == ["fake-a__column.json", "fake-b__column.json"]
    rec = json.loads(paths[0].read_text())
    assert rec["format"] == "nmlbench-spectrum" and schema_errors(rec["spectrum"], "spectrum") == []
    assert rec["spectrum"]["centring"] == "column"
    before = paths[0].stat().st_mtime_ns
    srun.run_spectrum(["m"], ["fake-a"], opts, features=_fake_features(calls))
    assert paths[0].stat().st_mtime_ns == before  # kept, not rewritten


def test_attach_adds_spectrum_to_matching_result_records(tmp_path: Path) -> None:
    sub = make_submission(tmp_path / "res", methods=("lp", "nmtune"))
    paths = srun.run_spectrum(
        ["m"], ["fake-a"], srun.SpectrumOptions(root=str(tmp_path)), features=_fake_features([])
    )
    updated = srun.attach(paths, sub)
    assert len(updated) == 2 and all("__fake-a__" in p.name for p in updated)
    for p in updated:
        rec = json.loads(p.read_text())
        assert schema_errors(rec, "result") == [] and rec["spectrum"]["centring"] == "row"
    assert srun.attach(paths, sub) == []  # idempotent


def test_cli_on_a_saved_array(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    np.save(tmp_path / "f.npy", np.random.default_rng(0).normal(size=(30, 5)))
    assert (
        main(["spectrum", "--features", str(tmp_path / "f.npy"), "--centring", "column", "--top-k", "1,2"])
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["centring"] == "column" and set(out["top_k_energy"]) == {"1", "2"}
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object))
    assert main(["spectrum", "--features", str(tmp_path / "o.npy")]) == 2  # no unpickling
    assert main(["spectrum", "--features", str(tmp_path / "f.npy"), "--top-k", "x"]) == 2
    assert main(["spectrum"]) == 2
    assert main(["spectrum", "--model", "m"]) == 2


@pytest.mark.slow
def test_real_backbone_on_a_mini_task(tmp_path: Path) -> None:
    """The whole path: load_backbone -> cached eval features -> record (generates the mini data)."""
    opts = srun.SpectrumOptions(root=str(tmp_path), pretrained=False, batch_size=128)
    (path,) = srun.run_spectrum(["tinyresnet"], ["mini-objects"], opts)
    rec = json.loads(path.read_text())
    assert schema_errors(rec["spectrum"], "spectrum") == []
    assert rec["model"]["checkpoint_sha256"] and rec["task"] == {
        "name": "mini-objects",
        "version": 1,
        "split": "test",
    }
    assert rec["spectrum"]["n"] > rec["spectrum"]["d"] > 1
