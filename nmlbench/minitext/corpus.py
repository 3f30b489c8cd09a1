"""Sentence composition, the upstream corpus and one generator per downstream text task.

A generator maps (rng, labels, shift) to texts (a str, or a 2-tuple of str for pair tasks); the labels
are chosen by the caller (balanced), so a generator only decides how a label is written. Every random
number a sentence uses comes from one pre-drawn row of uniforms, so a sentence depends only on its row.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from nmlbench.minitext import lexicon as L

FAMILIES = ("weather", "cooking", "sport", "music", "travel", "health",
            "finance", "farming", "law", "science", "fashion", "sailing")
TOPICS = tuple(f"{f}-{k}" for f in FAMILIES for k in range(L.TOPICS_PER_FAMILY))  # 60 upstream classes
FINE_FAMILIES = (0, 1, 2)  # the fine topic task: the 15 topics of these families
ROW = 64                   # uniforms per sentence; more than any template uses


@dataclass(frozen=True)
class Style:
    """How content words are written: the register's templates, synonyms, sibling-topic words."""

    p_synonym: float = 0.0   # chance that a topic/family word is written as its synonym
    p_sibling: float = 0.2   # chance that a topic word comes from a sibling topic (same family)


ID_STYLE = Style()                   # every ID task: primary words only
SYNONYM_STYLE = Style(p_synonym=1.0)  # OOD 'synonyms': every content word in its rare form
UPSTREAM_STYLE = Style(p_synonym=0.25)
WIRE_STYLE = Style(p_synonym=0.25)    # OOD 'wire': its writers use the rare forms as often as upstream
PAIR_STYLE = Style(p_sibling=0.0)     # the pair task: a topic's own words only
NEGATED = 0.3                         # share of negated sentences in the negation task


class _Row:
    """The uniforms of one sentence, consumed in order."""

    def __init__(self, u: np.ndarray) -> None:
        self.u, self.i = u, 0

    def next(self) -> float:
        self.i += 1
        return float(self.u[self.i - 1])

    def pick(self, seq: Sequence) -> object:
        return seq[min(int(self.next() * len(seq)), len(seq) - 1)]


def _fill(template: str, row: _Row, topic: int, style: Style, lex: L.Lexicon,
          polar: int = 0, negated: bool = False) -> str:
    """One sentence: the template's slots filled for `topic` (polar 1/-1 picks the {J} list)."""
    family = topic // L.TOPICS_PER_FAMILY
    out = []
    for tok in template.split():
        if tok == "{T}":
            t = topic
            if row.next() < style.p_sibling:
                t = family * L.TOPICS_PER_FAMILY + int(row.pick(range(L.TOPICS_PER_FAMILY)))
            words = lex.topic_synonyms[t] if row.next() < style.p_synonym else lex.topic_words[t]
            out.append(str(row.pick(words)))
        elif tok == "{F}":
            words = lex.family_synonyms[family] if row.next() < style.p_synonym else lex.family_words[family]
            out.append(str(row.pick(words)))
        elif tok == "{D}":
            out.append(str(row.pick(lex.distractors)))
        elif tok == "{A}":
            out.append(str(row.pick(L.DETERMINERS)))
        elif tok == "{P}":
            out.append(str(row.pick(L.PREPOSITIONS)))
        elif tok == "{R}":
            out.append(str(row.pick(lex.register)))
        elif tok == "{J}":
            out.append(str(row.pick(lex.positive if polar > 0 else lex.negative)))
        elif tok == "{N}":
            if negated:
                out.append(str(row.pick(L.NEGATIONS)))
        else:
            out.append(tok)
    return " ".join(out)


def _rows(rng: np.random.Generator, n: int) -> list[_Row]:
    return [_Row(u) for u in rng.random((n, ROW))]


def _register(shift: str) -> tuple[tuple[str, ...], Style]:
    if shift == "plain":
        return L.PLAIN, ID_STYLE
    if shift == "synonyms":
        return L.PLAIN, SYNONYM_STYLE
    if shift == "wire":
        return L.WIRE, WIRE_STYLE
    raise ValueError(shift)


# --- upstream -----------------------------------------------------------------------------------

def upstream(rng: np.random.Generator, labels: np.ndarray, lex: L.Lexicon) -> list[str]:
    """Upstream sentences of topics `labels`, in a mix of genres so every template family is seen:
    plain 55 %, wire register 20 %, evaluative 10 % (random polarity and negation), intents 10 %,
    several clauses 5 %; synonyms at UPSTREAM_STYLE.p_synonym."""
    out = []
    intents = [t for group in L.INTENT.values() for t in group]
    for y, row in zip(labels, _rows(rng, len(labels)), strict=True):
        g = row.next()
        if g < 0.55:
            out.append(_fill(str(row.pick(L.PLAIN)), row, int(y), UPSTREAM_STYLE, lex))
        elif g < 0.75:
            out.append(_fill(str(row.pick(L.WIRE)), row, int(y), UPSTREAM_STYLE, lex))
        elif g < 0.85:
            out.append(_fill(str(row.pick(L.SENTIMENT)), row, int(y), UPSTREAM_STYLE, lex,
                             polar=1 if row.next() < 0.5 else -1, negated=row.next() < 0.5))
        elif g < 0.95:
            out.append(_fill(str(row.pick(intents)), row, int(y), UPSTREAM_STYLE, lex))
        else:
            out.append(_clauses(row, int(y), 2 + int(row.next() < 0.5), UPSTREAM_STYLE, lex))
    return out


# --- downstream ---------------------------------------------------------------------------------

Draw = Callable[[np.random.Generator, np.ndarray, str, L.Lexicon], list]


@dataclass(frozen=True)
class Generator:
    """A downstream label space and how to write it."""

    classes: tuple[str, ...]
    draw: Draw
    shifts: tuple[str, ...] = ("plain",)  # renderings this generator supports
    pairs: bool = False                   # samples are (text, text)


def _families(rng: np.random.Generator, y: np.ndarray, shift: str, lex: L.Lexicon) -> list:
    templates, style = _register(shift)
    out = []
    for label, row in zip(y, _rows(rng, len(y)), strict=True):
        topic = int(label) * L.TOPICS_PER_FAMILY + int(row.pick(range(L.TOPICS_PER_FAMILY)))
        out.append(_fill(str(row.pick(templates)), row, topic, style, lex))
    return out


def _topics(rng: np.random.Generator, y: np.ndarray, shift: str, lex: L.Lexicon) -> list:
    templates, style = _register(shift)
    first = FINE_FAMILIES[0] * L.TOPICS_PER_FAMILY
    return [_fill(str(row.pick(templates)), row, first + int(label), style, lex)
            for label, row in zip(y, _rows(rng, len(y)), strict=True)]


def _polarity(rng: np.random.Generator, y: np.ndarray, negation: bool, lex: L.Lexicon) -> list:
    """y = 1 positive, 0 negative; with `negation` NEGATED of the sentences negate a word of the other
    polarity ('not <bad>' is positive), so the word alone is right only 70 % of the time."""
    out = []
    for label, row in zip(y, _rows(rng, len(y)), strict=True):
        topic = int(row.pick(range(len(TOPICS))))
        negated = negation and row.next() < NEGATED
        polar = (1 if label else -1) * (-1 if negated else 1)
        out.append(_fill(str(row.pick(L.SENTIMENT)), row, topic, ID_STYLE, lex, polar, negated))
    return out


def _clauses(row: _Row, topic: int, k: int, style: Style, lex: L.Lexicon) -> str:
    text = _fill(str(row.pick(L.CLAUSE)), row, topic, style, lex)
    for _ in range(k - 1):
        text += str(row.pick(L.CLAUSE_JOINS)) + _fill(str(row.pick(L.CLAUSE)), row, topic, style, lex)
    return text


def _count(rng: np.random.Generator, y: np.ndarray, shift: str, lex: L.Lexicon) -> list:
    return [_clauses(row, int(row.pick(range(len(TOPICS)))), int(label) + 1, ID_STYLE, lex)
            for label, row in zip(y, _rows(rng, len(y)), strict=True)]


def _pairs(rng: np.random.Generator, y: np.ndarray, shift: str, lex: L.Lexicon) -> list:
    """y = 1: both passages about one topic; y = 0: the second about a topic of another family.
    A passage is two clauses in PAIR_STYLE, so that two passages on one topic share a content word
    more often than not (as paraphrases do); shorter texts would leave the label mostly unreadable."""
    out = []
    for label, row in zip(y, _rows(rng, len(y)), strict=True):
        a = int(row.pick(range(len(TOPICS))))
        other_family = L.TOPICS_PER_FAMILY * (1 + int(row.pick(range(L.N_FAMILIES - 1))))
        b = a if label else (a + other_family) % len(TOPICS)
        first = _clauses(row, a, 2, PAIR_STYLE, lex)
        out.append((first, _clauses(row, b, 2, PAIR_STYLE, lex)))
    return out


def _intent(rng: np.random.Generator, y: np.ndarray, shift: str, lex: L.Lexicon) -> list:
    groups = list(L.INTENT.values())
    return [_fill(str(row.pick(groups[int(label)])), row, int(row.pick(range(len(TOPICS)))), ID_STYLE, lex)
            for label, row in zip(y, _rows(rng, len(y)), strict=True)]


GENERATORS: dict[str, Generator] = {
    "families": Generator(FAMILIES, _families, ("plain", "synonyms", "wire")),
    "topics": Generator(TOPICS[FINE_FAMILIES[0] * L.TOPICS_PER_FAMILY:
                               (FINE_FAMILIES[-1] + 1) * L.TOPICS_PER_FAMILY], _topics,
                        ("plain", "synonyms", "wire")),
    "sentiment": Generator(("negative", "positive"), lambda r, y, s, lex: _polarity(r, y, False, lex)),
    "negation": Generator(("negative", "positive"), lambda r, y, s, lex: _polarity(r, y, True, lex)),
    "count": Generator(("one", "two", "three", "four"), _count),
    "pairs": Generator(("different", "same"), _pairs, pairs=True),
    "intent": Generator(tuple(L.INTENT), _intent),
}
