"""The errors the CLI turns into a single line and exit code 2.

Raise `UserError` for anything the user can fix (bad path, bad rate, unknown name); the message must
name the problem and the fix. An `OSError` (permission denied, no space left, read-only disk, a file
where a folder should be, a name too long, a reader's "is a directory", ...) is reported the same way
by `os_error_line`: it is about a path or device the user chose or can change, so it is theirs to fix,
not a bug (`nmlbench -v` still logs its traceback). Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import errno
import os


class UserError(Exception):
    """A problem with the user's input, reported as one line without a traceback."""


_WHERE = "or write elsewhere (--out, --root or $NMLBENCH_ROOT)"

# errno -> (what it means, what to do). Unlisted errnos get os.strerror and a generic hint.
_MEANINGS: dict[int, tuple[str, str]] = {
    errno.EACCES: ("permission denied", f"check the path's permissions {_WHERE}"),
    errno.EPERM: ("operation not permitted", f"check the path's permissions {_WHERE}"),
    errno.EROFS: ("read-only file system", f"choose a folder on a writable disk {_WHERE}"),
    errno.ENOSPC: ("no space left on device", f"free some space on that disk {_WHERE}"),
    errno.EDQUOT: ("disk quota exceeded", f"free some space within your quota {_WHERE}"),
    errno.EFBIG: ("file too large for this file system", f"write to another disk {_WHERE}"),
    errno.EISDIR: ("is a directory, a file was expected", "give the path of a file, not of a folder"),
    errno.ENOTDIR: (
        "not a directory (the path goes through a file)",
        "give a path whose parent folders are folders (not files)",
    ),
    errno.ENOENT: ("no such file or directory", "check the path (and that its parent folder exists)"),
    errno.EEXIST: ("already exists", "remove it or choose another path"),
    errno.ENOTEMPTY: ("directory not empty", "empty or remove it, or choose another path"),
    errno.ENAMETOOLONG: ("file name too long", "choose a shorter path or name"),
    errno.ELOOP: ("too many levels of symbolic links", "fix the symbolic link loop in the path"),
    errno.EMFILE: ("too many open files", "raise the limit (ulimit -n) and run again"),
    errno.ENFILE: ("too many open files in the system", "close other programs and run again"),
    errno.EIO: ("input/output error", "check the disk (dmesg) and run again"),
    errno.EBUSY: ("device or resource busy", "wait for the other program using it and run again"),
    errno.EXDEV: ("cannot move across file systems", "keep the output folder on one disk"),
}


def os_error_line(exc: OSError) -> str:
    """One line for `exc`: the path(s), the errno's meaning and a fix, e.g.
    `/x/out: read-only file system (EROFS); choose a folder on a writable disk or ...`."""
    if not isinstance(exc.errno, int):  # a library's own I/O error (pyarrow: "Expected file path, ...")
        text = " ".join(str(exc).split()) or type(exc).__name__
        return f"{text}; check that the path names a readable file of the expected kind"
    meaning, hint = _MEANINGS.get(
        exc.errno, ((exc.strerror or os.strerror(exc.errno)).lower(), "check the path and run again")
    )
    code = errno.errorcode.get(exc.errno, str(exc.errno))
    if exc.filename is not None and exc.filename2 is not None:
        where = f"{_shown(exc.filename)} -> {_shown(exc.filename2)}: "
    elif exc.filename is not None:
        where = f"{_shown(exc.filename)}: "
    else:  # e.g. a socket error, or a writer that did not say which file
        where = ""
    return f"{where}{meaning} ({code}); {hint}"


def _shown(name: object) -> str:
    """A path as text on one line: a name with a newline or other control character is quoted."""
    text = os.fsdecode(name) if isinstance(name, (str, bytes, os.PathLike)) else str(name)
    return repr(text) if any(ord(c) < 32 or c == "\x7f" for c in text) else text
