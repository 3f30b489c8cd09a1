"""One generic registry: name -> object, used for noise kinds, tasks, models and tuners.

Duplicates raise (timm only warns, which hides plugin clashes); unknown names answer with
close matches and the full list, so a typo is a one-line fix.
"""
from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from nmlbench.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named mapping with a decorator to add entries and helpful lookup errors."""

    def __init__(self, kind: str) -> None:
        self.kind = kind  # used in messages: "unknown noise kind 'symetric'"
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            self.add(name, obj)
            return obj

        return deco

    def add(self, name: str, obj: T) -> None:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered ({self._items[name]!r})")
        self._items[name] = obj

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UserError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, list(self._items), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
        return f"unknown {self.kind} {name!r}; {hint}known: {', '.join(sorted(self._items))}"

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def __len__(self) -> int:
        return len(self._items)
