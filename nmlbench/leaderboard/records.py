"""Reading the board's JSON (submission metadata, result records) strictly, the same way everywhere.

One reader serves `submit` (the files of a new submission), the board index (the files already
accepted), `leaderboard build` and `nmlbench plot`, so a file is judged by one rule wherever it is
read: UTF-8, standard JSON without duplicate keys, and every number finite and in range however it
is written — `NaN`, `Infinity`, `-Infinity`, and also `1e400`, which Python's parser would turn
into infinity without a word. Integers must fit 64 bits (tables store them as int64).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from nmlbench.errors import UserError
from nmlbench.leaderboard.schema import schema_errors

INT_LIMIT = 2**63  # integers are stored as int64 in the tables


class CorruptFile(UserError):
    """A JSON file that cannot be used; the message names the file and what is wrong with it."""


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows; write a finite number")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range (it would be infinite); write a finite number")
    return value


def _int(text: str) -> int:
    if len(text.lstrip("-")) > 19 or not -INT_LIMIT <= (value := int(text)) < INT_LIMIT:
        raise ValueError(f"integer {text[:40]} does not fit 64 bits; write a smaller number")
    return value


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise ValueError(f"duplicate key(s) {dup}; keep one of each")
    return dict(pairs)


def loads_strict(text: str) -> Any:
    """`json.loads` refusing NaN/Infinity (however written), huge integers and duplicate keys."""
    return json.loads(
        text,
        parse_constant=_constant,
        parse_float=_float,
        parse_int=_int,
        object_pairs_hook=_no_duplicate_keys,
    )


def read_json(path: Path, rel: str | None = None) -> Any:
    """The strict JSON in `path`; CorruptFile naming `rel` (default: the path) when it is not."""
    rel = rel or str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise CorruptFile(f"{rel}: cannot be read ({e.strerror or type(e).__name__})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CorruptFile(f"{rel}: not UTF-8 (byte {e.start}); save the file as UTF-8") from None
    try:
        return loads_strict(text)
    except (ValueError, RecursionError) as e:  # JSONDecodeError is a ValueError
        msg = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        fix = "" if ";" in msg else "; fix the JSON or write the file again"
        raise CorruptFile(f"{rel}: not valid JSON ({msg}){fix}") from None


def read_checked(path: Path, kind: str, rel: str | None = None) -> dict[str, Any]:
    """A strict JSON file that must also match the `kind` schema ('result' or 'submission')."""
    rel = rel or str(path)
    obj = read_json(path, rel)
    errors = schema_errors(obj, kind)
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        what = "result record" if kind == "result" else f"{kind} file"
        raise CorruptFile(f"{rel}: not a valid {what} (against {kind}.v1.json: {errors[0]}{more})")
    return obj
