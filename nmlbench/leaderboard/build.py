"""`nmlbench leaderboard build`: every accepted submission -> LEADERBOARD.md, leaderboard.csv, index.html.

Reads JSON records only (the predictions were checked at submission time), aggregates them with
`nmlbench.report`, draws the figures, and publishes all outputs as one set (`publish.staged`):
a build that fails or is interrupted leaves the previous outputs as they were.

A submission whose stored files cannot be read (not UTF-8, not strict JSON, not matching its
schema) is skipped with a warning naming the file, so one damaged folder does not take the
board down; folders passed with `--results` are the user's own and are refused instead.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from nmlbench.config import dump_config, load_config
from nmlbench.errors import UserError
from nmlbench.io import atomic_path, write_text
from nmlbench.leaderboard import page
from nmlbench.leaderboard.board import read_submission
from nmlbench.leaderboard.board import submission_dirs as accepted_dirs
from nmlbench.leaderboard.publish import staged
from nmlbench.leaderboard.records import CorruptFile
from nmlbench.leaderboard.text import csv_cell
from nmlbench.paths import output_root
from nmlbench.report import plots as figures_mod
from nmlbench.report.aggregate import DisplayConfig, build_tables, load_records, of_kind, task_order
from nmlbench.report.table import markdown_page, markdown_table, md_escape

log = logging.getLogger(__name__)

CAPTIONS = {
    "accuracy_vs_noise": "ID and OOD average accuracy against the pretraining noise rate, "
    "one line per method (band: sd over seeds).",
    "delta_heatmap": "Per-task change against the clean (0 %) checkpoint, mean over seeds.",
    "spectra": "Singular-value spectra of downstream test features per noise rate (log scale).",
    "spectrum_vs_noise": "SVE and LSVR of the features against the pretraining noise rate.",
}


def submission_dirs(leaderboard_dir: Path) -> list[Path]:
    """The accepted submissions whose files can be read; the others are skipped with a warning."""
    subs = leaderboard_dir / "submissions"
    dirs = accepted_dirs(subs)
    if not dirs:
        raise UserError(f"no submissions in {subs}; add one with `nmlbench leaderboard submit PATH`")
    readable, skipped = [], []
    for d in dirs:
        try:
            read_submission(d)
            readable.append(d)
        except CorruptFile as e:
            skipped.append(f"{e}")
    if not readable:  # one line with every reason, nothing to build
        raise UserError(
            f"no readable submission in {subs}: {'; '.join(skipped)}; restore the files from version "
            "control or remove the damaged submission folders"
        )
    for why in skipped:
        log.warning("skipped a damaged submission: %s; restore it or remove its folder", why)
    return readable


def _csv(summary: pd.DataFrame) -> pd.DataFrame:
    """Text cells and headers that no spreadsheet evaluates (see `text.csv_cell`)."""
    out = summary.rename(columns=csv_cell)
    for col in out.columns:
        if out[col].map(lambda v: isinstance(v, str)).any():
            out[col] = out[col].map(lambda v: csv_cell(v) if isinstance(v, str) else v)
    return out


DenseSection = tuple[pd.DataFrame, list[str], DisplayConfig]  # summary, tasks, config of one AP metric


def dense_sections(df: pd.DataFrame, cfg: DisplayConfig) -> list[DenseSection]:
    """(summary, tasks, config) for box AP, and mask AP where segmentation records exist."""
    out = []
    for metric in ("box_ap", "mask_ap"):
        if metric == cfg.metric:  # already the main table (`--set metric=box_ap`)
            continue
        part = of_kind(df, metric)
        if part.empty or part[metric].isna().all():
            continue
        part = part[part[metric].notna()]
        dcfg = dataclasses.replace(cfg, metric=metric)
        out.append((build_tables(part, dcfg)[1], task_order(part), dcfg))
    return out


def dense_markdown(summary: pd.DataFrame, tasks: list[str], cfg: DisplayConfig) -> str:
    metric = cfg.metric_names.get(cfg.metric, cfg.metric)
    return (f"\n## Dense transfer: {md_escape(metric)}\n\nCOCO {md_escape(metric)} (COCOeval, percent) on "
            "detection / instance segmentation tasks, tabled apart from classification.\n\n"
            + markdown_table(summary, tasks, cfg))


def build(
    leaderboard_dir: str | Path,
    out_dir: str | Path | None = None,
    config: str | Path | None = None,
    overrides: Sequence[str] = (),
    plots: bool = True,
    results: Sequence[str | Path] = (),
) -> list[Path]:
    """Aggregate all submissions; return the written files (markdown, CSV, page, config, figures).

    `results`: folders of result records (e.g. `nmlbench-out/results/<suite>`) to show instead of
    the accepted submissions: a private board over one's own results, with no submit step;
    written to `out_dir`, else $NMLBENCH_ROOT/board.
    """
    lb = Path(leaderboard_dir)
    # Your own results never overwrite a board's files: they default to $NMLBENCH_ROOT/board.
    out = Path(out_dir) if out_dir else (output_root() / "board" if results else lb)
    cfg_path = Path(config) if config else (lb / "schema.yaml" if (lb / "schema.yaml").is_file() else None)
    cfg = load_config(DisplayConfig, cfg_path, overrides)
    for d in map(Path, results):
        if not d.is_dir():
            raise UserError(f"{d} is not a folder; pass folders of result records (results/<suite>)")
    dirs = [Path(d) for d in results] or submission_dirs(lb)
    df = load_records(dirs)  # everything is read and checked before anything is written
    classify = of_kind(df, cfg.metric)
    dense = dense_sections(df, cfg)  # COCO AP tables of dense tasks, apart from classification
    tasks = task_order(classify)
    cells, summary = build_tables(df, cfg) if not classify.empty else (None, None)
    with staged(out) as stage:
        md = markdown_page(summary, tasks, cfg) if summary is not None else f"# {md_escape(cfg.title)}\n"
        write_text(stage / "LEADERBOARD.md", md + "".join(dense_markdown(s, t, c) for s, t, c in dense))
        order = ["LEADERBOARD.md"]
        if summary is not None:
            with atomic_path(stage / "leaderboard.csv") as tmp:
                _csv(summary).to_csv(tmp, index=False, float_format="%.6f")
            order.append("leaderboard.csv")
        for s_, _, c in dense:
            with atomic_path(stage / f"leaderboard-{c.metric}.csv") as tmp:
                _csv(s_).to_csv(tmp, index=False, float_format="%.6f")
            order.append(f"leaderboard-{c.metric}.csv")
        figures: dict[str, list[Path]] = {}
        if plots and summary is not None:
            records = [p for d in dirs for p in sorted(d.glob("*.json")) if p.name != "submission.json"]
            figures = figures_mod.make_all(
                cells,
                summary,
                tasks,
                figures_mod.load_spectra(records),
                stage / "figs",
                cfg.metric_names.get(cfg.metric, cfg.metric),
            )
        pngs = {name: paths[0] for name, paths in figures.items()}
        write_text(stage / "index.html", page.render(summary, tasks, cfg, pngs, CAPTIONS, dense))
        write_text(stage / "build-config.yaml", dump_config(cfg))
        order += ["index.html", "build-config.yaml"]
        figs = [p.relative_to(stage).as_posix() for paths in figures.values() for p in paths]
    return [out / rel for rel in order + figs]
