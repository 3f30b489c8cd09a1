"""Copy a submission (directory, .tar[.gz] or .zip) into a staging folder, refusing anything unsafe.

Nothing is ever extracted by the archive libraries themselves (no `extractall`): each member's name
and type are checked first, then its bytes are streamed with a byte budget, so path traversal,
links, device files and decompression bombs are refused and reported, never written.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from nmlbench.leaderboard.text import visible
from nmlbench.leftovers import is_temporary

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")


@dataclass(frozen=True)
class Limits:
    """Size budgets for one submission."""

    max_file_bytes: int = 64 << 20  # one predictions file of a 1M-sample test split is ~20 MiB
    max_total_bytes: int = 512 << 20  # all files together, after decompression
    max_files: int = 5000


class _Budget:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.total = 0
        self.files = 0


def is_leftover(rel: str) -> bool:
    """True for a temporary of an interrupted nmlbench write (nmlbench.io), or anything inside one.

    A results folder copied as a submission may hold some; they are never part of it, so they are
    skipped, not refused (a half-written record's real file is missing, which the completeness
    check reports).
    """
    return any(is_temporary(part) for part in PurePosixPath(rel).parts)


def _bad_name(name: str) -> str | None:
    """Why a member name is unsafe, or None."""
    if not name or "\x00" in name:
        return "an empty or NUL-containing name"
    if any(not visible(ch) or (ch.isspace() and ch != " ") for ch in name):
        # a newline or a bidi override in a file name would forge the lines and names shown
        return "control, line-break or bidirectional characters in its name"
    if "\\" in name or (len(name) > 1 and name[1] == ":"):
        return "a Windows-style path"
    if name.startswith("/"):
        return "an absolute path"
    if ".." in PurePosixPath(name).parts:
        return "a '..' component (path traversal)"
    return None


def _copy_stream(src: BinaryIO, dest: Path, rel: str, budget: _Budget, reasons: list[str]) -> None:
    """Stream `src` to `dest`, stopping (and deleting) once a size budget is exceeded."""
    written = 0
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as out:
        while block := src.read(1 << 20):
            written += len(block)
            budget.total += len(block)
            if written > budget.limits.max_file_bytes:
                reasons.append(f"{rel}: larger than the {budget.limits.max_file_bytes} byte limit per file")
                break
            if budget.total > budget.limits.max_total_bytes:
                reasons.append(
                    f"{rel}: submission exceeds the {budget.limits.max_total_bytes} byte total limit"
                )
                break
            out.write(block)
        else:
            return
    dest.unlink()


def _admit(rel: str, budget: _Budget, reasons: list[str]) -> bool:
    """Name and count checks shared by every source type; False for files not to copy."""
    if is_leftover(rel):
        return False
    why = _bad_name(rel)
    if why:
        reasons.append(f"{rel!r}: refused, it has {why}")
        return False
    budget.files += 1
    if budget.files > budget.limits.max_files:
        if budget.files == budget.limits.max_files + 1:
            reasons.append(
                f"more than {budget.limits.max_files} files; a submission is records + predictions only"
            )
        return False
    return True


def _from_dir(src: Path, staging: Path, budget: _Budget, reasons: list[str]) -> None:
    for root, dirs, files in os.walk(src, followlinks=False):
        for name in sorted(dirs + files):
            full = Path(root) / name
            rel = full.relative_to(src).as_posix()
            mode = full.lstat().st_mode
            if stat.S_ISLNK(mode):
                reasons.append(f"{rel}: symbolic links are not allowed; copy the file itself")
            elif stat.S_ISDIR(mode):
                continue
            elif not stat.S_ISREG(mode):
                reasons.append(f"{rel}: not a regular file")
            elif _admit(rel, budget, reasons):
                if full.stat().st_size > budget.limits.max_file_bytes:
                    reasons.append(
                        f"{rel}: larger than the {budget.limits.max_file_bytes} byte limit per file"
                    )
                    continue
                with open(full, "rb") as f:
                    _copy_stream(f, staging / rel, rel, budget, reasons)
        dirs[:] = [d for d in dirs if not (Path(root) / d).is_symlink()]


def _tar_members(tf: tarfile.TarFile, reasons: list[str]) -> Iterator[tarfile.TarInfo]:
    for m in tf:
        if m.issym() or m.islnk():
            reasons.append(f"{m.name}: links are not allowed in a submission archive")
        elif m.isdir():
            continue
        elif not m.isreg():
            reasons.append(f"{m.name}: not a regular file (device, fifo or other special member)")
        else:
            yield m


def _from_tar(src: Path, staging: Path, budget: _Budget, reasons: list[str]) -> None:
    try:
        with tarfile.open(src, mode="r:*") as tf:
            for m in _tar_members(tf, reasons):
                if not _admit(m.name, budget, reasons):
                    continue
                if m.size > budget.limits.max_file_bytes:
                    reasons.append(
                        f"{m.name}: larger than the {budget.limits.max_file_bytes} byte limit per file"
                    )
                    continue
                fobj = tf.extractfile(m)
                if fobj is not None:
                    _copy_stream(fobj, staging / m.name, m.name, budget, reasons)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
        reasons.append(
            f"{src.name}: not a readable tar archive ({type(e).__name__}); re-create it with tar -czf"
        )


def _from_zip(src: Path, staging: Path, budget: _Budget, reasons: list[str]) -> None:
    try:
        with zipfile.ZipFile(src) as zf:
            for info in zf.infolist():
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    reasons.append(f"{info.filename}: links are not allowed in a submission archive")
                    continue
                if info.is_dir() or not _admit(info.filename, budget, reasons):
                    continue
                if info.file_size > budget.limits.max_file_bytes:
                    reasons.append(
                        f"{info.filename}: larger than the {budget.limits.max_file_bytes} byte limit per file"
                    )
                    continue
                with zf.open(info) as fobj:  # the declared size may lie: _copy_stream counts real bytes
                    _copy_stream(fobj, staging / info.filename, info.filename, budget, reasons)
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        EOFError,
        OSError,
        NotImplementedError,
        zlib.error,
        io.UnsupportedOperation,
    ) as e:
        reasons.append(
            f"{src.name}: not a readable zip archive ({type(e).__name__}); re-create it with zip -r"
        )


def _strip_single_top_dir(staging: Path) -> Path:
    """`tar -czf x.tgz mysub/` wraps everything in one folder: look inside it."""
    entries = list(staging.iterdir())
    if len(entries) == 1 and entries[0].is_dir() and not (staging / "submission.json").exists():
        return entries[0]
    return staging


def stage(src: Path, staging: Path, limits: Limits) -> tuple[Path, list[str]]:
    """Copy the submission at `src` into `staging`; return its root there and every refusal reason."""
    reasons: list[str] = []
    budget = _Budget(limits)
    staging.mkdir(parents=True, exist_ok=True)
    name = src.name.lower()
    if src.is_symlink():
        reasons.append(f"{src}: is a symbolic link; pass the real directory or archive")
    elif src.is_dir():
        _from_dir(src, staging, budget, reasons)
    elif name.endswith((".tar.gz", ".tgz", ".tar")):
        _from_tar(src, staging, budget, reasons)
    elif name.endswith(".zip"):
        _from_zip(src, staging, budget, reasons)
    else:
        reasons.append(f"{src.name}: not a directory or a {', '.join(ARCHIVE_SUFFIXES)} archive")
    if not reasons and budget.files == 0:
        reasons.append(
            f"{src.name}: the submission is empty; it needs submission.json, records and predictions/"
        )
    return _strip_single_top_dir(staging), reasons
