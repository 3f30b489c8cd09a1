from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from nmlbench.cli import main
from nmlbench.config import dump_config, load_config, parse_overrides, stable_key
from nmlbench.errors import UserError
from nmlbench.io import atomic_path, write_json
from nmlbench.rates import parse_rate, parse_rates, rate_tag
from nmlbench.registry import Registry


@dataclass(frozen=True)
class Inner:
    lr: float = 1e-3
    epochs: int = 30


@dataclass(frozen=True)
class Outer:
    name: str = "x"
    tags: tuple[str, ...] = ()
    inner: Inner = field(default_factory=Inner)
    flag: bool = False
    maybe: int | None = None

    def __post_init__(self) -> None:
        if self.inner.epochs < 0:
            raise ValueError("epochs must be >= 0")


def test_registry_duplicate_and_did_you_mean() -> None:
    reg: Registry[int] = Registry("noise kind")
    reg.add("symmetric", 1)
    reg.add("asymmetric", 2)
    with pytest.raises(ValueError, match="already registered"):
        reg.add("symmetric", 3)
    with pytest.raises(UserError, match=r"did you mean 'symmetric'.*known: asymmetric, symmetric"):
        reg.get("symetric")
    assert reg.get("asymmetric") == 2 and "symmetric" in reg and len(reg) == 2


@pytest.mark.parametrize("text,expected", [("10%", 0.1), ("10", 0.1), ("0.1", 0.1), ("0", 0.0),
                                            (" 5 % ".replace(" ", ""), 0.05), ("2.5%", 0.025)])
def test_parse_rate(text: str, expected: float) -> None:
    assert parse_rate(text) == pytest.approx(expected)


@pytest.mark.parametrize("bad", ["110%", "abc", "-1", "100%", "nan", "100"])
def test_parse_rate_rejects(bad: str) -> None:
    with pytest.raises(UserError, match="noise rate"):
        parse_rate(bad)


def test_parse_rates_and_tag() -> None:
    assert parse_rates("0,5,10,20,30%") == pytest.approx([0, 0.05, 0.1, 0.2, 0.3])
    assert parse_rates("0.1") == [0.1]
    assert rate_tag(0.1) == "10" and rate_tag(0.025) == "2.5"
    with pytest.raises(UserError):
        parse_rates("10,10%")


def test_strict_yaml_unknown_key_names_file_and_allowed(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("name: a\ninner:\n  lrr: 0.1\n")
    with pytest.raises(UserError, match=r"c.yaml: inner: unknown key\(s\) 'lrr' \(did you mean 'lr'\?\).*allowed: epochs, lr"):
        load_config(Outer, p)


def test_overrides_cast_to_field_type(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("name: a\ntags: [x, y]\n")
    cfg = load_config(Outer, p, overrides=["inner.lr=5e-4", "inner.epochs=3", "flag=true", "maybe=7"])
    assert cfg.inner == Inner(lr=5e-4, epochs=3) and cfg.flag is True and cfg.maybe == 7
    assert cfg.tags == ("x", "y")
    with pytest.raises(UserError, match="expected an integer"):
        load_config(Outer, p, overrides=["inner.epochs=abc"])
    with pytest.raises(UserError, match="epochs must be >= 0"):
        load_config(Outer, p, overrides=["inner.epochs=-1"])
    with pytest.raises(UserError, match="key=value"):
        parse_overrides(["inner.lr"])


def test_include_one_level(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text("inner:\n  lr: 0.5\n  epochs: 2\n")
    (tmp_path / "c.yaml").write_text("include: base.yaml\ninner:\n  epochs: 4\n")
    cfg = load_config(Outer, tmp_path / "c.yaml")
    assert cfg.inner == Inner(lr=0.5, epochs=4)


def test_dump_roundtrip_and_stable_key(tmp_path: Path) -> None:
    cfg = Outer(name="z", tags=("a",), inner=Inner(lr=0.2))
    p = tmp_path / "d.yaml"
    p.write_text(dump_config(cfg))
    assert load_config(Outer, p) == cfg
    assert stable_key(cfg) == stable_key(Outer(name="z", tags=("a",), inner=Inner(lr=0.2)))
    assert stable_key(cfg) != stable_key(Outer(name="z"))


def test_atomic_path_leaves_nothing_on_error(tmp_path: Path) -> None:
    dest = tmp_path / "out.json"
    with pytest.raises(RuntimeError):
        with atomic_path(dest) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    write_json(dest, {"b": 1, "a": 2})
    assert dest.read_text() == '{\n  "a": 2,\n  "b": 1\n}\n'


def test_cli_help_lists_only_working_verbs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    assert "examples:" in capsys.readouterr().out
