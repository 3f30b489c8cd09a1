"""The leaderboard's JSON Schemas (result, submission, spectrum) and validation with `jsonschema`.

The schema files live in the top-level `leaderboard/schema/` folder, the one place both the
evaluation stage and outside submitters read them from; callers may pass another folder.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource

from nmlbench.errors import UserError
from nmlbench.paths import shipped_dir

SCHEMA_FILES = {
    "result": "result.v1.json",
    "submission": "submission.v1.json",
    "spectrum": "spectrum.v1.json",
}


def default_schema_dir() -> Path:
    """The repository's (or the installed copy of) `leaderboard/schema`, else `./leaderboard/schema`."""
    for cand in (shipped_dir("leaderboard/schema"), Path("leaderboard") / "schema"):
        if (cand / SCHEMA_FILES["result"]).is_file():
            return cand
    raise UserError(
        "cannot find leaderboard/schema/result.v1.json; run from the nmlbench repository or pass --schema-dir"
    )


@lru_cache(maxsize=8)
def _validator(kind: str, schema_dir: str) -> jsonschema.Draft202012Validator:
    schemas = {
        k: json.loads((Path(schema_dir) / f).read_text(encoding="utf-8")) for k, f in SCHEMA_FILES.items()
    }
    # Register every schema under its $id so the result schema's $ref to spectrum.v1.json resolves offline.
    registry = Registry().with_resources([(s["$id"], Resource.from_contents(s)) for s in schemas.values()])
    return jsonschema.Draft202012Validator(schemas[kind], registry=registry)


def validator(kind: str = "result", schema_dir: str | Path | None = None) -> jsonschema.Draft202012Validator:
    """A Draft 2020-12 validator for `kind` in ('result', 'submission', 'spectrum')."""
    if kind not in SCHEMA_FILES:
        raise ValueError(f"unknown schema {kind!r}; known: {sorted(SCHEMA_FILES)}")
    return _validator(kind, str(Path(schema_dir) if schema_dir else default_schema_dir()))


def schema_errors(obj: Any, kind: str = "result", schema_dir: str | Path | None = None) -> list[str]:
    """Every schema violation of `obj` as 'json/path: message', sorted; empty when valid."""
    out = []
    for err in validator(kind, schema_dir).iter_errors(obj):
        where = "/".join(str(p) for p in err.absolute_path) or "<top level>"
        msg = err.message if len(err.message) <= 200 else err.message[:197] + "..."
        out.append(f"{where}: {msg}")
    return sorted(out)


def validate_record(record: Any, schema_dir: str | Path | None = None) -> None:
    """Raise UserError naming the first violations if `record` is not a valid result record."""
    errors = schema_errors(record, "result", schema_dir)
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise UserError(f"result record does not match result.v1.json: {errors[0]}{more}")
