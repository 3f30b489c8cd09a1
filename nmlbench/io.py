"""Atomic writes and hashing: no stage ever leaves a half-written file for the next one.

A write goes to a temporary beside its destination, named `.<name>.<pid>@<host>.<random>.tmp[.<suffix>]`,
and is renamed when complete. A writer killed with SIGKILL cannot remove its temporary, so the
first write into a folder by a later process sweeps the stale ones there (`sweep_stale`).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@contextlib.contextmanager
def atomic_path(dest: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `dest`; rename it onto `dest` only if the block succeeds.

    The temporary name keeps `dest`'s suffix because some writers (np.savez, pyarrow) look at it.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    sweep_once(dest.parent)  # leftovers of a killed earlier write of this folder
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(dest.stem), suffix=f".tmp{dest.suffix}", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    tmp_path.chmod(0o666 & ~umask)  # mkstemp makes 0600; readers on a shared cluster need the usual mode
    try:
        yield tmp_path
        os.replace(tmp_path, dest)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(dest: str | Path) -> Iterator[Path]:
    """Yield a temporary directory beside `dest`; it becomes `dest` only if the block succeeds."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    sweep_once(dest.parent)
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(dest.name), suffix=".tmp", dir=dest.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes 0700; the result should look like a normal mkdir
    try:
        yield tmp
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


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


# --- leftovers of killed writes -------------------------------------------------------------------

# A temporary whose writer is on another host (shared file system) or unknown (an older nmlbench
# named them without pid@host) cannot be checked for a live writer: it is swept once nothing in it
# has changed for this long. A live writer touches its temporary while writing, and no nmlbench
# write takes a day.
STALE_AFTER_S = 24 * 3600

_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "localhost"
# mkstemp/mkdtemp add 8 characters of [a-z0-9_] between our prefix and ".tmp"
_OURS = re.compile(r"^\..+\.(?P<pid>\d+)@(?P<host>[A-Za-z0-9-]+)\.[a-z0-9_]{8}\.tmp(\..*)?$")
_LEGACY = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp(\..*)?$")
_swept: set[str] = set()


def temp_prefix(name: str) -> str:
    """`.<name>.<pid>@<host>.`: the writer of a temporary can be told alive or dead later."""
    return f".{name}.{os.getpid()}@{_HOST}."


def is_temporary(name: str) -> bool:
    """True for the name of an `atomic_path`/`atomic_dir` temporary (of this or an older version)."""
    return bool(_OURS.match(name) or _LEGACY.match(name))


def sweep_stale(folder: str | Path, now: float | None = None) -> list[Path]:
    """Remove the temporaries in `folder` (not below it) whose writer is gone; return them.

    Safe when several processes share an output root: a temporary written on this host is removed
    only if its writer's pid is dead (or now belongs to a process started after the temporary was
    last written); one from another host or without pid@host only after `STALE_AFTER_S` untouched.
    Never raises: a folder that cannot be listed or cleaned is left as it is.
    """
    folder = Path(folder)
    try:
        with os.scandir(folder) as it:
            entries = [e for e in it if is_temporary(e.name)]
    except OSError:
        return []
    now = time.time() if now is None else now
    removed = []
    for entry in entries:
        path = Path(entry.path)
        try:
            if not _writer_gone(path, entry.name, now):
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError:  # gone already (another process swept it) or not ours to remove
            continue
        removed.append(path)
    if removed:
        log.info(
            "removed %d leftover temporar%s of interrupted writes in %s",
            len(removed),
            "y" if len(removed) == 1 else "ies",
            folder,
        )
    return removed


def sweep_once(folder: str | Path) -> None:
    """`sweep_stale(folder)` the first time this process writes into `folder`."""
    key = os.path.abspath(folder)
    if key not in _swept:
        _swept.add(key)
        sweep_stale(folder)


def _writer_gone(path: Path, name: str, now: float) -> bool:
    mtime = _last_touched(path)
    m = _OURS.match(name)
    if m and m["host"] == _HOST:
        pid = int(m["pid"])
        if pid == os.getpid():
            return False
        return not _alive(pid) or _started_after(pid, mtime)
    return now - mtime > STALE_AFTER_S


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _started_after(pid: int, t: float) -> bool:
    """True if process `pid` started after time `t` (so it reused the pid of the writer); Linux only."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        stat = Path("/proc/stat").read_text().splitlines()
        boot = next(float(x.split()[1]) for x in stat if x.startswith("btime "))
        start = boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22 of stat: starttime
    except (OSError, ValueError, IndexError, StopIteration):
        return False
    return start > t + 1  # btime has a resolution of one second


def _last_touched(path: Path) -> float:
    """Newest mtime of `path` and, for a folder, of everything in it."""
    newest = path.lstat().st_mtime
    if path.is_dir() and not path.is_symlink():
        for dirpath, dirnames, filenames in os.walk(path):
            for n in dirnames + filenames:
                with contextlib.suppress(OSError):
                    newest = max(newest, os.lstat(os.path.join(dirpath, n)).st_mtime)
    return newest
