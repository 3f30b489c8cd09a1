"""The mini text benchmark's data: the upstream corpus and every task split, drawn in memory.

Nothing is cached on disk: the whole benchmark (6,000 upstream sentences, 7 ID tasks, 4 OOD shifts)
is drawn in well under a second, faster than reading a cache back, and a cache could only go stale or
be damaged. Within a process the draws are memoised. Every array comes from its own random stream keyed
by (seed, MINI_TEXT_VERSION, what, split), so any one task is drawn alone and never depends on what
was drawn before it.
"""
from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nmlbench.errors import UserError
from nmlbench.minitext import corpus as C
from nmlbench.minitext.lexicon import lexicon

# Bump when the same seed would draw different words, sentences or labels.
MINI_TEXT_VERSION = 1
UPSTREAM_PER_CLASS = 100   # 60 classes -> 6,000 sentences
SPLIT_SIZES = {"train": 360, "val": 120, "test": 360}  # divisible by every task's class count
SPLITS = tuple(SPLIT_SIZES)


@dataclass(frozen=True)
class TextUpstream:
    """The upstream pretraining corpus (a topic-labelled text set in miniature)."""

    ids: np.ndarray       # str (N,), e.g. "txt/c017/000123"
    texts: np.ndarray     # str (N,)
    labels: np.ndarray    # int64 (N,)
    classes: list[str]

    def __len__(self) -> int:
        return len(self.labels)


def _rng(seed: int, *key: str | int) -> np.random.Generator:
    parts = [int(seed), MINI_TEXT_VERSION]
    parts += [zlib.crc32(k.encode()) if isinstance(k, str) else k for k in key]
    return np.random.default_rng(parts)


def _balanced(rng: np.random.Generator, n: int, num_classes: int) -> np.ndarray:
    return rng.permutation(np.arange(n) % num_classes).astype(np.int64)


@functools.lru_cache(maxsize=4)
def _upstream(seed: int) -> TextUpstream:
    classes = list(C.TOPICS)
    labels = _balanced(_rng(seed, "upstream-labels"), UPSTREAM_PER_CLASS * len(classes), len(classes))
    texts = C.upstream(_rng(seed, "upstream"), labels, lexicon(MINI_TEXT_VERSION))
    ids = np.array([f"txt/c{y:03d}/{i:06d}" for i, y in enumerate(labels)])
    for a in (ids, labels):
        a.setflags(write=False)  # memoised and shared: nobody may edit it in place
    out = np.array(texts)
    out.setflags(write=False)
    return TextUpstream(ids, out, labels, classes)


def load_upstream(data_dir: str | Path | None = None, seed: int = 0, progress: bool = False) -> TextUpstream:
    """The upstream corpus: 60 topic classes x 100 sentences.

    Args:
        data_dir, progress: accepted for the same call as `nmlbench.mini.load_upstream`; nothing is
            read or written (the corpus is drawn in memory).
        seed: generation seed.
    """
    return _upstream(int(seed))


def generator(name: str) -> C.Generator:
    if name not in C.GENERATORS:
        import difflib

        close = difflib.get_close_matches(name, list(C.GENERATORS), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UserError(f"unknown mini text generator {name!r}; {hint}"
                        f"known: {', '.join(sorted(C.GENERATORS))}")
    return C.GENERATORS[name]


@functools.lru_cache(maxsize=64)
def _split(name: str, shift: str, split: str, seed: int) -> tuple[tuple, np.ndarray]:
    gen = generator(name)
    n = SPLIT_SIZES[split]
    labels = _balanced(_rng(seed, f"{name}:{shift}:labels", split), n, len(gen.classes))
    texts = gen.draw(_rng(seed, f"{name}:{shift}", split), labels, shift, lexicon(MINI_TEXT_VERSION))
    labels.setflags(write=False)
    return tuple(texts), labels


def load_texts(name: str, shift: str, split: str, seed: int = 0) -> tuple[list, np.ndarray]:
    """(texts, labels) of one split of a mini text task; a text is a str or, for pair tasks, a 2-tuple."""
    gen = generator(name)
    if shift not in gen.shifts:
        raise UserError(f"mini text generator {name!r} has no {shift!r} shift; use one of {list(gen.shifts)}")
    if split not in SPLIT_SIZES:
        raise UserError(f"mini text tasks have splits {list(SPLITS)}, not {split!r}")
    texts, labels = _split(name, shift, split, int(seed))
    return list(texts), labels
