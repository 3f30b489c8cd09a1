"""Atomic writes and hashing: no stage ever leaves a half-written file for the next one.

A write goes to a temporary beside its destination, named `.<name>.<pid>@<host>.<random>.tmp[.<suffix>]`,
and is renamed when complete. A writer killed with SIGKILL cannot remove its temporary, so the
first write into a folder by a later process sweeps the stale ones there (`nmlbench.leftovers`).
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nmlbench.leftovers import sweep_once, temp_prefix


@contextlib.contextmanager
def atomic_path(dest: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `dest`; rename it onto `dest` only if the block succeeds.

    The temporary name keeps `dest`'s suffix because some writers (np.savez, pyarrow) look at it.
    """
    dest = Path(dest)
    with _made_parents(dest):
        sweep_once(dest.parent)  # leftovers of a killed earlier write of this folder
        with _named(dest):
            fd, tmp = tempfile.mkstemp(
                prefix=temp_prefix(dest.stem), suffix=f".tmp{dest.suffix}", dir=dest.parent
            )
        os.close(fd)
        tmp_path = Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        tmp_path.chmod(0o666 & ~umask)  # mkstemp makes 0600; readers on a shared cluster need the usual mode
        try:
            with _as_os_error(tmp_path, dest):
                yield tmp_path
                os.replace(tmp_path, dest)
        finally:
            if tmp_path.exists():
                tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(dest: str | Path) -> Iterator[Path]:
    """Yield a temporary directory beside `dest`; it becomes `dest` only if the block succeeds."""
    dest = Path(dest)
    with _made_parents(dest):
        sweep_once(dest.parent)
        with _named(dest):
            tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(dest.name), suffix=".tmp", dir=dest.parent))
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp makes 0700; the result should look like a normal mkdir
        try:
            with _as_os_error(tmp, dest):
                yield tmp
                if dest.exists():
                    shutil.rmtree(dest)
                os.replace(tmp, dest)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def _made_parents(dest: Path) -> Iterator[None]:
    """Create `dest`'s missing parent folders; remove those still empty if the block fails.

    A write that fails (no space, permission denied) then leaves no trace, not even empty folders.
    """
    missing = []
    for parent in dest.parents:
        if os.path.lexists(parent):
            if not parent.is_dir():  # mkdir would say "File exists", which hides the real problem
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(parent))
            break
        missing.append(parent)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)  # may fail half way (a name too long)
        yield
    except BaseException:
        for d in missing:  # deepest first
            with contextlib.suppress(OSError):
                d.rmdir()
        raise


@contextlib.contextmanager
def _named(dest: Path) -> Iterator[None]:
    """An OSError while creating the temporary name names `dest`, the path the user chose."""
    try:
        yield
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(dest)) from e


# torch's C++ writer reports a failed open or write as a RuntimeError that names its source file.
_TORCH_WRITER = ("inline_container.cc", "PytorchStreamWriter")


@contextlib.contextmanager
def _as_os_error(tmp: Path, dest: Path) -> Iterator[None]:
    """Re-raise a writer's filesystem failure as an OSError that names `dest`.

    Writers report the temporary name (which the user never asked for), or no name at all
    (pyarrow, numpy and plain writes on a full disk), or no errno (torch.save's RuntimeError); the
    CLI can then only say "no space left" without the path. Here every one of them names `dest`
    (the file under a temporary folder: its place under `dest`), so the user sees which output failed.
    """
    try:
        yield
    except OSError as e:
        if not isinstance(e.errno, int) or (e.filename is not None and not _under(e.filename, tmp)):
            raise  # no errno: not the filesystem's doing; a named other path: already says where
        name = dest
        if e.filename is not None and Path(os.fsdecode(e.filename)) != tmp:
            name = dest / Path(os.fsdecode(e.filename)).relative_to(tmp)  # a file in a temporary folder
        raise OSError(e.errno, e.strerror or os.strerror(e.errno), str(name)) from e
    except RuntimeError as e:
        if not any(marker in str(e) for marker in _TORCH_WRITER):
            raise
        code = _writer_errno(str(e), tmp)
        raise OSError(code, os.strerror(code), str(dest)) from e


def _under(name: object, tmp: Path) -> bool:
    try:
        path = Path(os.fsdecode(name))  # type: ignore[arg-type]
    except TypeError:
        return False
    return path == tmp or tmp in path.parents


def _writer_errno(message: str, tmp: Path) -> int:
    """The errno behind torch's message: its strerror text if it gives one, else a full disk or EIO."""
    for code, text in ((errno.ENOENT, "No such file"), (errno.EACCES, "Permission denied"),
                       (errno.EROFS, "Read-only"), (errno.ENOSPC, "No space")):
        if text in message:
            return code
    try:
        full = os.statvfs(tmp.parent if tmp.parent.exists() else tmp).f_bavail == 0
    except OSError:
        full = False
    return errno.ENOSPC if full else errno.EIO


def write_text(dest: str | Path, text: str) -> Path:
    with atomic_path(dest) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(dest)


def write_json(dest: str | Path, obj: Any) -> Path:
    """Sorted keys and a trailing newline: the same object always gives the same bytes."""
    return write_text(dest, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_output(dest: str | Path, *, folder: bool) -> Path:
    """Raise now the OSError that writing `dest` (a folder if `folder`, else a file) would raise later.

    Verbs call it on their output paths before any work, so a path that can never be written
    (through a file, a folder where a file goes, a name too long, a read-only disk) costs nothing
    and writes nothing. Permissions are checked too, but root passes them, as it would the write.
    """
    dest = Path(dest)
    parents = [p for p in dest.parents if os.path.lexists(p)]
    base = parents[0] if parents else Path(".")
    try:
        name_max = os.pathconf(base, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    if any(len(os.fsencode(part)) > name_max for part in dest.parts) or len(os.fsencode(dest)) >= 4096:
        raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG), str(dest))
    if dest.exists() and dest.is_dir() != folder:
        error = NotADirectoryError if folder else IsADirectoryError
        raise error(errno.ENOTDIR if folder else errno.EISDIR, "", str(dest))
    if not base.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(base))
    target = dest if folder and dest.is_dir() else base  # where the first new entry will be made
    if os.statvfs(target).f_flag & os.ST_RDONLY:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(target))
    if not os.access(target, os.W_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(target))
    return dest
