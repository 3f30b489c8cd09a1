"""Hostile submissions and damaged boards: `leaderboard submit|check|build` and `plot` refuse them
on one line, exit 2, and write nothing (neither the board nor the submission changes)."""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "leaderboard"))
from lb_fakes import FakeCatalog, Model, make_submission  # noqa: E402

from nmlbench.leaderboard.submit import submit  # noqa: E402


@pytest.fixture(autouse=True)
def _fake_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI checks against the fake suite's tasks and labels (no data download)."""
    import nmlbench.leaderboard.catalog as catalog

    monkeypatch.setattr(catalog, "NmlbenchCatalog", lambda data_root=None: FakeCatalog())


def _records(sub: Path) -> list[Path]:
    return sorted(p for p in sub.glob("*.json") if p.name != "submission.json")


def _edit_text(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _edit_first_record(old: str, new: str) -> Callable[[Path], None]:
    return lambda sub: _edit_text(_records(sub)[0], old, new)


def _meta(**fields: object) -> Callable[[Path], None]:
    def edit(sub: Path) -> None:
        meta = json.loads((sub / "submission.json").read_text())
        meta.update(fields)
        (sub / "submission.json").write_text(json.dumps(meta), encoding="utf-8")

    return edit


def _raw_meta(text: str) -> Callable[[Path], None]:
    return lambda sub: (sub / "submission.json").write_text(text, encoding="utf-8")


def _rewrite_predictions(sub: Path, table_fn: Callable[[pa.Table], pa.Table], **write_kw: object) -> None:
    """Rewrite the first record's predictions with `table_fn` and re-hash them in the record."""
    rec_path = _records(sub)[0]
    rec = json.loads(rec_path.read_text())
    ppath = sub / rec["predictions"]["path"]
    pq.write_table(table_fn(pq.read_table(ppath)), ppath, **write_kw)
    rec["predictions"]["sha256"] = hashlib.sha256(ppath.read_bytes()).hexdigest()
    rec_path.write_text(json.dumps(rec, indent=2), encoding="utf-8")


def _float_inf_preds(sub: Path) -> None:
    def fn(t: pa.Table) -> pa.Table:
        preds = [float("inf")] + [float(x) for x in t.column("pred").to_pylist()[1:]]
        return t.set_column(2, "pred", pa.array(preds, pa.float64()))

    _rewrite_predictions(sub, fn)


def _config_file(text: str) -> Callable[[Path], None]:
    def edit(sub: Path) -> None:
        (sub / "configs").mkdir(exist_ok=True)
        (sub / "configs" / "lp.yaml").write_text(text, encoding="utf-8")

    return edit


def _bidi_config_name(sub: Path) -> None:
    (sub / "configs").mkdir(exist_ok=True)
    (sub / "configs" / "lp\u202egnp.yaml").write_text("lr: 0.1\n", encoding="utf-8")


# case -> (mutation of a valid submission, words the one error line must hold)
SUBMISSIONS: dict[str, tuple[Callable[[Path], None], list[str]]] = {
    # non-finite numbers, however written (JSON constants, and 1e400 which parses to infinity)
    "metric-Infinity": (_edit_first_record('"top1": ', '"top1": Infinity, "x": '), ["Infinity", "finite"]),
    "metric-1e400": (_edit_first_record('"top1": ', '"top1": 1e400, "x": '), ["1e400", "finite"]),
    "cost-1e400": (_edit_first_record('"wall_time_s": 1.5', '"wall_time_s": 1e400'), ["1e400", "finite"]),
    "config-minus-1e400": (_edit_first_record('"lr": 0.001', '"lr": -1e400'), ["-1e400", "finite"]),
    "config-NaN": (_edit_first_record('"lr": 0.001', '"lr": NaN'), ["NaN", "finite"]),
    "meta-version-1e400": (
        _raw_meta('{"format": "nmlbench-submission", "schema_version": 1e400, "name": "n", "author": "a"}'),
        ["1e400", "finite"],
    ),
    "int-beyond-64-bits": (
        _edit_first_record('"trainable_params": 10', '"trainable_params": 100000000000000000000000'),
        ["64 bits"],
    ),
    "float-inf-predictions": (_float_inf_preds, ["pred must hold integers"]),
    # names: none of any script, or only invisible characters
    "name-punctuation-only": (_meta(name="!!! ???"), ["no letters or digits", "add some"]),
    "name-emoji-only": (_meta(name="\U0001f389\U0001f389"), ["no letters or digits"]),
    "name-bidi-only": (_meta(name="\u202e\u2066\u200f"), ["name has no visible characters"]),
    "author-invisible": (_meta(author="\u0007\u200b\u3164"), ["author has no visible characters"]),
    "name-lone-surrogates": (
        _raw_meta('{"format": "nmlbench-submission", "schema_version": 1, "name": "\\ud800", "author": "a"}'),
        ["name has no visible characters"],
    ),
    "name-oversize": (_meta(name="x" * 101), ["name", "too long"]),
    # files: a name that forges what is shown; provenance configs that crash a YAML parser
    "file-name-bidi": (_bidi_config_name, ["bidirectional characters in its name"]),
    "config-impossible-date": (_config_file("when: 2026-13-45\n"), ["configs/lp.yaml", "YAML", "fix it"]),
    "config-deep-nesting": (_config_file("[" * 5000), ["configs/lp.yaml", "YAML"]),
    "duplicate-keys": (_edit_first_record('"seed": 0', '"seed": 0, "seed": 1'), ["duplicate key"]),
}


@pytest.mark.parametrize("case", sorted(SUBMISSIONS))
def test_hostile_submission_is_refused(reject, tmp_path: Path, case: str) -> None:
    mutate, expect = SUBMISSIONS[case]
    sub = make_submission(tmp_path / "sub", methods=("lp",))
    mutate(sub)
    lb = tmp_path / "lb"
    reject(
        ["leaderboard", "submit", str(sub), "--leaderboard-dir", str(lb)],
        expect=["rejected", *expect],
        watch=[tmp_path],
    )


@pytest.mark.parametrize("case", ["cost-1e400", "config-NaN", "file-name-bidi", "config-impossible-date"])
def test_check_refuses_like_submit(reject, tmp_path: Path, case: str) -> None:
    mutate, expect = SUBMISSIONS[case]
    sub = make_submission(tmp_path / "sub", methods=("lp",))
    mutate(sub)
    reject(
        ["leaderboard", "check", str(sub), "--leaderboard-dir", str(tmp_path / "lb")],
        expect=["rejected", *expect],
        watch=[tmp_path],
    )


@pytest.mark.parametrize(
    "flag,value",
    [("--max-file-mb", "1e400"), ("--max-total-mb", "nan"), ("--max-file-mb", "-1"), ("--max-total-mb", "0")],
)
def test_size_limits_must_be_finite_and_positive(reject, tmp_path: Path, flag: str, value: str) -> None:
    sub = make_submission(tmp_path / "sub", methods=("lp",))
    reject(
        ["leaderboard", "submit", str(sub), "--leaderboard-dir", str(tmp_path / "lb"), flag, value],
        expect=[flag, "megabytes"],
        watch=[tmp_path],
    )


# --- the board: copies however re-encoded; damaged stored files --------------------------------


def _board(tmp_path: Path) -> Path:
    lb = tmp_path / "lb"
    first = make_submission(tmp_path / "first", name="First", models=(Model(),), methods=("lp",))
    assert submit(first, lb, FakeCatalog()).accepted
    return lb


def _reencoded(table: pa.Table) -> pa.Table:
    """Same content, other encoding: int32 columns, dictionary ids, other column order."""
    return pa.table(
        {
            "pred": table.column("pred").cast(pa.int32()),
            "sample_id": table.column("sample_id").dictionary_encode(),
            "label": table.column("label").cast(pa.int32()),
        }
    )


def _copy_of_board(tmp_path: Path, lb: Path, **write_kw: object) -> Path:
    """The board's first submission under a new name, every predictions file re-encoded."""
    import shutil

    sub = tmp_path / "copy"
    shutil.copytree(lb / "submissions" / "first", sub)
    _meta(name="Totally original")(sub)
    for rec_path in _records(sub):
        rec = json.loads(rec_path.read_text())
        ppath = sub / rec["predictions"]["path"]
        pq.write_table(_reencoded(pq.read_table(ppath)), ppath, **write_kw)
        rec["predictions"]["sha256"] = hashlib.sha256(ppath.read_bytes()).hexdigest()
        rec_path.write_text(json.dumps(rec), encoding="utf-8")
    return sub


@pytest.mark.parametrize(
    "write_kw",
    [
        {"compression": "zstd"},
        {"compression": "gzip", "row_group_size": 7, "use_dictionary": False},
    ],
    ids=["zstd", "gzip-row-groups"],
)
def test_reencoded_copy_of_the_board_is_refused(reject, tmp_path: Path, write_kw: dict) -> None:
    lb = _board(tmp_path)
    sub = _copy_of_board(tmp_path, lb, **write_kw)
    reject(
        ["leaderboard", "submit", str(sub), "--leaderboard-dir", str(lb)],
        expect=["already submitted (in first)"],
        watch=[tmp_path],
    )


def test_reencoded_copy_in_another_row_order_is_refused(reject, tmp_path: Path) -> None:
    lb = _board(tmp_path)
    sub = _copy_of_board(tmp_path, lb)
    _rewrite_predictions(sub, lambda t: t.take(pa.array(range(t.num_rows - 1, -1, -1))))
    reject(
        ["leaderboard", "check", str(sub), "--leaderboard-dir", str(lb)],
        expect=["in split order", "already submitted (in first)"],
        watch=[tmp_path],
    )


def _stored_record(lb: Path) -> Path:
    return _records(lb / "submissions" / "first")[0]


DAMAGE: dict[str, tuple[Callable[[Path], None], list[str]]] = {
    "record-truncated": (
        lambda lb: _stored_record(lb).write_text('{"format": "nmlbench-res'),
        ["not valid JSON"],
    ),
    "record-NaN": (lambda lb: _edit_text(_stored_record(lb), '"top1": ', '"top1": NaN, "x": '), ["NaN"]),
    "record-not-utf8": (lambda lb: _stored_record(lb).write_bytes(b'{"name": "\xff"}'), ["not UTF-8"]),
    "predictions-missing": (
        lambda lb: next((lb / "submissions" / "first" / "predictions").glob("*.parquet")).unlink(),
        ["missing predictions"],
    ),
    "meta-schema": (
        lambda lb: (lb / "submissions" / "first" / "submission.json").write_text("[]"),
        ["submission file"],
    ),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_submit_to_a_damaged_board_is_refused(reject, tmp_path: Path, case: str) -> None:
    damage, expect = DAMAGE[case]
    lb = _board(tmp_path)
    damage(lb)
    sub = make_submission(tmp_path / "new", name="New", models=(Model(rate=0.1),), methods=("lp",))
    reject(
        ["leaderboard", "submit", str(sub), "--leaderboard-dir", str(lb)],
        expect=["board is damaged", "first", "restore", *expect],
        watch=[tmp_path],
    )


def test_build_with_every_submission_damaged_is_refused(reject, tmp_path: Path) -> None:
    lb = _board(tmp_path)
    DAMAGE["record-truncated"][0](lb)
    reject(
        ["leaderboard", "build", "--leaderboard-dir", str(lb), "--no-plots"],
        expect=["no readable submission", "not valid JSON", "restore"],
        watch=[tmp_path],
    )


# --- your own results: `build --results` and `plot` refuse a damaged record, naming it -------


@pytest.mark.parametrize(
    "old,new,expect",
    [
        ('"wall_time_s": 1.5', '"wall_time_s": 1e400', "1e400"),
        ('"top1": ', '"top1": NaN, "x": ', "NaN"),
        ('"format": "nmlbench-result"', '"format": "nmlbench-result",', "not valid JSON"),
    ],
    ids=["1e400", "NaN", "syntax"],
)
def test_build_from_damaged_results_is_refused(
    reject, tmp_path: Path, old: str, new: str, expect: str
) -> None:
    res = make_submission(tmp_path / "results", methods=("lp",))
    _edit_text(_records(res)[0], old, new)
    reject(
        ["leaderboard", "build", "--results", str(res), "--out", str(tmp_path / "site"), "--no-plots"],
        expect=[_records(res)[0].name, expect],
        watch=[tmp_path],
    )


def test_plot_of_a_damaged_record_is_refused(reject, tmp_path: Path) -> None:
    res = make_submission(tmp_path / "results", methods=("lp",))
    _records(res)[1].write_text('{"format": "nmlbench-result", "run_id": ')
    reject(
        ["plot", str(res), "--out", str(tmp_path / "figs")],
        expect=[_records(res)[1].name, "not valid JSON"],
        watch=[tmp_path],
    )


def test_plot_of_a_malformed_spectrum_record_is_refused(reject, tmp_path: Path) -> None:
    res = make_submission(tmp_path / "results", models=(Model(rate=0.0), Model(rate=0.2)), methods=("lp",))
    spec = tmp_path / "spectrum"
    spec.mkdir()
    (spec / "s.json").write_text(json.dumps({"format": "nmlbench-spectrum", "spectrum": {"centring": "row"}}))
    reject(
        ["plot", str(res), "--spectrum", str(spec), "--out", str(tmp_path / "figs")],
        expect=["s.json", "spectrum"],
        watch=[tmp_path],
    )
