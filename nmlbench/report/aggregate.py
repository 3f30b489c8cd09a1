"""Result records -> pandas tables: one row per model x noise x method, mean ± std over seeds.

Deltas are taken per seed pair against the clean (0 %) checkpoint of the same submission,
architecture, noise kind and pretraining seed, evaluated with the same method and seed; ID and OOD
are kept apart. Reads JSON only (no torch), so it runs anywhere the records are.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nmlbench.errors import UserError

ROW_KEYS = ["submission", "author", "model", "noise_kind", "noise_rate", "method"]
SEED_KEYS = ["pretrain_seed", "seed"]
METRICS = ("top1", "macro_f1")
SPECTRUM_KEYS = ("sve", "lsvr_neglog", "lsvr_ratio", "effective_rank")


@dataclass(frozen=True)
class DisplayConfig:
    """How the leaderboard is shown (leaderboard/schema.yaml); the numbers never depend on it."""

    title: str = "nmlbench leaderboard"
    metric: str = "top1"  # record metric shown in the table: top1 | macro_f1
    decimals: int = 2
    sort_by: str = "id_avg"  # id_avg | ood_avg | id_delta | ood_delta | a task name
    higher_is_better: bool = True
    metric_names: dict[str, str] = field(
        default_factory=lambda: {"top1": "Top-1 (%)", "macro_f1": "Macro-F1 (%)"}
    )

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {self.metric!r}")
        if not 0 <= self.decimals <= 6:
            raise ValueError(f"decimals must be in [0, 6], got {self.decimals}")


def _flatten(rec: dict[str, Any], submission: str, author: str) -> dict[str, Any]:
    noise = rec["model"].get("noise") or {}
    spec = rec.get("spectrum") or {}
    row = {
        "submission": submission,
        "author": author,
        "suite": rec["suite"],
        "model": rec["model"]["arch"],
        "model_name": rec["model"]["name"],
        "noise_kind": noise.get("kind", "none"),
        "noise_rate": float(noise.get("rate", math.nan)),
        "pretrain_seed": rec["model"].get("pretrain_seed"),
        "method": rec["method"]["name"],
        "task": rec["task"]["name"],
        "domain": rec["task"]["domain"],
        "seed": rec["seed"],
        "run_id": rec["run_id"],
    }
    row.update({m: float(rec["metrics"][m]) for m in METRICS})
    row.update({k: float(spec[k]) if k in spec else math.nan for k in SPECTRUM_KEYS})
    row["spectrum_centring"] = spec.get("centring")
    return row


def load_records(dirs: Iterable[str | Path], validate: bool = True) -> pd.DataFrame:
    """One row per result record found directly in each folder; `submission.json` names its author."""
    from nmlbench.leaderboard.schema import schema_errors

    rows = []
    for d in map(Path, dirs):
        meta_path = d / "submission.json"
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
        submission, author = meta.get("name", d.name), meta.get("author", "")
        for path in sorted(d.glob("*.json")):
            if path.name == "submission.json":
                continue
            rec = json.loads(path.read_text(encoding="utf-8"))
            if validate and (errors := schema_errors(rec, "result")):
                raise UserError(f"{path}: not a valid result record ({errors[0]}); re-run nmlbench evaluate")
            rows.append(_flatten(rec, submission, author))
    if not rows:
        raise UserError(f"no result records in {', '.join(map(str, dirs))}; run nmlbench evaluate first")
    # pretrain_seed is null for models nmlbench did not pretrain; -1 keeps them in the groupby.
    return pd.DataFrame(rows).fillna({"pretrain_seed": -1}).astype({"pretrain_seed": int, "seed": int})


def task_order(df: pd.DataFrame) -> list[str]:
    """ID tasks first, then OOD, each alphabetical: a stable column order."""
    pairs = df[["task", "domain"]].drop_duplicates()
    return [t for dom in ("id", "ood") for t in sorted(pairs.loc[pairs.domain == dom, "task"])]


def cell_table(df: pd.DataFrame, metric: str = "top1") -> pd.DataFrame:
    """One row per (row keys, seed pair): per-task metric, ID and OOD averages."""
    keys = ROW_KEYS + SEED_KEYS
    wide = df.pivot_table(index=keys, columns="task", values=metric, aggfunc="mean", dropna=False)
    wide = wide.dropna(how="all").reset_index()
    wide.columns.name = None
    domains = df.drop_duplicates("task").set_index("task")["domain"]
    for dom in ("id", "ood"):
        tasks = [t for t in task_order(df) if domains[t] == dom]
        wide[f"{dom}_avg"] = wide[tasks].mean(axis=1, skipna=False) if tasks else np.nan
    return add_deltas(wide, task_order(df))


def add_deltas(cells: pd.DataFrame, tasks: list[str]) -> pd.DataFrame:
    """`<col>_delta` = value minus the clean (rate 0) cell of the same recipe, method and seeds."""
    match = ["submission", "model", "noise_kind", "method"] + SEED_KEYS
    cols = ["id_avg", "ood_avg"] + tasks
    clean = cells.loc[cells.noise_rate == 0.0, match + cols]
    merged = cells.merge(clean, on=match, how="left", suffixes=("", "__clean"), validate="many_to_one")
    for c in cols:
        merged[f"{c}_delta"] = merged[c] - merged[f"{c}__clean"]
    merged = merged.drop(columns=[f"{c}__clean" for c in cols])
    return merged.rename(columns={"id_avg_delta": "id_delta", "ood_avg_delta": "ood_delta"})


def summarise(cells: pd.DataFrame, tasks: list[str], cfg: DisplayConfig | None = None) -> pd.DataFrame:
    """Mean and sample std (ddof 1) over seed pairs per row; `n_seeds` counts them; sorted for display."""
    cfg = cfg or DisplayConfig()
    value_cols = ["id_avg", "id_delta", "ood_avg", "ood_delta"] + tasks + [f"{t}_delta" for t in tasks]
    grouped = cells.groupby(ROW_KEYS, dropna=False)[value_cols]
    out = grouped.mean().add_suffix("_mean").join(grouped.std(ddof=1).add_suffix("_std"))
    out["n_seeds"] = cells.groupby(ROW_KEYS, dropna=False).size()
    out = out.reset_index()
    sort_col = f"{cfg.sort_by}_mean"
    if sort_col not in out:
        raise UserError(
            f"sort_by {cfg.sort_by!r} is not a column; use id_avg, ood_avg, id_delta, ood_delta "
            f"or a task: {', '.join(tasks)}"
        )
    ties = ["submission", "model", "noise_rate", "method"]
    out = out.sort_values(
        [sort_col] + ties,
        ascending=[not cfg.higher_is_better] + [True] * len(ties),
        na_position="last",
        kind="mergesort",
    )
    return out.reset_index(drop=True)


def build_tables(df: pd.DataFrame, cfg: DisplayConfig | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(cells, summary) for the configured metric."""
    cfg = cfg or DisplayConfig()
    tasks = task_order(df)
    cells = cell_table(df, cfg.metric)
    return cells, summarise(cells, tasks, cfg)
