"""Leftovers of killed writes: how temporaries are named, and sweeping those whose writer is gone.

`nmlbench.io`'s atomic writers name a temporary `.<name>.<pid>@<host>.<random>.tmp[.<suffix>]`. A
writer killed with SIGKILL cannot remove it, so the first write of a process into a folder sweeps the
stale ones there (`sweep_once`), and readers of copied folders skip them (`is_temporary`).
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import socket
import time
from pathlib import Path

log = logging.getLogger(__name__)

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
