"""argparse `type=` helpers: numbers on the command line are checked like config values.

    p.add_argument("--workers", type=cliargs.integer("--workers", ge=0), default=0)
    p.add_argument("--seeds", type=cliargs.seeds("--seeds"), default="0")   # "0,1" -> (0, 1)

The checks are nmlbench.config's (finite, integral, inside a `Range`), so `--seeds -1`,
`--threads nan` or `--batch-size 1e400` get the same one-line message a YAML value would. They raise
UserError, not argparse's ArgumentTypeError, so the CLI prints one line instead of usage + error.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nmlbench.config import SEED_MAX, Range, cast_value
from nmlbench.errors import UserError


def _scalar(tp: type, flag: str, rng: Range) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        return cast_value(text.strip(), tp, flag, rng)

    parse.__name__ = tp.__name__  # argparse names the type in its own messages
    return parse


def _listed(tp: type, flag: str, rng: Range) -> Callable[[str], tuple[Any, ...]]:
    noun = "integers" if tp is int else "numbers"

    def parse(text: str) -> tuple[Any, ...]:
        items = [t.strip() for t in text.split(",") if t.strip()]
        if not items:
            raise UserError(f"{flag}: expected comma-separated {noun}, e.g. 0,1; got {text!r}")
        try:
            values = tuple(cast_value(t, tp, flag, rng) for t in items)
        except UserError as e:
            raise UserError(f"{e}; write comma-separated {noun}, e.g. 0,1") from None
        if len(set(values)) != len(values):  # `--seeds 0,0` would run (and record) one cell twice
            raise UserError(f"{flag}: {text!r} repeats a value; list each once")
        return values

    parse.__name__ = f"{tp.__name__} list"
    return parse


def integer(flag: str, *, ge: int | None = None, le: int | None = None) -> Callable[[str], int]:
    """A whole number in [ge, le] (either bound optional)."""
    return _scalar(int, flag, Range(ge=ge, le=le))


def number(flag: str, *, ge: float | None = None, gt: float | None = None, le: float | None = None,
           lt: float | None = None) -> Callable[[str], float]:
    """A finite number inside the given bounds."""
    return _scalar(float, flag, Range(ge=ge, gt=gt, le=le, lt=lt))


def seed(flag: str) -> Callable[[str], int]:
    """One seed: an integer in [0, 2**32 - 1], as config seeds (nmlbench.config.seed_field)."""
    return integer(flag, ge=0, le=SEED_MAX)


def seeds(flag: str) -> Callable[[str], tuple[int, ...]]:
    """Comma-separated seeds, each in [0, 2**32 - 1]: '0,1' -> (0, 1)."""
    return _listed(int, flag, Range(ge=0, le=SEED_MAX))
