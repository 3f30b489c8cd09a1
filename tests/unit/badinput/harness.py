"""The bad-input contract, checked the same way for every verb.

`reject(argv)` runs the CLI in-process and asserts what the project promises for input a user can
fix: exit code 2, exactly one line on stderr that starts with ``nmlbench: error:`` and contains the
expected words, no traceback, and not one file created, changed or removed under the watched folders
(the output root and whatever else a case names). Because the CLI runs in-process, an exception that
escapes its error mapping fails the case instead of being turned into a line.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest

from nmlbench.cli import main


def snapshot(*roots: Path) -> dict[str, tuple[str, str]]:
    """Every path under `roots` with its kind and content hash (files) — directories count too."""
    state: dict[str, tuple[str, str]] = {}
    for root in roots:
        root = Path(root)
        if not root.exists():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            for d in dirnames:
                state[os.path.join(dirpath, d)] = ("dir", "")
            for f in filenames:
                p = os.path.join(dirpath, f)
                try:
                    digest = hashlib.sha256(Path(p).read_bytes()).hexdigest()
                except OSError:  # unreadable on purpose (permission cases)
                    digest = "unreadable"
                state[p] = ("file", digest)
    return state


def _diff(before: dict, after: dict) -> list[str]:
    changes = [f"created {p}" for p in after.keys() - before.keys()]
    changes += [f"removed {p}" for p in before.keys() - after.keys()]
    changes += [f"changed {p}" for p in before.keys() & after.keys() if before[p] != after[p]]
    return sorted(changes)


def reject(argv: Sequence[str], capsys: pytest.CaptureFixture, *, expect: str | Iterable[str],
           watch: Iterable[Path] = ()) -> str:
    """Run `nmlbench ARGV` and assert the bad-input contract; return the error line."""
    roots = [Path(os.environ["NMLBENCH_ROOT"]), *map(Path, watch)]
    capsys.readouterr()  # drop anything a fixture printed
    before = snapshot(*roots)
    code = main(list(argv))
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, f"exit {code}, stderr:\n{err}"
    assert "Traceback" not in err, err
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{err}"
    line = lines[0]
    assert line.startswith("nmlbench: error: "), line
    for word in [expect] if isinstance(expect, str) else expect:
        assert word.lower() in line.lower(), f"{word!r} not in {line!r}"
    changes = _diff(before, snapshot(*roots))
    assert not changes, "bad input wrote files:\n" + "\n".join(changes)
    return line
