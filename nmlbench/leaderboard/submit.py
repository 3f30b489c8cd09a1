"""`nmlbench leaderboard submit`: stage, check, and either accept a submission whole or leave nothing.

A submission is staged in a private temporary folder, checked there, and only on success moved
into `<leaderboard>/submissions/<normalised-name>/` with one atomic rename.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nmlbench.errors import UserError
from nmlbench.io import atomic_dir
from nmlbench.leaderboard.archive import Limits, stage
from nmlbench.leaderboard.board import BoardConfig, index_board, load_board
from nmlbench.leaderboard.catalog import NmlbenchCatalog, TaskCatalog
from nmlbench.leaderboard.checks import check_submission
from nmlbench.leaderboard.text import clean_text

# submission.json fields written by a person: stored and shown only after `clean_text`
FREE_TEXT = ("name", "author", "contact", "url", "description")


@dataclass(frozen=True)
class SubmitResult:
    """The outcome: accepted with its folder, or rejected with every reason."""

    accepted: bool
    name: str | None = None
    dest: Path | None = None
    reasons: list[str] = field(default_factory=list)


def _fold(ch: str) -> str:
    """'é' -> 'e' (a Latin letter with marks keeps its ASCII base); 'й', '名' stay themselves."""
    parts = unicodedata.normalize("NFKD", ch)
    base = "".join(c for c in parts if not unicodedata.combining(c))
    return base if base.isascii() else unicodedata.normalize("NFKC", ch)


def normalise_name(name: str) -> str:
    """'My Method (v2)!' -> 'my-method-v2', 'Шум 30%' -> 'шум-30': lowercase letters and digits
    of any script, single dashes between them; '' when the name has no letter or digit at all.

    Accented Latin letters fold to ASCII ('Café' -> 'cafe'), so folder names given before other
    scripts were accepted do not change; compatibility forms fold too ('Ｎａｍｅ' -> 'name'), so
    look-alike names share a folder and the second one is refused as taken.
    """
    folded = "".join(_fold(c) for c in clean_text(name)).casefold()
    slug = "".join(c if c.isalnum() else "-" for c in folded)
    return re.sub(r"-+", "-", slug).strip("-")[:64].strip("-")


def _clean_meta(meta: dict[str, Any], reasons: list[str]) -> dict[str, Any]:
    """submission.json with every free-text field passed through `clean_text` (what is stored)."""
    cleaned = {k: clean_text(v) if k in FREE_TEXT and isinstance(v, str) else v for k, v in meta.items()}
    for key in ("name", "author"):
        if key in meta and not cleaned[key]:
            reasons.append(f"submission.json: {key} has no visible characters; write a readable {key}")
    return cleaned


def submit(
    path: str | Path,
    leaderboard_dir: str | Path,
    catalog: TaskCatalog | None = None,
    limits: Limits | None = None,
    board: BoardConfig | None = None,
    accept: bool = True,
) -> SubmitResult:
    """Check the submission at `path` (dir, .tar.gz, .tgz, .tar, .zip); accept it or list every reason.

    `board`: what the board accepts; default: its board.yaml, else the public board's rules.
    `accept=False` runs every check and writes nothing (`nmlbench leaderboard check`).
    Raises CorruptFile (a UserError) when a file already on the board cannot be read: copies
    cannot be checked against a damaged board, so nothing is accepted until it is repaired.
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
        meta = _clean_meta(findings.meta, reasons)
        name = normalise_name(meta.get("name", "")) if meta.get("name") else None
        if meta.get("name") and not name:
            reasons.append(
                "submission.json: name has no letters or digits (of any script) to build a folder "
                "name from; add some"
            )
        dest = submissions / name if name else None
        if dest is not None and dest.exists():
            reasons.append(f"a submission named {name!r} already exists; choose another name")
        if reasons or dest is None:
            return SubmitResult(False, name=name, reasons=reasons)
        if not accept:
            return SubmitResult(True, name=name)
        with atomic_dir(dest) as out:
            for p in sorted(root.rglob("*")):
                if p.is_file() and p != root / "submission.json":
                    (out / p.relative_to(root)).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(p, out / p.relative_to(root))
            (out / "submission.json").write_text(
                json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
            )
        return SubmitResult(True, name=name, dest=dest)
