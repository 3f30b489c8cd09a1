"""Metric functions and record reading."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nmlbench.errors import UserError
from nmlbench.eval.metrics import macro_f1, top1
from nmlbench.results import make_run_id, read_record


def test_top1_and_macro_f1_known_values() -> None:
    y = np.array([0, 0, 1, 1, 2, 2])
    p = np.array([0, 1, 1, 1, 2, 0])
    assert top1(y, p) == pytest.approx(100 * 4 / 6)
    # per class F1: c0 = 2*1/(2+1+1) = .5, c1 = 2*2/(4+1+0) = .8, c2 = 2*1/(2+0+1) = 2/3
    assert macro_f1(y, p) == pytest.approx(100 * (0.5 + 0.8 + 2 / 3) / 3)
    assert macro_f1(y, y) == 100.0
    with pytest.raises(ValueError):
        top1(y, p[:3])


def test_run_id_is_file_safe() -> None:
    rid = make_run_id("open_clip:ViT-B-16:openai", "nmtune-lora", "mini/shapes", 0, "abcd1234")
    assert rid == "open_clip:ViT-B-16:openai__nmtune-lora__mini-shapes__s0__abcd1234"


def test_other_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"format": "nmlbench-result", "schema_version": 9}))
    with pytest.raises(UserError, match="schema_version 9"):
        read_record(path)
