"""Result records -> pandas tables: one row per checkpoint recipe x method, spread over seeds apart.

Rows are identified by what the checkpoint is, never by its architecture alone: upstream data,
noise recipe, architecture and the pretraining recipe's key (`model.pretrain_key`, the same for
every pretraining seed of one recipe); models nmlbench did not pretrain by their `model.key`.
Each row averages its checkpoints (one per pretraining seed), each checkpoint its tuning seeds,
and the two spreads are reported apart. Deltas are taken per (pretraining seed, tuning seed)
against the clean (rate 0, any kind) checkpoint of the same submission, upstream data,
architecture and pretraining seed, tuned with the same method and seed; ID and OOD are kept
apart. Reads JSON only (no torch), so it runs anywhere the records are.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nmlbench.config import bounded
from nmlbench.errors import UserError

log = logging.getLogger(__name__)

# A summary row: one recipe of one architecture on one upstream data set, tuned with one method.
ROW_KEYS = [
    "submission",
    "author",
    "modality",  # image or text: a row's averages are over its own modality's tasks
    "data",
    "model",
    "image_size",
    "noise_kind",
    "noise_rate",
    "recipe",
    "group",
    "method",
]
CKPT_KEYS = ["pretrain_seed", "ckpt"]  # one checkpoint inside a row
SEED_KEYS = ["pretrain_seed", "seed"]
# The clean reference of a cell: same upstream data, architecture, pretraining seed, method, seed.
CLEAN_MATCH = ["submission", "data", "model", "image_size", "method", "pretrain_seed", "seed"]
METRICS = ("top1", "macro_f1")
# dense tasks (detection / instance segmentation): COCO AP in percent, tabled apart (docs/dense.md)
DENSE_METRICS = ("box_ap", "box_ap50", "box_ap75", "mask_ap", "mask_ap50", "mask_ap75")
DENSE_TYPES = ("detection", "instance_segmentation")
SPECTRUM_KEYS = ("sve", "lsvr_neglog", "lsvr_ratio", "effective_rank")
UNKNOWN = ""  # data / recipe / key of records written before those fields existed


@dataclass(frozen=True)
class DisplayConfig:
    """How the leaderboard is shown (leaderboard/schema.yaml); the numbers never depend on it."""

    title: str = "nmlbench leaderboard"
    metric: str = "top1"  # record metric shown in the table: top1 | macro_f1
    decimals: int = bounded(2, ge=0, le=6)
    sort_by: str = "id_avg"  # id_avg | ood_avg | id_delta | ood_delta | a task name
    higher_is_better: bool = True
    metric_names: dict[str, str] = field(
        default_factory=lambda: {
            "top1": "Top-1 (%)", "macro_f1": "Macro-F1 (%)", "box_ap": "box AP", "box_ap50": "box AP50",
            "box_ap75": "box AP75", "mask_ap": "mask AP", "mask_ap50": "mask AP50", "mask_ap75": "mask AP75",
        }
    )

    def __post_init__(self) -> None:
        if self.metric not in METRICS + DENSE_METRICS:
            known = ", ".join(METRICS + DENSE_METRICS)
            raise ValueError(f"metric must be one of {known}, got {self.metric!r}")
        if not 0 <= self.decimals <= 6:
            raise ValueError(f"decimals must be in [0, 6], got {self.decimals}")


def _group(model: dict[str, Any]) -> str:
    """The recipe a checkpoint belongs to, shared by its pretraining seeds.

    nmlbench checkpoints: `pretrain_key` (seed-free by construction). Models nmlbench did not
    pretrain: their `key` (weights, tag, image size), else their name. Older nmlbench records
    have neither: '' keeps today's grouping by data, architecture and noise.
    """
    if model.get("pretrain_key"):
        return str(model["pretrain_key"])
    if model.get("pretrain_seed") is None:
        return str(model.get("key") or f"name:{model['name']}")
    return UNKNOWN


def _user_task(task: dict[str, Any]) -> bool:
    return task.get("builtin") is False or task.get("origin") not in (None, "builtin")


def _flatten(rec: dict[str, Any], submission: str, author: str) -> dict[str, Any]:
    model = rec["model"]
    noise = model.get("noise") or {}
    spec = rec.get("spectrum") or {}
    row = {
        "submission": submission,
        "author": author,
        "suite": rec["suite"],
        "data": model.get("data") or UNKNOWN,
        "model": model["arch"],
        "image_size": int(model.get("image_size") or 0),  # 0: not recorded
        "model_name": model["name"],
        "noise_kind": noise.get("kind", "none"),
        "noise_rate": float(noise.get("rate", math.nan)),
        "recipe": noise.get("recipe") or UNKNOWN,
        "group": _group(model),
        "ckpt": model.get("key") or model["name"],  # this checkpoint, among its row's seeds
        "pretrain_seed": model.get("pretrain_seed"),
        "method": rec["method"]["name"],
        "task": rec["task"]["name"],
        # user tasks (task YAMLs) are told apart by definition hash; registered ones by name
        "task_key": (rec["task"].get("key") or UNKNOWN) if _user_task(rec["task"]) else UNKNOWN,
        "domain": rec["task"]["domain"],
        "modality": rec["task"].get("modality") or "image",
        "seed": rec["seed"],
        "run_id": rec["run_id"],
        "flags": ",".join(sorted(rec.get("flags") or [])),
    }
    # classification records hold top1/macro_f1, dense ones COCO AP: the other kind's columns stay NaN
    row["dense"] = rec["task"].get("type", "classification") in DENSE_TYPES
    row.update({m: float(rec["metrics"].get(m, math.nan)) for m in METRICS + DENSE_METRICS})
    row.update({k: float(spec[k]) if k in spec else math.nan for k in SPECTRUM_KEYS})
    row["spectrum_centring"] = spec.get("centring")
    return row


def load_records(dirs: Iterable[str | Path], validate: bool = True) -> pd.DataFrame:
    """One row per result record found directly in each folder; `submission.json` names its author.

    Files are read strictly (UTF-8, standard JSON, finite numbers) and, with `validate`, checked
    against their schema; one that fails raises a UserError naming it (`leaderboard build` skips
    damaged submissions before calling this).
    """
    from nmlbench.leaderboard.records import read_checked, read_json

    def read(path: Path, kind: str) -> Any:
        return read_checked(path, kind) if validate else read_json(path)

    rows = []
    for d in map(Path, dirs):
        meta_path = d / "submission.json"
        meta = read(meta_path, "submission") if meta_path.is_file() else {}
        submission, author = meta.get("name", d.name), meta.get("author", "")
        for path in sorted(d.glob("*.json")):
            if path.name == "submission.json":
                continue
            rows.append(_flatten(read(path, "result"), submission, author))
    if not rows:
        raise UserError(f"no result records in {', '.join(map(str, dirs))}; run nmlbench evaluate first")
    # pretrain_seed is null for models nmlbench did not pretrain; -1 keeps them in the groupby.
    df = pd.DataFrame(rows).fillna({"pretrain_seed": -1}).astype({"pretrain_seed": int, "seed": int})
    return _split_task_names(df)


def _split_task_names(df: pd.DataFrame) -> pd.DataFrame:
    """Two task definitions under one name (two `train.yaml` in two folders) get two columns:
    'train@1a2b3c4d', named by their definition hash, never one averaged column."""
    known = df[df.task_key != UNKNOWN]
    per_name = known.groupby("task")["task_key"].nunique()
    clash = df.task.isin(per_name[per_name > 1].index) & (df.task_key != UNKNOWN)
    if clash.any():
        df = df.copy()
        df.loc[clash, "task"] = df.loc[clash, "task"] + "@" + df.loc[clash, "task_key"].str[:8]
    return df


def task_order(df: pd.DataFrame) -> list[str]:
    """ID tasks first, then OOD, each alphabetical: a stable column order."""
    pairs = df[["task", "domain"]].drop_duplicates()
    return [t for dom in ("id", "ood") for t in sorted(pairs.loc[pairs.domain == dom, "task"])]


def cell_table(df: pd.DataFrame, metric: str = "top1") -> pd.DataFrame:
    """One row per (row keys, checkpoint, tuning seed): per-task metric, ID and OOD averages."""
    keys = ROW_KEYS + CKPT_KEYS + ["seed"]
    wide = df.pivot_table(index=keys, columns="task", values=metric, aggfunc="mean", dropna=False)
    wide = wide.dropna(how="all").reset_index()
    wide.columns.name = None
    first = df.drop_duplicates("task").set_index("task")
    domains = first["domain"]
    modality = first["modality"] if "modality" in first else pd.Series("image", index=first.index)
    if "modality" not in wide:
        wide = wide.assign(modality="image")
    for dom in ("id", "ood"):
        wide[f"{dom}_avg"] = np.nan
        for mod in wide["modality"].unique():  # image rows average image tasks, text rows text tasks
            tasks = [t for t in task_order(df) if domains[t] == dom and modality[t] == mod]
            rows = wide["modality"] == mod
            if tasks:
                wide.loc[rows, f"{dom}_avg"] = wide.loc[rows, tasks].mean(axis=1, skipna=False)
    return add_deltas(wide, task_order(df))


def add_deltas(cells: pd.DataFrame, tasks: list[str]) -> pd.DataFrame:
    """`<col>_delta` = value minus the clean cell of the same data, architecture, method and seeds.

    Clean means rate 0 of any kind (a manifest at 0 %, or 'none' without one). Where several
    clean checkpoints qualify (two clean recipes of one architecture, data and seed), none is
    picked: the delta stays unknown and a warning names the cells, never a silent average.
    """
    for col, default in (("data", UNKNOWN), ("image_size", 0), ("submission", ""), ("ckpt", "")):
        if col not in cells:
            cells = cells.assign(**{col: default})
    cols = ["id_avg", "ood_avg"] + tasks
    clean = cells.loc[cells.noise_rate == 0.0, CLEAN_MATCH + ["ckpt"] + cols]
    per_key = clean.groupby(CLEAN_MATCH, dropna=False)["ckpt"].transform("nunique")
    if (per_key > 1).any():
        amb = clean.loc[per_key > 1, CLEAN_MATCH].drop_duplicates()
        log.warning(
            "%d cell(s) have more than one clean (0 %%) checkpoint of the same data, architecture and "
            "seed (e.g. %s); their deltas are left empty",
            len(amb),
            amb.iloc[0].to_dict(),
        )
    clean = clean.loc[per_key == 1].groupby(CLEAN_MATCH, dropna=False)[cols].mean().reset_index()
    merged = cells.merge(clean, on=CLEAN_MATCH, how="left", suffixes=("", "__clean"), validate="many_to_one")
    for c in cols:
        merged[f"{c}_delta"] = merged[c] - merged[f"{c}__clean"]
    merged = merged.drop(columns=[f"{c}__clean" for c in cols])
    return merged.rename(columns={"id_avg_delta": "id_delta", "ood_avg_delta": "ood_delta"})


def summarise(cells: pd.DataFrame, tasks: list[str], cfg: DisplayConfig | None = None) -> pd.DataFrame:
    """Per row: `_mean` (over checkpoints of their tuning-seed means), the spreads apart, counts.

    `_sd_pretrain`: sample std (ddof 1) over pretraining seeds of the per-checkpoint means.
    `_sd_tune`: mean over checkpoints of the sample std over tuning seeds within one checkpoint.
    `n_pretrain` checkpoints, `n_tune_min`/`n_tune_max` tuning seeds per checkpoint, `n_seeds` pairs.
    """
    cfg = cfg or DisplayConfig()
    for col, default in (
        ("data", UNKNOWN),
        ("image_size", 0),
        ("recipe", UNKNOWN),
        ("group", UNKNOWN),
        ("modality", "image"),
    ):
        if col not in cells:
            cells = cells.assign(**{col: default})
    if "ckpt" not in cells:
        cells = cells.assign(ckpt=cells["pretrain_seed"].astype(str))
    value_cols = ["id_avg", "id_delta", "ood_avg", "ood_delta"] + tasks + [f"{t}_delta" for t in tasks]
    per_ckpt = cells.groupby(ROW_KEYS + CKPT_KEYS, dropna=False)[value_cols]
    ck_mean, ck_sd, ck_n = per_ckpt.mean(), per_ckpt.std(ddof=1), per_ckpt.size()
    rows = ck_mean.groupby(level=ROW_KEYS, dropna=False)
    out = rows.mean().add_suffix("_mean")
    out = out.join(rows.std(ddof=1).add_suffix("_sd_pretrain"))
    out = out.join(ck_sd.groupby(level=ROW_KEYS, dropna=False).mean().add_suffix("_sd_tune"))
    counts = ck_n.groupby(level=ROW_KEYS, dropna=False)
    out["n_pretrain"] = counts.size()
    out["n_tune_min"], out["n_tune_max"], out["n_seeds"] = counts.min(), counts.max(), counts.sum()
    out = out.reset_index()
    sort_col = f"{cfg.sort_by}_mean"
    if sort_col not in out:
        raise UserError(
            f"sort_by {cfg.sort_by!r} is not a column; use id_avg, ood_avg, id_delta, ood_delta "
            f"or a task: {', '.join(tasks)}"
        )
    ties = ["submission", "data", "model", "noise_rate", "recipe", "group", "method"]
    out = out.sort_values(
        [sort_col] + ties,
        ascending=[not cfg.higher_is_better] + [True] * len(ties),
        na_position="last",
        kind="mergesort",
    )
    return out.reset_index(drop=True)


def of_kind(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The records a metric belongs to: dense tasks for AP metrics, classification tasks otherwise,
    so AP never enters a classification average (and top-1 never a dense one)."""
    dense = df["dense"] if "dense" in df else pd.Series(False, index=df.index)
    return df[dense == (metric in DENSE_METRICS)]


def build_tables(df: pd.DataFrame, cfg: DisplayConfig | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(cells, summary) for the configured metric, over the records of its kind (see `of_kind`)."""
    cfg = cfg or DisplayConfig()
    df = of_kind(df, cfg.metric)
    if df.empty:
        other = "box_ap or mask_ap (dense tasks)" if cfg.metric in METRICS else "top1 or macro_f1"
        raise UserError(f"no result records with {cfg.metric}: classification and dense tasks are tabled "
                        f"apart; use the metric {other}")
    tasks = task_order(df)
    cells = cell_table(df, cfg.metric)
    summary = summarise(cells, tasks, cfg)
    return cells, summary.merge(flag_counts(df), on=ROW_KEYS, how="left", validate="one_to_one")


def flag_counts(df: pd.DataFrame) -> pd.DataFrame:
    """Per row: `flags`, e.g. 'degenerate 2/12' (records flagged / records), '' when none is."""
    if "flags" not in df:
        df = df.assign(flags="")
    per_row = df.groupby(ROW_KEYS, dropna=False)["flags"]

    def describe(flags: pd.Series) -> str:
        sets = [set(joined.split(",")) - {""} for joined in flags]
        names = sorted(set().union(*sets))
        return ", ".join(f"{n} {sum(n in s for s in sets)}/{len(sets)}" for n in names)

    return per_row.apply(describe).rename("flags").reset_index()
