"""Publish a build's outputs as one set: staged beside them, committed, then swapped in.

`leaderboard build` writes LEADERBOARD.md, leaderboard.csv, index.html, build-config.yaml and
figs/ into a hidden staging folder inside the output folder (same file system, so renames are
atomic). Nothing in place changes while the build renders: a build that fails or is killed
there leaves the previous outputs exactly as they were. Once every output is written, the
staging folder is renamed to `.build-commit` — the commit point — and its files replace the
old ones, each with an atomic rename; figures the new build did not draw are removed. A build
killed during that pass (a few renames) leaves `.build-commit` behind, and the next build
finishes the pass before anything else (roll forward), so the outputs are again one build's.
A lock on the output folder keeps two builds from publishing into it at once.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from nmlbench.errors import UserError

STAGE_PREFIX = ".build-"
COMMIT = ".build-commit"
MANIFEST = ".manifest"
FIGS = "figs"
FIG_SUFFIXES = (".png", ".svg")


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # no advisory locks here (Windows): builds must not run concurrently
        yield
        return
    fd = os.open(out, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(
                f"another `nmlbench leaderboard build` is writing to {out}; wait for it to finish"
            ) from None
        except OSError:  # a file system without flock (some NFS mounts): build unlocked
            pass
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _missing_parents(path: Path) -> list[Path]:
    """`path` and the ancestors of it that do not exist yet, outermost first."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing[::-1]


def recover(out: Path) -> None:
    """Finish a committed swap a killed build left, and drop the stages of killed renders."""
    commit = out / COMMIT
    if commit.is_dir():
        _swap(commit, out)
    for stale in out.glob(f"{STAGE_PREFIX}*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)


def _swap(commit: Path, out: Path) -> None:
    """Move every file of the committed set into place; idempotent, so it can be resumed."""
    manifest = (commit / MANIFEST).read_text(encoding="utf-8").splitlines()
    for rel in manifest:
        src = commit / rel
        if src.exists():  # moved already by a pass that was interrupted
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, out / rel)
    keep = set(manifest)
    figs = out / FIGS
    if figs.is_dir():
        for old in figs.iterdir():
            if old.suffix in FIG_SUFFIXES and old.is_file() and f"{FIGS}/{old.name}" not in keep:
                old.unlink()
    shutil.rmtree(commit)


def _commit(stage: Path, out: Path) -> None:
    files = sorted(p.relative_to(stage).as_posix() for p in stage.rglob("*") if p.is_file())
    (stage / MANIFEST).write_text("\n".join(files) + "\n", encoding="utf-8")
    os.rename(stage, out / COMMIT)  # the commit point: from here on the new set wins
    _swap(out / COMMIT, out)


@contextlib.contextmanager
def staged(out: Path) -> Iterator[Path]:
    """Yield an empty staging folder; publish what it holds into `out` when the block succeeds.

    When the block raises (or the process dies before the commit point), `out` keeps its
    previous outputs; folders this call created for `out` are removed again.
    """
    created = _missing_parents(out)
    out.mkdir(parents=True, exist_ok=True)
    stage: Path | None = None
    try:
        with _locked(out):
            recover(out)
            stage = Path(tempfile.mkdtemp(prefix=STAGE_PREFIX, suffix=".tmp", dir=out))
            yield stage
            _commit(stage, out)
            stage = None
    finally:
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)
            for folder in reversed(created):
                with contextlib.suppress(OSError):
                    folder.rmdir()  # only if still empty
