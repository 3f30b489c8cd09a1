"""Copy detection by content: decoded sample id -> prediction tables, not file bytes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from lb_fakes import SUITES, FakeCatalog, Model, make_record, make_submission

from nmlbench.eval.metrics import prediction_flags
from nmlbench.leaderboard.content import content_hash
from nmlbench.leaderboard.submit import submit


def _meta(out: Path, name: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    meta = {"format": "nmlbench-submission", "schema_version": 1, "name": name, "author": "A"}
    (out / "submission.json").write_text(json.dumps(meta))


def _deterministic(out: Path, model: Model, seeds: tuple[int, ...], name: str = "Det") -> Path:
    """A deterministic method: the very same predictions (same bytes) on every tuning seed."""
    _meta(out, name)
    for seed in seeds:
        for task in SUITES["fake"]:
            make_record(out, model, "lp", task, seed, preds=0.6)
    return out


def test_deterministic_method_on_two_seeds_is_accepted(tmp_path: Path) -> None:
    """Regression: an honest `--seeds 0,1` study was refused as 'byte-identical' predictions."""
    sub = _deterministic(tmp_path / "s", Model(), (0, 1))
    files = sorted((sub / "predictions").glob("*fake-a__*.parquet"))
    assert len(files) == 2 and files[0].read_bytes() == files[1].read_bytes()
    res = submit(sub, tmp_path / "lb", FakeCatalog())
    assert res.accepted, res.reasons


def test_same_table_under_two_checkpoints_is_rejected(tmp_path: Path) -> None:
    sub = _deterministic(tmp_path / "s", Model(rate=0.0), (0,))
    for task in SUITES["fake"]:  # another checkpoint, exactly the same (non-degenerate) predictions
        make_record(sub, Model(rate=0.2), "lp", task, 0, preds=0.6)
    res = submit(sub, tmp_path / "lb", FakeCatalog())
    assert not res.accepted
    assert sum("evaluated on another checkpoint" in r for r in res.reasons) == len(SUITES["fake"])


def test_resubmission_with_rewritten_bytes_is_rejected(tmp_path: Path) -> None:
    """The same tables re-written with other parquet settings (other bytes) are still the same content."""
    lb = tmp_path / "lb"
    assert submit(_deterministic(tmp_path / "a", Model(), (0,), "First"), lb, FakeCatalog()).accepted
    again = _deterministic(tmp_path / "b", Model(), (0,), "Second")
    for rec_path in sorted(p for p in again.glob("*.json") if p.name != "submission.json"):
        rec = json.loads(rec_path.read_text())
        ppath = again / rec["predictions"]["path"]
        before = ppath.read_bytes()
        pq.write_table(pq.read_table(ppath), ppath, compression="gzip", row_group_size=7)
        assert ppath.read_bytes() != before
        rec["predictions"]["sha256"] = hashlib.sha256(ppath.read_bytes()).hexdigest()
        rec_path.write_text(json.dumps(rec))
    res = submit(again, lb, FakeCatalog())
    assert not res.accepted
    assert any("already submitted (in first)" in r for r in res.reasons), res.reasons


def test_degenerate_tables_are_flagged_not_refused(tmp_path: Path) -> None:
    """One class for a whole OOD split on every noise rate: identical tables, never copies."""
    lb = tmp_path / "lb"
    sub = tmp_path / "s"
    _meta(sub, "Collapsed")
    ids, labels = FakeCatalog().truth("fake-a-ood")
    for rate in (0.0, 0.2):
        for task in SUITES["fake"]:
            preds = np.zeros_like(labels) if task == "fake-a-ood" else None
            rec = make_record(sub, Model(rate=rate), "lp", task, 0, preds=preds)
            if task == "fake-a-ood":
                rec["flags"] = ["degenerate"]
                (sub / f"{rec['run_id']}.json").write_text(json.dumps(rec))
    res = submit(sub, lb, FakeCatalog())
    assert res.accepted, res.reasons
    # a second submission with the same degenerate OOD tables is not a copy either
    other = make_submission(tmp_path / "o", name="Other", models=(Model("othernet"),))
    rec = make_record(other, Model("othernet"), "lp", "fake-a-ood", 0, preds=np.zeros_like(labels))
    rec["flags"] = ["degenerate"]  # overwrites the made-up OOD record of the same run id
    (other / f"{rec['run_id']}.json").write_text(json.dumps(rec))
    assert submit(other, lb, FakeCatalog()).accepted

    from nmlbench.leaderboard.build import build

    build(lb, plots=False)
    board = (lb / "LEADERBOARD.md").read_text()
    assert "degenerate 1/3" in board


def test_flags_must_match_the_predictions(tmp_path: Path) -> None:
    sub = _deterministic(tmp_path / "s", Model(), (0,))
    path = next(p for p in sub.glob("*fake-a__*.json"))
    rec = json.loads(path.read_text())
    rec["flags"] = ["degenerate"]
    path.write_text(json.dumps(rec))
    res = submit(sub, tmp_path / "lb", FakeCatalog())
    assert not res.accepted and any("flags claims ['degenerate']" in r for r in res.reasons)


def test_content_hash_ignores_row_order_and_sees_every_prediction() -> None:
    ids, preds = np.array(["b", "a", "c"]), np.array([1, 0, 2])
    h = content_hash("t", ids, preds)
    assert h == content_hash("t", ids[::-1], preds[::-1])
    assert h != content_hash("t", ids, np.array([1, 0, 1]))
    assert h != content_hash("other-task", ids, preds)


@pytest.mark.parametrize(
    ("labels", "preds", "flags"),
    [
        ([0, 1, 2, 1], [1, 1, 1, 1], ["degenerate"]),
        ([0, 1, 2, 1], [1, 1, 2, 1], []),
        ([2, 2, 2], [2, 2, 2], ["perfect"]),  # one label class: predicting it is right, not degenerate
        ([0, 1, 2, 1], [0, 1, 2, 1], ["perfect"]),
        ([2, 2, 2], [0, 0, 0], []),
    ],
)
def test_prediction_flags(labels: list[int], preds: list[int], flags: list[str]) -> None:
    assert prediction_flags(np.array(labels), np.array(preds)) == flags
    with pytest.raises(ValueError):
        prediction_flags(np.array([]), np.array([]))


def test_tables_with_few_mistakes_are_not_copies(tmp_path: Path) -> None:
    """Two honest checkpoints on an easy split agree everywhere: no shared mistakes, no evidence."""
    sub = tmp_path / "s"
    _meta(sub, "Easy")
    for model in (Model(rate=0.0), Model(rate=0.2)):
        for task in SUITES["fake"]:
            make_record(sub, model, "lp", task, 0, preds=1.0)
    assert submit(sub, tmp_path / "lb", FakeCatalog()).accepted
    (tmp_path / "strict").mkdir()
    (tmp_path / "strict" / "board.yaml").write_text("copy_min_errors: 0\n")
    res = submit(sub, tmp_path / "strict", FakeCatalog())
    assert not res.accepted and any("evaluated on another checkpoint" in r for r in res.reasons)
