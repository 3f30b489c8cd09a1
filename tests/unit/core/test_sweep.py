"""Temporaries of killed writes: named after their writer, swept when the writer is gone, never read
as content (a submission copied from a results folder)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nmlbench import leftovers
from nmlbench.io import atomic_dir, atomic_path, write_text
from nmlbench.leftovers import is_temporary, sweep_stale

DAY = 24 * 3600


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _temp(folder: Path, name: str, pid: int, host: str = leftovers._HOST, age: float = 0.0) -> Path:
    p = folder / f".{name}.{pid}@{host}.ab12cd_z.tmp.json"
    p.write_text("{half")
    if age:
        os.utime(p, (time.time() - age, time.time() - age))
    return p


@pytest.fixture
def sleeper():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def test_temporaries_name_their_writer_and_are_recognised(tmp_path):
    with atomic_path(tmp_path / "rec.json") as tmp:
        assert tmp.name.startswith(f".rec.{os.getpid()}@{leftovers._HOST}.")
        assert tmp.name.endswith(".tmp.json")
        assert is_temporary(tmp.name)
    with atomic_dir(tmp_path / "step-00000004") as tmp:
        assert is_temporary(tmp.name) and f".{os.getpid()}@" in tmp.name
    assert is_temporary(".rec.k3j_a9zq.tmp.json")  # written by an older version
    assert not any(map(is_temporary, ["rec.json", ".hidden", ".rec.tmp", "step-00000004"]))


def test_only_temporaries_of_gone_writers_are_swept(tmp_path, sleeper):
    dead, keep = _dead_pid(), []
    gone = [_temp(tmp_path, "a", dead), _temp(tmp_path, "b", dead, host="elsewhere", age=2 * DAY)]
    keep.append(_temp(tmp_path, "c", os.getpid()))  # this process may be writing it
    keep.append(_temp(tmp_path, "d", sleeper))  # a live writer
    keep.append(_temp(tmp_path, "e", dead, host="elsewhere", age=3600))  # unknown: too fresh
    legacy_old, legacy_new = tmp_path / ".f.k3j_a9zq.tmp", tmp_path / ".g.k3j_a9zq.tmp"
    legacy_old.write_text("x")
    os.utime(legacy_old, (time.time() - 2 * DAY,) * 2)
    legacy_new.write_text("x")
    keep += [legacy_new, tmp_path / "h.json"]
    keep[-1].write_text("{}")
    os.utime(keep[-1], (time.time() - 9 * DAY,) * 2)  # old, but not a temporary
    assert sorted(sweep_stale(tmp_path)) == sorted([*gone, legacy_old])
    assert sorted(tmp_path.iterdir()) == sorted(keep)


def test_a_pid_reused_by_a_newer_process_does_not_keep_a_temporary(tmp_path, sleeper):
    if not Path(f"/proc/{sleeper}/stat").exists():
        pytest.skip("needs /proc")
    old = _temp(tmp_path, "a", sleeper, age=3600)  # written an hour before that process started
    assert sweep_stale(tmp_path) == [old]


def test_a_temporary_folder_being_filled_counts_as_touched(tmp_path):
    folder = tmp_path / ".step-00000008.123@elsewhere.ab12cd_z.tmp"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"x")
    os.utime(folder, (time.time() - 2 * DAY,) * 2)
    assert sweep_stale(tmp_path) == []  # its file was written just now
    os.utime(folder / "model.safetensors", (time.time() - 2 * DAY,) * 2)
    assert sweep_stale(tmp_path) == [folder] and not folder.exists()


def test_the_first_write_into_a_folder_sweeps_it(tmp_path):
    stale = _temp(tmp_path, "rec", _dead_pid())
    write_text(tmp_path / "rec.json", "{}")
    assert not stale.exists() and (tmp_path / "rec.json").read_text() == "{}"


def test_sweeping_an_unlistable_folder_does_nothing(tmp_path):
    assert sweep_stale(tmp_path / "missing") == []


def test_a_submission_copied_with_leftovers_is_staged_without_them(tmp_path):
    from nmlbench.leaderboard.archive import Limits, stage

    src = tmp_path / "my-run"
    (src / "predictions").mkdir(parents=True)
    (src / "submission.json").write_text("{}")
    (src / "r1.json").write_text("{}")
    (src / ".r2.999@host.ab12cd_z.tmp.json").write_text("{half")
    (src / "predictions" / ".r2.k3j_a9zq.tmp.parquet").write_bytes(b"PAR")
    (src / ".step-00000002.1@h.ab12cd_z.tmp").mkdir()
    root, reasons = stage(src, tmp_path / "staged", Limits())
    assert reasons == []
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == [
        "r1.json",  # predictions/ held only a leftover: nothing of it is staged
        "submission.json",
    ]
