"""Where outputs go: $NMLBENCH_ROOT, else ./nmlbench-out; the mini data cache under it."""
from __future__ import annotations

import os
import sys
from pathlib import Path


def output_root(root: str | Path | None = None) -> Path:
    """The root for noise manifests, checkpoints, features and results."""
    return Path(root or os.environ.get("NMLBENCH_ROOT") or "nmlbench-out")


def data_root(root: str | Path | None = None) -> Path:
    """Where datasets live (--data-root, else $NMLBENCH_DATA, else ~/.cache/nmlbench/data)."""
    env = os.environ.get("NMLBENCH_DATA")
    return Path(root or env or Path.home() / ".cache" / "nmlbench" / "data")


def shipped_dir(name: str) -> Path:
    """A top-level folder of the repository (`noise_recipes`, `leaderboard/schema`).

    From a checkout (editable install) it is the folder itself; a wheel installs a copy under
    `<prefix>/share/nmlbench/` (pyproject's data-files), so non-editable installs find it too.
    """
    repo = Path(__file__).resolve().parents[1] / name
    return repo if repo.is_dir() else Path(sys.prefix) / "share" / "nmlbench" / name
