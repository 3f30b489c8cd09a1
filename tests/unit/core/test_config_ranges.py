"""Every number a user can set states its range on its dataclass field, and the checks hold.

A new numeric config field without `bounded(...)` (or `seed_field`) fails here, so no setting can
slip past the load-time checks; a number with no natural range says so with a bare `bounded(x)`.
"""
from __future__ import annotations

import dataclasses
import re
import types
import typing
from pathlib import Path

import pytest

import nmlbench
from nmlbench.config import field_range, from_mapping, load_config
from nmlbench.errors import UserError
from nmlbench.eval.config import EvalConfig
from nmlbench.leaderboard.board import BoardConfig
from nmlbench.noise import NOISE
from nmlbench.noise.base import NoiseConfig
from nmlbench.pretrain.config import PretrainConfig
from nmlbench.report.aggregate import DisplayConfig
from nmlbench.spectrum.run import SpectrumOptions
from nmlbench.study.run import StudyOptions
from nmlbench.tasks.spec import Suite, TaskSpec

# Every dataclass read from YAML or `--set` (from_mapping / load_config), plus the options the
# CLI builds from its own numbers; nested dataclasses are reached through their fields.
ROOTS = [PretrainConfig, EvalConfig, NoiseConfig, TaskSpec, Suite, BoardConfig, DisplayConfig,
         StudyOptions, SpectrumOptions] + [NOISE.get(n).Params for n in NOISE.names()]


def _leaves(tp: typing.Any) -> list[typing.Any]:
    """The scalar types inside Optional / Union / tuple[...] / list[...] annotations."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType, tuple, list):
        return [t for arg in typing.get_args(tp) if arg is not Ellipsis for t in _leaves(arg)]
    return [tp]


def _config_classes() -> list[type]:
    seen: list[type] = []
    todo = list(ROOTS)
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.append(cls)
        hints = typing.get_type_hints(cls)
        todo += [t for f in dataclasses.fields(cls) for t in _leaves(hints[f.name])
                 if dataclasses.is_dataclass(t)]
    return seen


def _numeric_fields() -> list[tuple[type, dataclasses.Field]]:
    out = []
    for cls in _config_classes():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if any(t in (int, float) for t in _leaves(hints[f.name])):
                out.append((cls, f))
    return out


def test_every_numeric_config_field_states_a_range():
    fields = _numeric_fields()
    assert len(fields) > 60  # the walk reaches the nested sections (optim, lp, nmtune, slurm, ...)
    missing = [f"{cls.__qualname__}.{f.name}" for cls, f in fields if field_range(f) is None]
    assert not missing, f"state a range with nmlbench.config.bounded(...) for: {', '.join(missing)}"


def test_every_config_loaded_from_yaml_is_walked():
    """A new `from_mapping(X, ...)` / `load_config(X, ...)` call site must add X to ROOTS."""
    root = Path(nmlbench.__file__).parent
    called = set()
    for path in root.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        called |= set(re.findall(r"(?:from_mapping|load_config)\(\s*([A-Z]\w*)", text))
    assert called, "no call sites found; the pattern is out of date"
    names = {c.__name__ for c in _config_classes()}
    assert called <= names, f"config classes not covered by the range test: {sorted(called - names)}"


def test_defaults_lie_in_their_ranges():
    for cls, f in _numeric_fields():
        if f.default is dataclasses.MISSING:
            continue
        hint = typing.get_type_hints(cls)[f.name]
        from_mapping(_probe(f.name, hint, f), {f.name: f.default}, f"{cls.__qualname__}.{f.name}")


def _probe(name: str, hint: typing.Any, f: dataclasses.Field) -> type:
    """A one-field dataclass with `f`'s type and range: runs the loader's check on a default alone."""
    probe = dataclasses.field(default=None, metadata=f.metadata)
    return dataclasses.make_dataclass("Probe", [(name, hint, probe)])


@pytest.mark.parametrize("value, words", [
    ("nan", "finite"), (".inf", "finite"), ("-.inf", "finite"), ("1e400", "finite"),
    ("0", "out of range; give a value > 0"), ("-1e-3", "out of range"), ("[1]", "expected a number"),
    ("true", "expected a number"), ("null", "expected a number"),
])
def test_float_values_refused(tmp_path, value, words):
    with pytest.raises(UserError, match=re.escape(words)):
        load_config(PretrainConfig, None, [f"optim.lr={value}"])


@pytest.mark.parametrize("value, words", [
    ("nan", "integer"), ("1e400", "integer"), (".inf", "integer"), ("2.5", "integer"), ("0", "out of range"),
    ("x", "integer"),
])
def test_int_values_refused(value, words):
    with pytest.raises(UserError, match=words):
        load_config(PretrainConfig, None, [f"optim.epochs={value}"])


def test_integral_values_accepted():
    cfg = load_config(PretrainConfig, None, ["optim.epochs=3.0", "seed=4294967295", "optim.lr=1e-3"])
    assert (cfg.optim.epochs, cfg.seed, cfg.optim.lr) == (3, 2**32 - 1, 1e-3)
    big = load_config(PretrainConfig, None, [f"optim.warmup_steps={10**20 + 1}"])
    assert big.optim.warmup_steps == 10**20 + 1  # ints are not squeezed through a float


def test_range_messages_name_the_field_and_the_fix():
    with pytest.raises(UserError, match=r"noise: rate: noise rate '250%' is outside \[0, 1\)"):
        load_config(PretrainConfig, None, ["noise.rate=250%"])
    with pytest.raises(UserError, match=r"noise: rate: expected a number, got \[1, 2\]|noise: rate: .*\[1, 2\]"):
        load_config(PretrainConfig, None, ["noise.rate=[1, 2]"])
    with pytest.raises(UserError, match=r"levi: tap_fractions\[1\]: expected a number in \(0, 1\]"):
        load_config(EvalConfig, None, ["levi.tap_fractions=0.5,x"])


def test_every_shipped_preset_and_recipe_lies_in_the_ranges():
    from nmlbench.eval.config import load_eval_config, preset_names
    from nmlbench.noise.apply import list_recipes, load_recipe
    from nmlbench.pretrain.config import PRESETS, load_pretrain_config

    assert [load_pretrain_config(n, None, []) for n in PRESETS.names()]
    assert [load_eval_config(n) for n in preset_names()]
    for name in list_recipes():
        cfg = load_recipe(name)
        NOISE.get(cfg.kind)(cfg.params)  # the kind's own Params are range-checked too
