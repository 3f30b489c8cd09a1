"""Aggregation: deltas vs clean, mean ± std over seeds, escaping, and the golden markdown table."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd
import pytest
from lb_fakes import Model, make_submission, study_models

from nmlbench.errors import UserError
from nmlbench.report.aggregate import (
    DisplayConfig,
    add_deltas,
    build_tables,
    load_records,
    summarise,
    task_order,
)
from nmlbench.report.table import markdown_page, markdown_table, md_escape

GOLDEN = Path(__file__).parent / "golden" / "leaderboard.md"


def _cells(rows: list[tuple]) -> pd.DataFrame:
    cols = [
        "submission",
        "author",
        "model",
        "noise_kind",
        "noise_rate",
        "method",
        "pretrain_seed",
        "seed",
        "t1",
        "id_avg",
        "ood_avg",
    ]
    return pd.DataFrame([("s", "a", "m", "sym", *r) for r in rows], columns=cols)


def test_deltas_match_same_seed_clean_cell() -> None:
    cells = add_deltas(
        _cells(
            [
                (0.0, "lp", 0, 0, 80.0, 80.0, 60.0),
                (0.0, "lp", 1, 0, 70.0, 70.0, 50.0),
                (0.3, "lp", 0, 0, 75.0, 75.0, 61.0),
                (0.3, "lp", 1, 0, 60.0, 60.0, 40.0),
                (0.3, "ft", 0, 0, 50.0, 50.0, 30.0),  # no clean ft cell: delta unknown, not borrowed from lp
            ]
        ),
        ["t1"],
    )
    noisy = cells[cells.noise_rate == 0.3].set_index(["method", "pretrain_seed"])
    assert noisy.loc[("lp", 0), "id_delta"] == -5.0 and noisy.loc[("lp", 0), "ood_delta"] == 1.0
    assert noisy.loc[("lp", 1), "id_delta"] == -10.0 and noisy.loc[("lp", 1), "ood_delta"] == -10.0
    assert math.isnan(noisy.loc[("ft", 0), "id_delta"])
    summary = summarise(cells, ["t1"]).set_index(["noise_rate", "method"])
    row = summary.loc[(0.3, "lp")]
    assert row["n_seeds"] == 2 and row["id_delta_mean"] == -7.5
    assert row["id_delta_std"] == pytest.approx(math.sqrt(((-5 + 7.5) ** 2 + (-10 + 7.5) ** 2) / 1))
    assert row["id_avg_mean"] == 67.5


def test_tables_from_records_average_id_and_ood_apart(tmp_path: Path) -> None:
    sub = make_submission(tmp_path / "s", models=study_models((0.0, 0.3)), methods=("lp",), seeds=(0, 1))
    df = load_records([sub])
    assert len(df) == 2 * 2 * 2 * 3 and task_order(df) == ["fake-a", "fake-b", "fake-a-ood"]
    cells, summary = build_tables(df)
    one = cells.iloc[0]
    assert one["id_avg"] == pytest.approx((one["fake-a"] + one["fake-b"]) / 2)
    assert one["ood_avg"] == one["fake-a-ood"]
    assert list(summary.n_seeds) == [4, 4]
    assert summary.loc[summary.noise_rate == 0.0, "id_delta_mean"].item() == 0.0
    ordered = summary.id_avg_mean.tolist()
    assert ordered == sorted(ordered, reverse=True)


def test_escaping_in_markdown() -> None:
    assert md_escape("<script>a|b</script>") == "&lt;script&gt;a&#124;b&lt;/script&gt;"
    assert md_escape('x"\ny') == "x&quot; y"


def test_markdown_table_matches_golden(tmp_path: Path) -> None:
    sub = make_submission(
        tmp_path / "s",
        name="Tiny | baseline",
        author="<b>A</b>",
        models=study_models((0.0, 0.1, 0.3)),
        methods=("lp", "nmtune"),
        seeds=(0, 1),
    )
    other = make_submission(
        tmp_path / "o", name="Other", models=(Model("othernet", 0.0, 0),), methods=("mlp",)
    )
    df = load_records([sub, other])
    cells, summary = build_tables(df)
    text = markdown_page(summary, task_order(df), DisplayConfig())
    if os.environ.get("NMLBENCH_UPDATE_GOLDEN"):
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8"), (
        "intended change? regenerate with NMLBENCH_UPDATE_GOLDEN=1 pytest tests/unit/report"
    )


def test_display_config_is_validated_and_changes_sorting(tmp_path: Path) -> None:
    sub = make_submission(tmp_path / "s", models=study_models((0.0, 0.3), (0,)), methods=("lp", "nmtune"))
    df = load_records([sub])
    with pytest.raises(ValueError, match="metric must be one of"):
        DisplayConfig(metric="ece")
    _, by_ood = build_tables(df, DisplayConfig(sort_by="ood_avg", higher_is_better=False))
    assert by_ood.ood_avg_mean.tolist() == sorted(by_ood.ood_avg_mean.tolist())
    with pytest.raises(UserError, match="sort_by 'nope'"):
        build_tables(df, DisplayConfig(sort_by="nope"))
    _, f1 = build_tables(df, DisplayConfig(metric="macro_f1"))
    assert markdown_table(f1, task_order(df)) != markdown_table(build_tables(df)[1], task_order(df))


def test_invalid_or_missing_records_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no result records"):
        load_records([tmp_path])
    (tmp_path / "bad.json").write_text('{"format": "nmlbench-result"}')
    with pytest.raises(UserError, match="not a valid result record"):
        load_records([tmp_path])
