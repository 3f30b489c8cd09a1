"""Operating-system errors on every verb: one line naming the path, the errno's meaning and a fix.

Tests may run as root (CI does), where chmod-based read-only folders do not stop a write. So the
hostile paths here are ones root cannot write either: a path through a regular file, a folder where
a file goes, a name longer than the file system allows. A full or read-only disk and a refused
permission are simulated by making the system call fail as the kernel would.
"""
from __future__ import annotations

import errno
import os
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "leaderboard"))  # lb_fakes: valid result records
from lb_fakes import make_submission, study_models  # noqa: E402

NOISE = ["noise", "--dataset", "mini", "--type", "sym", "--rate", "10%"]
EVAL = ["evaluate", "--model", "tinyresnet", "--method", "lp", "--task", "mini-objects",
        "--set", "pretrained=false"]
LONG = "x" * 300  # longer than NAME_MAX (255) on every common file system


@pytest.fixture
def afile(tmp_path: Path) -> Path:
    f = tmp_path / "afile"
    f.write_text("not a folder\n", encoding="utf-8")
    return f


@pytest.fixture
def results(tmp_path: Path) -> Path:
    return make_submission(tmp_path / "results", models=study_models((0.0, 0.2), (0,)), methods=("lp",))


# (id, argv with {F} = a regular file, {T} = a fresh folder, expected words)
PATH_CASES = [
    ("noise-out-through-a-file", [*NOISE, "--out", "{F}/sub"], ["{F}", "not a directory"]),
    ("noise-out-is-a-file", [*NOISE, "--out", "{F}"], ["{F}", "not a directory"]),
    ("noise-out-name-too-long", [*NOISE, "--out", "{T}/" + LONG], ["name too long", "shorter"]),
    ("noise-dataset-name-too-long", [*NOISE, "--name", LONG], ["name too long", "shorter"]),
    ("noise-export-through-a-file", [*NOISE, "--export-labels", "{F}/labels.csv"],
     ["{F}", "not a directory"]),
    ("noise-labels-folder-named-csv", ["noise", "--labels", "{T}/d.csv", "--type", "sym", "--rate", "10%"],
     ["{T}/d.csv", "is a directory"]),
    ("noise-audit-manifest-is-a-folder", ["noise", "audit", "{T}/m"], ["manifest"]),
    ("pretrain-out-is-a-file", ["pretrain", "--out", "{F}", "--noise", "10%"], ["{F}", "not a directory"]),
    ("evaluate-root-is-a-file", [*EVAL, "--root", "{F}"], ["{F}", "not a directory"]),
    ("run-root-is-a-file", ["run", "--root", "{F}", "--noise", "10%"], ["{F}", "not a directory"]),
    ("plot-out-through-a-file", ["plot", "{R}", "--out", "{F}/figs"], ["{F}", "not a directory"]),
    ("mini-show-out-is-a-folder", ["mini", "show", "--out", "{T}"], ["{T}", "is a directory"]),
    ("mini-show-out-through-a-file", ["mini", "show", "--out", "{F}/grid.png"], ["{F}", "not a directory"]),
    ("mini-build-data-root-is-a-file", ["mini", "build", "--data-root", "{F}"], ["{F}", "not a directory"]),
    ("tasks-show-folder-named-yaml", ["tasks", "show", "{T}/d.yaml"], ["d.yaml"]),
    ("leaderboard-dir-is-a-file", ["leaderboard", "build", "--leaderboard-dir", "{F}"], ["{F}"]),
]


@pytest.mark.parametrize("argv,expect", [c[1:] for c in PATH_CASES], ids=[c[0] for c in PATH_CASES])
def test_path_the_os_refuses(reject, afile: Path, results: Path, tmp_path: Path, argv, expect) -> None:
    folder = tmp_path / "folder"
    for d in ("d.csv", "d.yaml", "m/manifest.parquet"):  # folders named like the files they stand for
        (folder / d).mkdir(parents=True)
    (folder / "m" / "manifest.json").write_text("{}", encoding="utf-8")
    fill = {"{F}": str(afile), "{T}": str(folder), "{R}": str(results)}

    def sub(text: str) -> str:
        for key, value in fill.items():
            text = text.replace(key, value)
        return text

    line = reject([sub(a) for a in argv], expect=[sub(e) for e in expect], watch=[tmp_path])
    assert "Traceback" not in line


# A path the kernel refuses to even look up (a component over NAME_MAX): every verb that reads one.
LONG_INPUTS = [
    ("noise-audit", ["noise", "audit", "{L}/manifest.parquet"]),
    ("noise-audit-labels", ["noise", "audit", "{L}/m/manifest.parquet", "--labels", "{L}.csv"]),
    ("noise-labels", ["noise", "--labels", "{L}.csv", "--type", "sym", "--rate", "10%"]),
    ("tasks-show", ["tasks", "show", "{L}.yaml"]),
    ("evaluate-model", ["evaluate", "--model", "{L}", "--method", "lp", "--task", "mini-objects"]),
    ("spectrum-features", ["spectrum", "--features", "{L}.npy"]),
    ("plot-results", ["plot", "{L}"]),
    ("leaderboard-submit", ["leaderboard", "submit", "{L}"]),
    ("mini-show-out", ["mini", "show", "--out", "{L}.png"]),
]


@pytest.mark.parametrize("argv", [c[1] for c in LONG_INPUTS], ids=[c[0] for c in LONG_INPUTS])
def test_path_name_too_long(reject, tmp_path: Path, argv) -> None:
    long_path = str(tmp_path / LONG)
    reject([a.replace("{L}", long_path) for a in argv], expect=["name too long", "shorter"], watch=[tmp_path])


def test_spectrum_root_through_a_file(reject, afile: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("NMLBENCH_ROOT", str(afile / "out"))
    reject(["spectrum", "--model", "tinyresnet", "--random-init", "--task", "mini-objects"],
           expect=[str(afile), "not a directory"], watch=[tmp_path])


def _fail(code: int):
    """A stand-in for a system call that fails as the kernel would, naming no file (as writers do)."""

    def call(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    return call


def test_disk_full_while_writing_the_manifest(reject, monkeypatch) -> None:
    # Every temporary file and every folder the write created is gone; the line names the output.
    monkeypatch.setattr(os, "replace", _fail(errno.ENOSPC))
    reject(NOISE, expect=["no space left", "sym10-s0/manifest", "free some space"])


def test_read_only_output_root(reject, monkeypatch) -> None:
    real = os.statvfs

    class ReadOnly:
        def __init__(self, path):
            self._st = real(path)

        def __getattr__(self, name):
            return getattr(self._st, name)

        f_flag = os.ST_RDONLY

    monkeypatch.setattr(os, "statvfs", ReadOnly)
    reject(EVAL, expect=["read-only file system", os.environ["NMLBENCH_ROOT"]])


def test_permission_denied_on_the_figures_folder(reject, results: Path, tmp_path: Path, monkeypatch) -> None:
    # What an NFS server with root squashing answers, which no up-front check can foresee.
    monkeypatch.setattr(tempfile, "mkstemp", _fail(errno.EACCES))
    out = tmp_path / "figs"
    reject(["plot", str(results), "--out", str(out)], expect=["permission denied", str(out)],
           watch=[tmp_path])
