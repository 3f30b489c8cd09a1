"""`nmlbench leaderboard build`: every accepted submission -> LEADERBOARD.md, leaderboard.csv, index.html.

Reads JSON records only (the predictions were checked at submission time), aggregates them with
`nmlbench.report`, draws the figures and writes each output atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from nmlbench.config import dump_config, load_config
from nmlbench.errors import UserError
from nmlbench.io import atomic_path, write_text
from nmlbench.leaderboard import page
from nmlbench.paths import output_root
from nmlbench.report import plots as figures_mod
from nmlbench.report.aggregate import DisplayConfig, build_tables, load_records, task_order
from nmlbench.report.table import markdown_page

CAPTIONS = {
    "accuracy_vs_noise": "ID and OOD average accuracy against the pretraining noise rate, "
    "one line per method (band: sd over seeds).",
    "delta_heatmap": "Per-task change against the clean (0 %) checkpoint, mean over seeds.",
    "spectra": "Singular-value spectra of downstream test features per noise rate (log scale).",
    "spectrum_vs_noise": "SVE and LSVR of the features against the pretraining noise rate.",
}


def submission_dirs(leaderboard_dir: Path) -> list[Path]:
    subs = leaderboard_dir / "submissions"
    dirs = (
        sorted(d for d in subs.iterdir() if d.is_dir() and not d.name.startswith("."))
        if subs.is_dir()
        else []
    )
    if not dirs:
        raise UserError(f"no submissions in {subs}; add one with `nmlbench leaderboard submit PATH`")
    return dirs


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
    dirs = [Path(d) for d in results] or submission_dirs(lb)
    for d in dirs:
        if not d.is_dir():
            raise UserError(f"{d} is not a folder; pass folders of result records (results/<suite>)")
    df = load_records(dirs)
    tasks = task_order(df)
    cells, summary = build_tables(df, cfg)
    written = [write_text(out / "LEADERBOARD.md", markdown_page(summary, tasks, cfg))]
    with atomic_path(out / "leaderboard.csv") as tmp:
        summary.to_csv(tmp, index=False, float_format="%.6f")
    written.append(out / "leaderboard.csv")
    figures: dict[str, list[Path]] = {}
    if plots:
        records = [p for d in dirs for p in sorted(d.glob("*.json")) if p.name != "submission.json"]
        figures = figures_mod.make_all(
            cells,
            summary,
            tasks,
            figures_mod.load_spectra(records),
            out / "figs",
            cfg.metric_names.get(cfg.metric, cfg.metric),
        )
    pngs = {name: paths[0] for name, paths in figures.items()}
    written.append(write_text(out / "index.html", page.render(summary, tasks, cfg, pngs, CAPTIONS)))
    written.append(write_text(out / "build-config.yaml", dump_config(cfg)))
    return written + [p for paths in figures.values() for p in paths]
