"""Strict YAML <-> frozen dataclasses: load, include, override, validate, dump, stable_key.

Unknown keys are errors naming the file and the allowed keys (with close matches); `--set a.b=v`
overrides are cast to the field's declared type; the resolved config is dumped next to outputs.
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from nmlbench.errors import UserError

C = TypeVar("C")


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _unknown_keys_message(cls: type, extra: list[str], allowed: list[str], where: str) -> str:
    hints = []
    for key in extra:
        close = difflib.get_close_matches(key, allowed, n=1)
        hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return (f"{where}: unknown key(s) {', '.join(hints)} for {cls.__name__}; "
            f"allowed: {', '.join(allowed)}")


def _cast(value: Any, tp: Any, where: str) -> Any:
    """Convert a YAML/CLI value to the annotated type, or raise UserError naming `where`."""
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
                return _cast(value, arg, where)
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
            raise UserError(f"{where}: expected a mapping for {tp.__name__}, got {value!r}")
        return from_mapping(tp, value, where)
    if origin in (tuple, list, Sequence) or tp in (tuple, list):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{where}: expected a list, got {value!r}")
        item_t = args[0] if args else Any
        items = [_cast(v, item_t, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items)
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise UserError(f"{where}: expected a mapping, got {value!r}")
        vt = args[1] if len(args) == 2 else Any
        return {str(k): _cast(v, vt, f"{where}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise UserError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise UserError(f"{where}: expected an integer, got {value!r}")
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise UserError(f"{where}: expected an integer, got {value!r}") from None
        if f != int(f):
            raise UserError(f"{where}: expected an integer, got {value!r}")
        return int(f)
    if tp is float:
        if isinstance(value, bool):
            raise UserError(f"{where}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise UserError(f"{where}: expected a number, got {value!r}") from None
    if tp is str:
        if isinstance(value, (dict, list)):
            raise UserError(f"{where}: expected a string, got {value!r}")
        return str(value)
    return value


def from_mapping(cls: type[C], raw: Mapping[str, Any], where: str) -> C:
    """Build dataclass `cls` from a mapping; unknown keys and bad types raise UserError."""
    if not isinstance(raw, Mapping):
        raise UserError(f"{where}: expected a mapping for {cls.__name__}, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    extra = sorted(set(raw) - set(fields))
    if extra:
        raise UserError(_unknown_keys_message(cls, extra, sorted(fields), where))
    hints = _hints(cls)
    kwargs = {k: _cast(v, hints[k], f"{where}: {k}") for k, v in raw.items()}
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as e:
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
    if includes:
        merged: dict[str, Any] = {}
        for inc in [includes] if isinstance(includes, str) else includes:
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


def to_dict(obj: Any) -> Any:
    """A dataclass as plain YAML/JSON-able data (tuples become lists)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, Mapping):
        return {str(k): to_dict(v) for k, v in obj.items()}
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
