"""A result record is checked against result.v1.json, and for NaN/infinity, before it is written."""
from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "leaderboard"))
from lb_fakes import Model, make_record  # noqa: E402

from nmlbench.results.io import InvalidRecord, non_finite, write_record  # noqa: E402


@pytest.fixture
def record(tmp_path: Path) -> dict:
    return make_record(tmp_path / "made", Model(rate=0.1), "lp", "fake-a-ood", 0)


def test_a_valid_record_is_written(tmp_path: Path, record: dict) -> None:
    dest = write_record(tmp_path / "r.json", record)
    assert json.loads(dest.read_text()) == record


@pytest.mark.parametrize("where, value, words", [
    (("method", "config", "lp", "lr"), float("nan"), "non-finite number at method/config/lp/lr"),
    (("metrics", "top1"), float("inf"), "non-finite number at metrics/top1"),
    (("method", "config", "lp", "wds"), [1.0, float("-inf")], "non-finite number at method/config/lp/wds/1"),
    (("seed",), -1, "seed"),
    (("metrics", "top1"), 101.0, "top1"),
    (("task", "num_classes"), 1, "num_classes"),
])
def test_a_bad_record_is_refused_and_not_written(tmp_path: Path, record: dict, where, value, words) -> None:
    bad = copy.deepcopy(record)
    node = bad
    for key in where[:-1]:
        node = node.setdefault(key, {})
    node[where[-1]] = value
    with pytest.raises(InvalidRecord, match=words):
        write_record(tmp_path / "r.json", bad)
    assert list(tmp_path.iterdir()) == [tmp_path / "made"]  # nothing written, not even a temp file


def test_non_finite_finds_nested_values() -> None:
    assert non_finite({"a": [1, {"b": 2.0}], "c": "nan"}) is None
    assert non_finite({"a": [1, {"b": float("nan")}]}) == "a/1/b"
    assert non_finite(float("inf")) == "<top level>"
