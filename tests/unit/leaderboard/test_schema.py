"""The result/submission/spectrum JSON Schemas: well-formed, accept real records, refuse bad ones."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest
from lb_fakes import Model, make_record

from nmlbench.errors import UserError
from nmlbench.leaderboard.schema import SCHEMA_FILES, default_schema_dir, schema_errors, validate_record


@pytest.fixture
def record(tmp_path: Path) -> dict:
    return make_record(tmp_path, Model(rate=0.1), "nmtune", "fake-a-ood", 0)


@pytest.mark.parametrize("name", sorted(SCHEMA_FILES.values()))
def test_schemas_are_valid_draft_2020_12(name: str) -> None:
    schema = json.loads((default_schema_dir() / name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"].endswith("2020-12/schema")


def test_a_generated_record_is_valid(record: dict) -> None:
    assert schema_errors(record) == []
    validate_record(record)
    plain = copy.deepcopy(record)
    plain["model"].update(noise=None, manifest_sha256=None, pretrain_seed=None)
    assert schema_errors(plain) == []  # a model nmlbench did not pretrain


@pytest.mark.parametrize(
    "path, value, message",
    [
        (("format",), "other", "'nmlbench-result' was expected"),
        (("schema_version",), 2, "1 was expected"),
        (("run_id",), "a/../b", "does not match"),
        (("metrics", "top1"), 100.5, "greater than the maximum"),
        (("metrics", "macro_f1"), "71", "is not of type 'number'"),
        (("model", "noise", "rate"), 1.5, "is not valid under any"),
        (("model", "checkpoint_sha256"), "ABC", "is not valid under any"),
        (("task", "domain"), "both", "is not one of"),
        (("predictions", "path"), "../x.parquet", "does not match"),
        (("predictions", "n"), 0, "less than the minimum"),
        (("seed",), -1, "less than the minimum"),
        (("created",), "yesterday", "does not match"),
        (("spectrum",), {"centring": "diagonal"}, "'diagonal' is not one of"),
    ],
)
def test_bad_values_are_refused(record: dict, path: tuple, value: object, message: str) -> None:
    node = record
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    errors = schema_errors(record)
    assert any(message in e for e in errors), errors
    with pytest.raises(UserError, match="does not match result.v1.json"):
        validate_record(record)


def test_unknown_and_missing_fields_are_refused(record: dict) -> None:
    record["extra"] = 1
    del record["env"]["torch"]
    errors = "\n".join(schema_errors(record))
    assert (
        "Additional properties are not allowed ('extra'" in errors
        and "'torch' is a required property" in errors
    )
