"""OS errors: the line the CLI prints, the path the atomic writers report, the checks before work."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from nmlbench.errors import UserError, os_error_line
from nmlbench.io import atomic_dir, atomic_path, check_output
from nmlbench.rates import parse_rate, parse_rates


@pytest.mark.parametrize("exc,words", [
    (OSError(errno.ENOSPC, "No space left on device", "/o/m.parquet"), ["/o/m.parquet: no space", "ENOSPC"]),
    (PermissionError(errno.EACCES, "Permission denied", "/o", None, "/p"), ["/o -> /p: permission denied"]),
    (OSError(errno.EROFS, "Read-only file system"), ["read-only file system", "--out"]),
    (OSError(errno.ENOTCONN, "Transport endpoint is not connected", "/nfs"), ["/nfs: transport endpoint"]),
    (OSError("Expected file path, but /d.csv\nis a directory"), ["/d.csv is a directory; check"]),
    (OSError(errno.ENOENT, "No such file", "/a\nb"), ["'/a\\nb': no such file"]),
])
def test_one_line_with_path_meaning_and_fix(exc: OSError, words: list[str]) -> None:
    line = os_error_line(exc)
    assert "\n" not in line and ";" in line  # the fix follows the problem
    for word in words:
        assert word in line


def test_nameless_writer_error_names_the_output_and_leaves_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "new" / "deeper" / "m.parquet"
    with pytest.raises(OSError) as info, atomic_path(dest):
        raise OSError(errno.ENOSPC, "Error writing bytes to file")  # what pyarrow raises on a full disk
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(dest)
    assert list(tmp_path.iterdir()) == []  # the temporary file and the folders made for it are gone


def test_file_in_a_temporary_folder_is_named_under_the_output(tmp_path: Path) -> None:
    dest = tmp_path / "ckpt"
    with pytest.raises(OSError) as info, atomic_dir(dest) as tmp:
        raise OSError(errno.EDQUOT, "Disk quota exceeded", str(tmp / "state.pt"))
    assert info.value.filename == str(dest / "state.pt")
    assert list(tmp_path.iterdir()) == []


def test_torch_writer_runtime_error_on_a_full_disk_is_enospc(tmp_path: Path, monkeypatch) -> None:
    real = os.statvfs

    class Full:
        def __init__(self, path):
            self._st = real(path)

        def __getattr__(self, name):
            return getattr(self._st, name)

        f_bavail = 0

    dest = tmp_path / "run" / "ckpt"
    with pytest.raises(OSError) as info, atomic_dir(dest):
        monkeypatch.setattr(os, "statvfs", Full)
        # what torch.save raised when a 64 KiB tmpfs filled up (no errno, no path)
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(dest)
    assert isinstance(info.value.__cause__, RuntimeError)
    assert list(tmp_path.iterdir()) == []


def test_other_errors_pass_through_unchanged(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="a bug"), atomic_path(tmp_path / "x.txt"):
        raise RuntimeError("a bug")
    with pytest.raises(UserError), atomic_path(tmp_path / "x.txt"):
        raise UserError("bad input")
    with pytest.raises(OSError) as info, atomic_path(tmp_path / "x.pt"):  # torch's writer, disk not full
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")
    assert info.value.errno == errno.EIO and info.value.filename == str(tmp_path / "x.pt")
    assert list(tmp_path.iterdir()) == []


def test_check_output_refuses_what_no_write_could_do(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_text("x", encoding="utf-8")
    with pytest.raises(NotADirectoryError) as info:
        check_output(f / "a" / "b", folder=True)
    assert info.value.filename == str(f)
    with pytest.raises(NotADirectoryError):
        check_output(f, folder=True)
    with pytest.raises(IsADirectoryError):
        check_output(tmp_path, folder=False)
    with pytest.raises(OSError) as info:
        check_output(tmp_path / ("n" * 300), folder=False)
    assert info.value.errno == errno.ENAMETOOLONG
    assert check_output(tmp_path / "new" / "out", folder=True) == tmp_path / "new" / "out"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]  # checking writes nothing


@pytest.mark.parametrize("bare_one", ["1", "1.0", " 1 ", 1, 1.0])
def test_a_bare_one_is_ambiguous(bare_one) -> None:
    with pytest.raises(UserError, match="ambiguous"):
        parse_rate(bare_one)
    assert parse_rate("1%") == 0.01 and parse_rate("100%".replace("100", "1.5")) == 0.015


def test_sweeps_and_overrides_use_the_same_parser() -> None:
    with pytest.raises(UserError, match="ambiguous"):
        parse_rates("0,1,10")
    assert parse_rates("0,1,10%") == [0.0, 0.01, 0.1]



@pytest.mark.parametrize("value, rate", [("2", 0.02), ("10%", 0.1), ("0.1", 0.1), (10, 0.1), (0.3, 0.3)])
def test_config_files_and_set_read_a_rate_like_the_flags(tmp_path, value, rate) -> None:
    from nmlbench.config import load_config
    from nmlbench.noise.base import NoiseConfig
    from nmlbench.pretrain.config import load_pretrain_config

    assert load_pretrain_config("mini-resnet", None, [f"noise.rate={value}"]).noise.rate == rate
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"model: tinyresnet\nnoise:\n  rate: {value!r}\n" if isinstance(value, str)
                   else f"model: tinyresnet\nnoise:\n  rate: {value}\n")
    assert load_pretrain_config(None, cfg, []).noise.rate == rate
    assert load_config(NoiseConfig, overrides=["kind=sym", f"rate={value}"]).rate == rate


@pytest.mark.parametrize("value, words", [("1", "ambiguous"), ("250%", "outside"), ("nan", "outside")])
def test_config_rates_refuse_what_the_flags_refuse(value, words) -> None:
    from nmlbench.pretrain.config import load_pretrain_config

    with pytest.raises(UserError, match=words):
        load_pretrain_config("mini-resnet", None, [f"noise.rate={value}"])


def test_a_reader_that_left_the_pipe_is_not_an_error(monkeypatch, capsys) -> None:
    # `nmlbench tasks list | head -1`: exit quietly as a pipe writer does, not with an error line.
    import nmlbench.tasks.cli as tasks_cli
    from nmlbench.cli import main

    def reader_gone(args):
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    monkeypatch.setattr(tasks_cli, "run", reader_gone)
    assert main(["tasks", "list"]) == 141
    assert capsys.readouterr().err == ""
