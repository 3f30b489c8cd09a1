"""A board's own settings (`<leaderboard-dir>/board.yaml`) and what it already holds.

The public board (no board.yaml, or `user_tasks: false`) takes results on registered tasks
only. A private board, one a researcher runs over their own suite, sets `user_tasks: true`:
records of task YAMLs (`task.builtin: false`) are then accepted, checked against the task file
they name, and every task name on the board is pinned to one definition hash (`task.key`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from nmlbench.config import bounded, load_config
from nmlbench.leaderboard.content import PredictionsError, file_content
from nmlbench.leaderboard.records import CorruptFile, read_checked

BOARD_FILE = "board.yaml"
PRIVATE_HINT = (
    f"run a private board for your own tasks: put `user_tasks: true` in <dir>/{BOARD_FILE} and "
    "`nmlbench leaderboard submit PATH --leaderboard-dir <dir>` (see docs/leaderboard.md)"
)


@dataclass(frozen=True)
class BoardConfig:
    """What a board accepts; the public board keeps the defaults."""

    # Accept results on task YAMLs (task.builtin false), checked against the YAML they name;
    # the YAML and its test data must be readable where `submit` runs.
    user_tasks: bool = False
    # Identical prediction tables are evidence of copying only when they share enough mistakes:
    # on a small or easy test split two honest checkpoints agree everywhere (all right, or the same
    # one hard sample wrong). A table with fewer wrong predictions than this is never called a copy.
    copy_min_errors: int = bounded(10, ge=0)

    def __post_init__(self) -> None:
        if self.copy_min_errors < 0:
            raise ValueError(f"copy_min_errors must be >= 0, got {self.copy_min_errors}")


def load_board(leaderboard_dir: str | Path) -> BoardConfig:
    """`<leaderboard-dir>/board.yaml` (strict keys), else the public board's defaults."""
    path = Path(leaderboard_dir) / BOARD_FILE
    return load_config(BoardConfig, path if path.is_file() else None, ())


def is_user_task(task: dict[str, Any]) -> bool:
    """Records written before `task.builtin` existed are of registered tasks."""
    return task.get("builtin") is False or task.get("origin") not in (None, "builtin")


def task_ref(task: dict[str, Any]) -> str:
    """How to look a record's task up: its YAML path for user tasks, its name otherwise."""
    return str(task["origin"]) if is_user_task(task) and task.get("origin") else str(task["name"])


@dataclass
class BoardIndex:
    """What accepted submissions hold: prediction contents and task definitions."""

    contents: dict[str, str] = field(default_factory=dict)  # content hash -> submission folder
    task_keys: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (key, folder)


def submission_dirs(submissions_dir: Path) -> list[Path]:
    """Accepted submissions: the folders of `submissions/`, leaving out hidden ones (`.x.tmp` of
    an accept that was killed before its rename is not a submission)."""
    if not submissions_dir.is_dir():
        return []
    return sorted(d for d in submissions_dir.iterdir() if d.is_dir() and not d.name.startswith("."))


def damaged(problem: CorruptFile | str, folder: Path) -> CorruptFile:
    """A stored file the board cannot use: say which, and how to repair the board."""
    return CorruptFile(
        f"the board is damaged: {problem}; restore {folder} from version control or remove that "
        "submission folder, then try again"
    )


def read_submission(folder: Path) -> tuple[dict[str, Any], dict[Path, dict[str, Any]]]:
    """An accepted submission's metadata and records, each read strictly and schema-checked.

    Raises CorruptFile naming the first file that cannot be used.
    """
    meta_path = folder / "submission.json"
    meta = read_checked(meta_path, "submission") if meta_path.is_file() else {}
    records = {
        p: read_checked(p, "result") for p in sorted(folder.glob("*.json")) if p.name != "submission.json"
    }
    return meta, records


def index_board(submissions_dir: Path) -> BoardIndex:
    """Scan every accepted submission (their files were checked when they were accepted).

    Contents are decoded from the predictions files, so a copy is found whatever bytes it was
    re-written with; degenerate tables are left out (they are never copies). A stored file that
    cannot be read stops the scan with CorruptFile: copies cannot be checked against a board
    that is not whole.
    """
    index = BoardIndex()
    for folder in submission_dirs(submissions_dir):
        try:
            _, records = read_submission(folder)
        except CorruptFile as e:
            raise damaged(e, folder) from None
        for rec in records.values():
            ppath = folder / rec["predictions"]["path"]
            try:
                digest, flags = file_content(rec["task"]["name"], ppath)
            except (OSError, pa.ArrowException, PredictionsError) as e:
                why = "missing" if isinstance(e, FileNotFoundError) else "unreadable"
                detail = (str(e).splitlines() or [type(e).__name__])[0][:120]
                raise damaged(f"{ppath}: {why} predictions ({detail})", folder) from None
            if "degenerate" not in flags:
                index.contents.setdefault(digest, folder.name)
            if rec["task"].get("key") and is_user_task(rec["task"]):
                index.task_keys.setdefault(rec["task"]["name"], (rec["task"]["key"], folder.name))
    return index
