"""`nmlbench leaderboard submit`: stage, check, and either accept a submission whole or leave nothing.

A submission is staged in a private temporary folder, checked there, and only on success moved
into `<leaderboard>/submissions/<normalised-name>/` with one atomic rename.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from nmlbench.errors import UserError
from nmlbench.io import atomic_dir
from nmlbench.leaderboard.archive import Limits, stage
from nmlbench.leaderboard.board import BoardConfig, index_board, load_board
from nmlbench.leaderboard.catalog import NmlbenchCatalog, TaskCatalog
from nmlbench.leaderboard.checks import check_submission


@dataclass(frozen=True)
class SubmitResult:
    """The outcome: accepted with its folder, or rejected with every reason."""

    accepted: bool
    name: str | None = None
    dest: Path | None = None
    reasons: list[str] = field(default_factory=list)


def normalise_name(name: str) -> str:
    """'My Method (v2)!' -> 'my-method-v2': ASCII lowercase letters, digits and single dashes."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:64].strip("-")


def submit(
    path: str | Path,
    leaderboard_dir: str | Path,
    catalog: TaskCatalog | None = None,
    limits: Limits | None = None,
    board: BoardConfig | None = None,
) -> SubmitResult:
    """Check the submission at `path` (dir, .tar.gz, .tgz, .tar, .zip); accept it or list every reason.

    `board`: what the board accepts; default: its board.yaml, else the public board's rules.
    """
    src = Path(path)
    if not src.exists() and not src.is_symlink():
        raise UserError(f"{src} does not exist; pass a results directory or a .tar.gz/.zip archive")
    submissions = Path(leaderboard_dir) / "submissions"
    catalog = catalog or NmlbenchCatalog()
    board = board or load_board(leaderboard_dir)
    with tempfile.TemporaryDirectory(prefix="nmlbench-submit-") as tmp:
        root, reasons = stage(src, Path(tmp) / "staged", limits or Limits())
        if reasons:  # unsafe or unreadable content: do not parse any of it
            return SubmitResult(False, reasons=reasons)
        findings = check_submission(root, catalog, index_board(submissions), board)
        reasons = findings.reasons
        name = normalise_name(findings.meta.get("name", "")) if findings.meta else None
        if findings.meta and not name:
            reasons.append("submission.json: name has no letters or digits to build a folder name from")
        dest = submissions / name if name else None
        if dest is not None and dest.exists():
            reasons.append(f"a submission named {name!r} already exists; choose another name")
        if reasons or dest is None:
            return SubmitResult(False, name=name, reasons=reasons)
        with atomic_dir(dest) as out:
            for p in sorted(root.rglob("*")):
                if p.is_file():
                    (out / p.relative_to(root)).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(p, out / p.relative_to(root))
        return SubmitResult(True, name=name, dest=dest)
