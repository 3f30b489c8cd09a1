"""evaluate on the real built-in mini tasks (generated once per session, seconds): records validate."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from nmlbench.eval import EvalOptions, evaluate

SCHEMA = Path(__file__).resolve().parents[2] / "leaderboard" / "schema" / "result.v1.json"


def test_lp_and_nmtune_on_mini_objects_and_its_ood_sibling(tmp_path: Path) -> None:
    opts = EvalOptions(tasks=("mini-objects", "mini-objects-sketch"), preset="mini",
                       overrides=("pretrained=false", "nmtune.epochs=2", "lp.epochs=2"))
    paths = evaluate(["tinyresnet"], ["lp", "nmtune"], "mini", [0], tmp_path, opts)
    assert len(paths) == 4
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    records = [json.loads(p.read_text()) for p in paths]
    for rec in records:
        validator.validate(rec)
    assert {r["task"]["domain"] for r in records} == {"id", "ood"}
    assert all(r["task"]["train_task"] == "mini-objects" for r in records if r["task"]["domain"] == "ood")
