"""Validate everything, then write: input refused at any point of a verb leaves no file behind.

Each case here was once refused only after something was written: a manifest made from a rate read
two ways, a manifest left behind by an export refused afterwards, an evaluation's config file written
before its first record.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from nmlbench.errors import UserError

NOISE = ["noise", "--dataset", "mini", "--type", "sym"]

# (id, argv with {T} = a fresh folder, expected words)
CASES = [
    # One rate parser on every path: a bare 1 is ambiguous (1 % or 100 %?) wherever it is written.
    ("noise-rate-1.0", [*NOISE, "--rate", "1.0"], ["ambiguous", "1%"]),
    ("noise-rate-1", [*NOISE, "--rate", "1"], ["ambiguous", "1%"]),
    ("noise-recipe-set-rate-1.0", ["noise", "--dataset", "mini", "--recipe", "sym10", "--set", "rate=1.0"],
     ["ambiguous"]),
    ("noise-set-rate-1", [*NOISE, "--rate", "10%", "--set", "rate=1"], ["rate"]),
    ("noise-set-rate-250pct", [*NOISE, "--rate", "10%", "--set", "rate=250%"], ["outside [0, 1)"]),
    ("noise-set-rate-words", [*NOISE, "--rate", "10%", "--set", "rate=ten"], ["cannot read noise rate"]),
    ("pretrain-set-noise-rate-1.0", ["pretrain", "--set", "noise.rate=1.0"], ["ambiguous", "1%"]),
    ("pretrain-set-noise-rate-200", ["pretrain", "--set", "noise.rate=200"], ["outside [0, 1)"]),
    ("pretrain-noise-sweep-with-1", ["pretrain", "--noise", "0,1,10"], ["ambiguous", "1%"]),
    ("run-noise-1", ["run", "--noise", "1"], ["ambiguous", "1%"]),
    # Exports are checked before the manifest they are made from is written.
    ("noise-export-labels-bad-suffix", [*NOISE, "--rate", "10%", "--export-labels", "{T}/labels.txt"],
     ["--export-labels", ".csv"]),
    ("noise-export-labels-of-captions",
     ["noise", "--dataset", "mini", "--type", "caption", "--rate", "10%", "--export-labels", "{T}/l.csv"],
     ["--export-labels", "label noise"]),
    ("noise-export-wds-without-shards", [*NOISE, "--rate", "10%", "--export-wds", "{T}/shards"],
     ["--export-wds", "webdataset"]),
    ("noise-export-labels-is-a-folder", [*NOISE, "--rate", "10%", "--export-labels", "{T}/d.csv"],
     ["is a directory"]),
    # Output roots that can never be written are refused before any feature is extracted or head fit.
    ("evaluate-root-name-too-long",
     ["evaluate", "--model", "tinyresnet", "--method", "lp", "--task", "mini-objects", "--set",
      "pretrained=false", "--root", "{T}/" + "r" * 300], ["name too long"]),
    ("spectrum-attach-missing", ["spectrum", "--model", "tinyresnet", "--random-init", "--task",
                                 "mini-objects", "--attach", "{T}/nowhere"], ["--attach"]),
]


@pytest.mark.parametrize("argv,expect", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_refused_before_anything_is_written(reject, tmp_path: Path, argv, expect) -> None:
    folder = tmp_path / "folder"
    (folder / "d.csv").mkdir(parents=True)
    argv = [a.replace("{T}", str(folder)) for a in argv]
    reject(argv, expect=expect, watch=[tmp_path])


@pytest.mark.parametrize("argv", [
    ["pretrain", "--noise", "10%"],
    ["evaluate", "--model", "tinyresnet", "--method", "lp", "--task", "mini-objects",
     "--set", "pretrained=false"],
], ids=["pretrain", "evaluate"])
def test_tensorboard_folder_through_a_file(reject, tmp_path: Path, argv) -> None:
    # Refused with the other flags, not after the manifest, the features or the first checkpoint.
    pytest.importorskip("tensorboard")
    f = tmp_path / "afile"
    f.write_text("x", encoding="utf-8")
    reject([*argv, "--tensorboard", str(f / "tb")], expect=[str(f), "not a directory"], watch=[tmp_path])


def test_evaluate_writes_its_config_beside_its_first_record(reject, monkeypatch) -> None:
    # A cell refused while fitting (here: a stand-in for a diverged head) leaves no config file.
    import nmlbench.eval.run as run

    def refused(*args, **kwargs):
        raise UserError("lp: the loss diverged; lower lp.lr")

    monkeypatch.setattr(run, "open_task_data", lambda *args: None)
    monkeypatch.setattr(run, "fit_and_record", refused)
    reject(["evaluate", "--model", "tinyresnet", "--method", "lp", "--task", "mini-objects",
            "--set", "pretrained=false"], expect="diverged")
