"""Figures: every one is drawn when the data supports it, in PNG and SVG, identically on reruns."""

from __future__ import annotations

from pathlib import Path

import pytest
from lb_fakes import make_submission, study_models

from nmlbench.errors import UserError
from nmlbench.report import plots
from nmlbench.report.aggregate import build_tables, load_records, task_order


@pytest.fixture
def tables(tmp_path: Path):
    sub = make_submission(
        tmp_path / "s", models=study_models((0.0, 0.2, 0.5), (0,)), methods=("lp", "nmtune"), spectrum=True
    )
    df = load_records([sub])
    cells, summary = build_tables(df)
    return cells, summary, task_order(df), plots.load_spectra(sorted(sub.glob("*.json")))


def test_all_figures_in_both_formats_and_deterministic(tables, tmp_path: Path) -> None:
    cells, summary, tasks, spectra = tables
    assert len(spectra) == 3 * 3  # one per (model, task): duplicates across methods dropped
    first = plots.make_all(cells, summary, tasks, spectra, tmp_path / "a")
    second = plots.make_all(cells, summary, tasks, spectra, tmp_path / "b")
    assert sorted(first) == ["accuracy_vs_noise", "delta_heatmap", "spectra", "spectrum_vs_noise"]
    for name, paths in first.items():
        assert [p.suffix for p in paths] == [".png", ".svg"]
        assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert paths[1].read_bytes() == second[name][1].read_bytes(), f"{name}.svg differs between runs"
        assert paths[0].read_bytes() == second[name][0].read_bytes(), f"{name}.png differs between runs"


def test_figures_without_spectra_or_clean_rows(tables, tmp_path: Path) -> None:
    cells, summary, tasks, spectra = tables
    noisy = summary[summary.noise_rate > 0]
    figs = plots.make_all(cells, noisy, tasks, spectra.iloc[0:0], tmp_path)
    assert sorted(figs) == ["accuracy_vs_noise"]
    with pytest.raises(UserError, match="no noisy"):
        plots.delta_heatmap_figure(summary[summary.noise_rate == 0], tasks)


def test_plot_cli(tmp_path: Path) -> None:
    from nmlbench.cli import main

    sub = make_submission(tmp_path / "s", models=study_models((0.0, 0.2), (0,)), spectrum=True)
    assert main(["plot", str(sub), "--out", str(tmp_path / "figs")]) == 0
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == sorted(
        f"{n}.{e}"
        for n in ("accuracy_vs_noise", "delta_heatmap", "spectra", "spectrum_vs_noise")
        for e in ("png", "svg")
    )
    assert main(["plot", str(tmp_path / "missing")]) == 2
