"""Aggregation: deltas vs clean, mean ± std over seeds, escaping, and the golden markdown table."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lb_fakes import SUITES, Model, make_record, make_submission, study_models

from nmlbench.errors import UserError
from nmlbench.report.aggregate import (
    DisplayConfig,
    add_deltas,
    build_tables,
    load_records,
    summarise,
    task_order,
)
from nmlbench.report.table import display_rows, markdown_page, markdown_table, md_escape

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
    assert row["n_seeds"] == 2 and row["n_pretrain"] == 2 and row["id_delta_mean"] == -7.5
    assert row["id_delta_sd_pretrain"] == pytest.approx(math.sqrt(((-5 + 7.5) ** 2 + (-10 + 7.5) ** 2) / 1))
    assert math.isnan(row["id_delta_sd_tune"])  # one tuning seed per checkpoint: no spread to show
    assert row["id_avg_mean"] == 67.5


def test_tables_from_records_average_id_and_ood_apart(tmp_path: Path) -> None:
    sub = make_submission(tmp_path / "s", models=study_models((0.0, 0.3)), methods=("lp",), seeds=(0, 1))
    df = load_records([sub])
    assert len(df) == 2 * 2 * 2 * 3 and task_order(df) == ["fake-a", "fake-b", "fake-a-ood"]
    cells, summary = build_tables(df)
    one = cells.iloc[0]
    assert one["id_avg"] == pytest.approx((one["fake-a"] + one["fake-b"]) / 2)
    assert one["ood_avg"] == one["fake-a-ood"]
    assert list(summary.n_seeds) == [4, 4] and list(summary.n_pretrain) == [2, 2]
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


def _write(out: Path, model: Model, acc: dict[str, float], seed: int = 0, method: str = "lp") -> None:
    """Records of `model` on every fake task with exact accuracies (fraction per task)."""
    out.mkdir(parents=True, exist_ok=True)
    for task in SUITES["fake"]:
        make_record(out, model, method, task, seed, preds=acc[task])


def _row(summary: pd.DataFrame, **where: object) -> pd.Series:
    sel = summary
    for k, v in where.items():
        sel = sel[sel[k] == v]
    assert len(sel) == 1, sel
    return sel.iloc[0]


ACC = {"fake-a": 0.75, "fake-b": 2 / 3, "fake-a-ood": 0.75}


def test_two_upstream_datasets_of_one_arch_are_two_rows_with_their_own_clean(tmp_path: Path) -> None:
    """Regression: rows were keyed by architecture, so the clean checkpoints of two upstream
    datasets were averaged into one clean reference and Δ OOD came out +16.67 (truth: -8.33)."""
    sub = tmp_path / "s"
    _write(sub, Model(data="big", rate=0.0), ACC)
    _write(sub, Model(data="big", rate=0.2), {**ACC, "fake-a-ood": 16 / 24})
    _write(sub, Model(data="small", rate=0.0), {"fake-a": 0.25, "fake-b": 1 / 3, "fake-a-ood": 0.25})
    _, summary = build_tables(load_records([sub]))
    assert len(summary) == 3
    noisy = _row(summary, data="big", noise_rate=0.2)
    assert noisy["ood_delta_mean"] == pytest.approx(100 * (16 / 24 - 18 / 24), abs=1e-3)  # -8.33, not +16.67
    assert noisy["id_delta_mean"] == pytest.approx(0.0, abs=1e-3)
    assert _row(summary, data="small")["ood_avg_mean"] == pytest.approx(25.0)


def test_clean_run_without_manifest_is_the_clean_reference(tmp_path: Path) -> None:
    """Regression: a clean run's noise kind ('none', formerly 'sym') differs from its noisy
    siblings' ('symmetric_label'), and the clean match required equal kinds: Δ was empty."""
    sub = tmp_path / "s"
    _write(sub, Model(rate=0.0, kind="none", recipe="clean"), ACC)
    _write(sub, Model(rate=0.2), {**ACC, "fake-a": 0.5})
    cells, summary = build_tables(load_records([sub]))
    noisy = _row(summary, noise_rate=0.2)
    assert noisy["id_delta_mean"] == pytest.approx((50 - 75) / 2, abs=1e-3)
    assert noisy["ood_delta_mean"] == pytest.approx(0.0, abs=1e-3)
    header, rows = display_rows(summary, task_order(load_records([sub])), DisplayConfig())
    assert {r[header.index("Noise")] for r in rows} == {"clean", "symmetric_label 20%"}


def test_two_clean_recipes_of_one_arch_stay_apart_and_give_no_guessed_delta(tmp_path: Path) -> None:
    """Two clean checkpoints of one architecture, data and seed (e.g. other epochs) are two rows,
    labelled apart; a noisy run matching both gets no delta rather than one against their mean."""
    sub = tmp_path / "s"
    _write(sub, Model(rate=0.0), ACC)
    _write(sub, Model(rate=0.0, variant="_long"), {**ACC, "fake-a": 1.0})
    _write(sub, Model(rate=0.2), ACC)
    _, summary = build_tables(load_records([sub]))
    clean = summary[summary.noise_rate == 0.0]
    assert len(clean) == 2 and sorted(clean["fake-a_mean"]) == [75.0, 100.0]
    assert math.isnan(_row(summary, noise_rate=0.2)["id_delta_mean"])
    header, rows = display_rows(summary, task_order(load_records([sub])), DisplayConfig())
    models = [r[header.index("Model")] for r in rows if r[header.index("Noise")].endswith(" 0%")]
    assert len(set(models)) == 2 and all(m.startswith("tinynet [") for m in models)


def test_spread_over_pretraining_seeds_and_tuning_seeds_apart(tmp_path: Path) -> None:
    sub = tmp_path / "s"
    accs = {(0, 0): 0.5, (0, 1): 0.6, (1, 0): 0.8, (1, 1): 0.8}  # (pretrain seed, tuning seed) -> fake-a
    for (ps, seed), a in accs.items():
        _write(sub, Model(pretrain_seed=ps), {**ACC, "fake-a": a}, seed=seed)
    _, summary = build_tables(load_records([sub]))
    row = _row(summary, method="lp")
    assert (row["n_pretrain"], row["n_tune_min"], row["n_tune_max"], row["n_seeds"]) == (2, 2, 2, 4)
    assert row["fake-a_mean"] == pytest.approx(67.5)
    assert row["fake-a_sd_pretrain"] == pytest.approx(np.std([55.0, 80.0], ddof=1))
    assert row["fake-a_sd_tune"] == pytest.approx(np.mean([np.std([50.0, 60.0], ddof=1), 0.0]))
    header, rows = display_rows(summary, task_order(load_records([sub])), DisplayConfig())
    assert rows[0][header.index("Seeds")] == "2×2"
    assert rows[0][header.index("fake-a")] == "67.50 ± 17.68ᵖ ± 3.54ᵗ"


def test_legacy_records_without_identity_fields_still_aggregate(tmp_path: Path) -> None:
    models = tuple(Model(rate=r, pretrain_seed=s, legacy=True) for r in (0.0, 0.3) for s in (0, 1))
    sub = make_submission(tmp_path / "s", models=models)
    _, summary = build_tables(load_records([sub]))
    assert list(summary.n_pretrain) == [2, 2] and set(summary.data) == {""}
    assert summary.loc[summary.noise_rate == 0.0, "id_delta_mean"].item() == 0.0


def test_one_task_name_with_two_definitions_gets_two_columns(tmp_path: Path) -> None:
    """Two user tasks both named after their file (`train.yaml` in two folders) never share a column."""
    import json

    subs = []
    for folder in ("a", "b"):
        sub = make_submission(tmp_path / folder, name=folder, models=(Model(data=folder),))
        for path in sub.glob("*fake-a__*.json"):
            rec = json.loads(path.read_text())
            rec["task"].update(key=(folder * 64)[:64], origin=f"/{folder}/fake-a.yaml", builtin=False)
            path.write_text(json.dumps(rec))
        subs.append(sub)
    df = load_records(subs)
    assert {"fake-a@aaaaaaaa", "fake-a@bbbbbbbb"} <= set(task_order(df))


def test_text_and_image_rows_average_their_own_tasks(tmp_path: Path) -> None:
    """A text model's row averages text tasks, an image model's image tasks; neither becomes NaN
    because the other modality's task columns are empty; the page can filter by modality."""
    from nmlbench.leaderboard.page import render

    sub = make_submission(tmp_path / "s", models=study_models((0.0, 0.3)), methods=("lp",), seeds=(0,))
    image = load_records([sub])
    text = image.assign(
        task=image["task"] + "-txt", modality="text", model="nmlbench-tinytext", data="mini-text",
        **{m: image[m] - 10.0 for m in ("top1",)},
    )  # fmt: skip
    cells, summary = build_tables(pd.concat([image, text], ignore_index=True))
    assert set(summary["modality"]) == {"image", "text"} and not summary["id_avg_mean"].isna().any()
    txt = cells[cells.modality == "text"].iloc[0]
    assert txt["id_avg"] == pytest.approx((txt["fake-a-txt"] + txt["fake-b-txt"]) / 2)
    page = render(summary, task_order(pd.concat([image, text])), DisplayConfig(), {}, {})
    assert 'data-filter="modality"' in page and 'data-modality="text"' in page
