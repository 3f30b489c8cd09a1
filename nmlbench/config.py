"""Strict YAML <-> frozen dataclasses: load, include, override, validate, dump, stable_key.

Unknown keys are errors naming the file and the allowed keys (with close matches); `--set a.b=v`
overrides are cast to the field's declared type; the resolved config is dumped next to outputs.

Every numeric field states its range where it is declared, `lr: float = bounded(1e-3, gt=0)`, and
the one cast that reads YAML and `--set` values refuses what lies outside it, as well as NaN and
infinities however written (`.nan`, `inf`, `1e400`) and integers given as fractions (docs/guarantees).
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from nmlbench.errors import UserError

C = TypeVar("C")

RANGE = "nmlbench.range"  # dataclass field metadata key holding the field's `Range`
# dataclass field metadata key: the one input modality ("image" or "text") a field applies to. Such a
# field enters a record's method settings (and its result key) only for models of that modality, so a
# text-only setting added later never changes the keys of image results (`to_dict(obj, modality)`).
ONLY = "nmlbench.only"
# dataclass field metadata key, False for a setting that changes no number a run reports (how often to
# log or to save resumable state): it stays in dumped configs but not in a record's method settings,
# so its result key does not move when it changes (`to_dict(obj, keyed=True)`).
KEYED = "nmlbench.keyed"


@dataclasses.dataclass(frozen=True)
class Range:
    """Closed or open bounds for a number (each element of a tuple of numbers); None = no bound."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def contains(self, x: float) -> bool:
        return not (
            (self.ge is not None and x < self.ge)
            or (self.gt is not None and x <= self.gt)
            or (self.le is not None and x > self.le)
            or (self.lt is not None and x >= self.lt)
        )

    def text(self) -> str:
        """' > 0', ' in [0, 1)', '' (unbounded): appended to 'a finite number' in messages."""
        lo = self.ge if self.ge is not None else self.gt
        hi = self.le if self.le is not None else self.lt
        if lo is not None and hi is not None:
            left, right = "[" if self.ge is not None else "(", "]" if self.le is not None else ")"
            return f" in {left}{_num(lo)}, {_num(hi)}{right}"
        if lo is not None:
            return f" {'>=' if self.ge is not None else '>'} {_num(lo)}"
        if hi is not None:
            return f" {'<=' if self.le is not None else '<'} {_num(hi)}"
        return ""


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(x)


SEED_MAX = 2**32 - 1  # numpy's and the result schema's limit for a seed


def bounded(
    default: Any = dataclasses.MISSING,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    only: str | None = None,
    key: bool = True,
) -> Any:
    """A dataclass field whose value (or each element, for tuples) must lie in the given range.

    Call it with no bound for a number that is deliberately unbounded (still finite), so the
    test that every numeric config field states a range can tell "forgotten" from "any value".
    `only`: the input modality the field applies to (see `ONLY`); `key=False`: a setting that changes
    no result, left out of result keys (see `KEYED`).
    """
    meta: dict[str, Any] = {RANGE: Range(ge=ge, gt=gt, le=le, lt=lt)}
    if only is not None:
        meta[ONLY] = only
    if not key:
        meta[KEYED] = False
    return dataclasses.field(default=default, metadata=meta)


def only_for(modality: str, default: Any) -> Any:
    """A non-numeric dataclass field that applies to one input modality (see `ONLY`)."""
    return dataclasses.field(default=default, metadata={ONLY: modality})


PARSE = "nmlbench.parse"  # dataclass field metadata key: a parser applied to YAML/--set values first


def rate_field(default: Any = dataclasses.MISSING) -> Any:
    """A noise rate: read by `nmlbench.rates.parse_rate` ('10%', '10' and '0.1' are ten percent; a
    bare 1 is refused as ambiguous), so a YAML file, `--set` and `--rate` read a rate alike."""
    from nmlbench.rates import parse_rate

    return dataclasses.field(default=default, metadata={RANGE: Range(ge=0, lt=1), PARSE: parse_rate})


def seed_field(default: Any = 0) -> Any:
    """A seed: an integer in [0, 2**32 - 1] (numpy's generators and the result schema refuse others)."""
    return bounded(default, ge=0, le=SEED_MAX)


def field_range(f: dataclasses.Field) -> Range | None:
    return f.metadata.get(RANGE)


def cast_value(value: Any, tp: Any, where: str, rng: Range | None = None) -> Any:
    """`value` as type `tp`, finite and inside `rng`, else UserError naming `where` (for CLI numbers)."""
    return _cast(value, tp, where, rng)


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _unknown_keys_message(cls: type, extra: list[str], allowed: list[str], where: str) -> str:
    hints = []
    for key in extra:
        close = difflib.get_close_matches(key, allowed, n=1)
        hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return (f"{where}: unknown key(s) {', '.join(hints)} for {cls.__name__}; "
            f"allowed: {', '.join(allowed)}")


def _cast(value: Any, tp: Any, where: str, rng: Range | None = None) -> Any:
    """Convert a YAML/CLI value to the annotated type, or raise UserError naming `where`.

    Numbers must be finite and inside `rng` (the field's stated range; for tuples, per element).
    """
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _cast(value, arg, where, rng)
            except UserError as e:
                errors.append(str(e))
        raise UserError(errors[0] if errors else f"{where}: cannot be {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise UserError(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise UserError(f"{where}: expected a mapping for {tp.__name__}, got {_shown(value)}")
        return from_mapping(tp, value, where)
    if origin in (tuple, list, Sequence) or tp in (tuple, list):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{where}: expected a list, got {_shown(value)}")
        item_t = args[0] if args else Any
        items = [_cast(v, item_t, f"{where}[{i}]", rng) for i, v in enumerate(value)]
        return tuple(items)
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise UserError(f"{where}: expected a mapping, got {_shown(value)}")
        vt = args[1] if len(args) == 2 else Any
        return {str(k): _cast(v, vt, f"{where}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise UserError(f"{where}: expected true or false, got {_shown(value)}")
    if tp is int:
        return _in_range(_to_int(value, where, rng), where, rng)
    if tp is float:
        return _in_range(_to_float(value, where, rng), where, rng)
    if tp is str:
        if value is None or isinstance(value, (dict, list)):
            raise UserError(f"{where}: expected a string, got {_shown(value)}")
        return str(value)
    return value


def _shown(value: Any) -> str:
    """A value as the user wrote it in YAML: null, not None."""
    return "null" if value is None else repr(value)


def _to_int(value: Any, where: str, rng: Range | None) -> int:
    want = f"an integer{rng.text() if rng else ''}"
    if isinstance(value, bool) or value is None or isinstance(value, (dict, list, tuple)):
        raise UserError(f"{where}: expected {want}, got {_shown(value)}")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        f = float(text)
    except ValueError:
        raise UserError(f"{where}: expected {want}, got {_shown(value)}") from None
    if not math.isfinite(f) or not f.is_integer():
        raise UserError(f"{where}: expected {want}, got {_shown(value)}")
    return int(f)


def _to_float(value: Any, where: str, rng: Range | None) -> float:
    want = f"a number{rng.text() if rng else ''}"
    if isinstance(value, bool) or value is None or isinstance(value, (dict, list, tuple)):
        raise UserError(f"{where}: expected {want}, got {_shown(value)}")
    try:
        f = float(value)
    except (TypeError, ValueError, OverflowError):
        raise UserError(f"{where}: expected {want}, got {_shown(value)}") from None
    if not math.isfinite(f):  # .nan, .inf, 'inf', and 1e400 (which YAML and float() read as inf)
        raise UserError(f"{where}: expected a finite {want[2:]}, got {_shown(value)}")
    return f


def _in_range(x: float, where: str, rng: Range | None) -> Any:
    if rng is not None and not rng.contains(x):
        raise UserError(f"{where}: {x!r} is out of range; give a value{rng.text()}")
    return x


def _parsed(f: dataclasses.Field, value: Any, where: str) -> Any:
    parse = f.metadata.get(PARSE)
    if parse is None or isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return value  # no parser, or a value the cast refuses with its own message
    try:
        return parse(value)
    except UserError as e:
        raise UserError(f"{where}: {e}") from None


def from_mapping(cls: type[C], raw: Mapping[str, Any], where: str) -> C:
    """Build dataclass `cls` from a mapping; unknown keys and bad types raise UserError."""
    if not isinstance(raw, Mapping):
        raise UserError(f"{where}: expected a mapping for {cls.__name__}, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    extra = sorted(set(raw) - set(fields))
    if extra:
        raise UserError(_unknown_keys_message(cls, extra, sorted(fields), where))
    hints = _hints(cls)
    kwargs = {k: _cast(_parsed(fields[k], v, f"{where}: {k}"), hints[k], f"{where}: {k}",
                       field_range(fields[k])) for k, v in raw.items()}
    try:
        return cls(**kwargs)
    except (ValueError, TypeError, UserError) as e:  # __post_init__ checks across fields
        raise UserError(f"{where}: {e}") from None


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, resolving one level of `include:` (paths relative to the file)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file {path} does not exist; pass the path of a YAML file")
    data = _parse_yaml(path)
    if not isinstance(data, dict):
        raise UserError(f"{path}: the top level must be a mapping of keys to values")
    includes = data.pop("include", None)
    if includes is not None and not isinstance(includes, (str, list)):
        raise UserError(f"{path}: include must be a file name or a list of file names, got {includes!r}")
    if includes:
        merged: dict[str, Any] = {}
        for inc in [includes] if isinstance(includes, str) else includes:
            if not isinstance(inc, str) or not inc.strip():
                raise UserError(f"{path}: include entries must be file names relative to it, got {inc!r}")
            inc_path = (path.parent / inc).resolve()
            if not inc_path.is_file():
                raise UserError(f"{path}: include {inc!r} not found at {inc_path}")
            inc_data = _parse_yaml(inc_path)
            if not isinstance(inc_data, dict):
                raise UserError(f"{inc_path}: the top level must be a mapping of keys to values")
            if "include" in inc_data:
                raise UserError(f"{inc_path}: nested include is not supported; include one level only")
            merged = deep_merge(merged, inc_data)
        data = deep_merge(merged, data)
    return data


def _parse_yaml(path: Path) -> Any:
    """One YAML file's content; bad bytes or bad syntax are one line naming the file."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 (byte {e.start}); save the file as UTF-8") from None
    except yaml.YAMLError as e:
        raise UserError(f"{path}: not valid YAML ({str(e).splitlines()[0]}); fix the syntax") from None


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def parse_overrides(overrides: Sequence[str]) -> dict[str, Any]:
    """['a.b=1', 'c=x'] -> {'a': {'b': '1'}, 'c': 'x'}; values are YAML scalars, cast later."""
    tree: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise UserError(f"override {item!r} needs the form key=value, e.g. --set tuner.lr=1e-3")
        key, value = item.split("=", 1)
        node = tree
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UserError(f"override {item!r} conflicts with another override of {part!r}")
        try:
            parsed = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            parsed = value
        node[parts[-1]] = parsed
    return tree


def load_config(
    cls: type[C],
    path: str | Path | None = None,
    overrides: Sequence[str] = (),
    base: Mapping[str, Any] | None = None,
) -> C:
    """Defaults <- `base` <- YAML file <- `--set` overrides, validated into `cls`."""
    data: dict[str, Any] = dict(base or {})
    where = cls.__name__
    if path is not None:
        data = deep_merge(data, read_yaml(path))
        where = str(path)
    if overrides:
        data = deep_merge(data, parse_overrides(overrides))
        where = f"{where} (with --set)"
    return from_mapping(cls, data, where)


def to_dict(obj: Any, modality: str | None = None, keyed: bool = False) -> Any:
    """A dataclass as plain YAML/JSON-able data (tuples become lists).

    With `modality`, fields marked for another modality (`ONLY`) are left out, at every depth; with
    `keyed`, so are fields that change no result (`KEYED` False): what is left is what a key hashes.
    """
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {
            f.name: to_dict(getattr(obj, f.name), modality, keyed)
            for f in dataclasses.fields(obj)
            if (modality is None or f.metadata.get(ONLY, modality) == modality)
            and not (keyed and f.metadata.get(KEYED, True) is False)
        }
    if isinstance(obj, (list, tuple)):
        return [to_dict(v, modality, keyed) for v in obj]
    if isinstance(obj, Mapping):
        return {str(k): to_dict(v, modality, keyed) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def dump_config(obj: Any) -> str:
    return yaml.safe_dump(to_dict(obj), sort_keys=True, default_flow_style=False)


def replace(obj: C, **changes: Any) -> C:
    return dataclasses.replace(obj, **changes)  # type: ignore[type-var]


def stable_key(obj: Any, length: int = 8) -> str:
    """A short hash of a config's content: equal configs give equal keys across runs and machines."""
    blob = json.dumps(to_dict(obj), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:length]
