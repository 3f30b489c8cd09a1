"""The mini text benchmark's language: a fixed synthetic lexicon and the sentence templates.

Content words are pronounceable pseudo-words, so no pretrained model knows them in advance and every
association a model has must have been learnt from the upstream corpus. The lexicon depends on
MINI_TEXT_VERSION only, never on the data seed: it is the language, and a seed draws sentences in it
(so an encoder pretrained on one seed's upstream still reads another seed's tasks).

Structure: 12 topic families x 5 topics = 60 upstream classes. Each topic owns TOPIC_WORDS words, each
family FAMILY_WORDS words shared by its topics; every one of those words has a synonym (a rare second
form: upstream uses it now and then, the ID tasks never, the `synonyms` OOD shift always). Distractor
words carry no label; polarity words are neutral upstream and the label of the sentiment tasks.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

N_FAMILIES = 12
TOPICS_PER_FAMILY = 5
TOPIC_WORDS = 8       # own words per topic
FAMILY_WORDS = 6      # words shared by the topics of one family
N_DISTRACTORS = 120
N_POLAR = 8           # per polarity
N_REGISTER = 16       # filler words of the 'wire' register

_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z",
           "br", "dr", "gl", "kr", "pl", "sk", "st", "tr", "sh", "ch")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ou", "ee")
_CODAS = ("", "", "", "n", "r", "l", "s", "k", "m", "t")

# Real English function words: shared by every class, so they carry no label.
DETERMINERS = ("the", "a", "this", "that", "every", "some", "one", "our")
PREPOSITIONS = ("near", "with", "beside", "under", "over", "behind", "after", "before", "around")
NEGATIONS = ("not", "never", "hardly")


@dataclass(frozen=True)
class Lexicon:
    """Every word list of the language; words are unique across all lists."""

    family_words: tuple[tuple[str, ...], ...]    # [family][i]
    family_synonyms: tuple[tuple[str, ...], ...]
    topic_words: tuple[tuple[str, ...], ...]     # [topic][i], topic = family * TOPICS_PER_FAMILY + k
    topic_synonyms: tuple[tuple[str, ...], ...]
    distractors: tuple[str, ...]
    positive: tuple[str, ...]
    negative: tuple[str, ...]
    register: tuple[str, ...]                    # filler words of the 'wire' register


def _word(rng: np.random.Generator) -> str:
    n = int(rng.integers(2, 4))
    return "".join(_ONSETS[rng.integers(len(_ONSETS))] + _VOWELS[rng.integers(len(_VOWELS))]
                   + (_CODAS[rng.integers(len(_CODAS))] if i == n - 1 else "") for i in range(n))


@functools.cache
def lexicon(version: int) -> Lexicon:
    """The lexicon of one MINI_TEXT_VERSION (cached; a few milliseconds)."""
    rng = np.random.default_rng([version, 0x7E47])
    taken = set(DETERMINERS + PREPOSITIONS + NEGATIONS) | set(TEMPLATE_WORDS)
    words: list[str] = []
    n_topics = N_FAMILIES * TOPICS_PER_FAMILY
    need = (2 * (N_FAMILIES * FAMILY_WORDS + n_topics * TOPIC_WORDS)
            + N_DISTRACTORS + 2 * N_POLAR + N_REGISTER)
    while len(words) < need:
        w = _word(rng)
        if w not in taken and len(w) >= 4:
            taken.add(w)
            words.append(w)
    it = iter(words)

    def take(groups: int, per: int) -> tuple[tuple[str, ...], ...]:
        return tuple(tuple(next(it) for _ in range(per)) for _ in range(groups))

    return Lexicon(family_words=take(N_FAMILIES, FAMILY_WORDS),
                   family_synonyms=take(N_FAMILIES, FAMILY_WORDS),
                   topic_words=take(n_topics, TOPIC_WORDS), topic_synonyms=take(n_topics, TOPIC_WORDS),
                   distractors=take(1, N_DISTRACTORS)[0], positive=take(1, N_POLAR)[0],
                   negative=take(1, N_POLAR)[0], register=take(1, N_REGISTER)[0])


# --- templates ----------------------------------------------------------------------------------
# Slots: {T} topic word, {F} family word, {D} distractor, {A} determiner, {P} preposition,
# {R} register filler, {J} polarity word, {N} negation. Everything else is literal.

PLAIN = (  # the register of the upstream corpus and of every ID task
    "{A} {T} {P} {A} {F} was {D}",
    "we saw {A} {T} and {A} {T} {P} {A} {D}",
    "they say {A} {F} {T} is {D}",
    "{A} {D} {T} went {P} {A} {T}",
    "there was {A} {T} {P} {A} {F} {T}",
    "{A} {F} keeps {A} {T} {P} {A} {D} {T}",
    "i think {A} {T} is {D} {P} {A} {F}",
    "{A} {T} and {A} {D} {F} met {P} {A} {T}",
)
WIRE = (  # another register ('newswire'): telegraphic, few content words among its own fillers
    "{R} : {T} {R} {D} , {D}",
    "{D} {R} {F} -- {R} {D}",
    "{R} {R} {T} : {D} {D} {R}",
    "{D} {R} : {T} {D} , {R}",
)
SENTIMENT = (  # {J} is the polarity word; {N} an optional negation before it
    "{A} {T} {P} {A} {F} was {N} {J}",
    "they found {A} {F} {T} {N} {J} at all",
    "{A} {T} is {N} {J} {P} {A} {D}",
    "i think {A} {D} {T} was {N} {J}",
)
INTENT = {  # the label of the intent task is which of these template sets a sentence comes from
    "statement": ("{A} {T} is {P} {A} {F}", "{A} {F} {T} was {D} today", "{A} {T} stays {P} {A} {D}"),
    "question": ("is {A} {T} {P} {A} {F} ?", "where did {A} {F} {T} go ?", "why is {A} {T} so {D} ?"),
    "request": ("please bring {A} {T} {P} {A} {F}", "put {A} {F} {T} down now", "go and find {A} {D} {T}"),
}
CLAUSE = ("{A} {T} was {D}", "{A} {F} {T} stayed {P} {A} {D}", "we saw {A} {T}",
          "{A} {D} {T} went {P} {A} {F}")
CLAUSE_JOINS = (" and ", " ; ", " , then ")

TEMPLATE_WORDS = tuple(sorted({w for group in (PLAIN, WIRE, SENTIMENT, CLAUSE, *INTENT.values())
                               for t in group for w in t.split() if not w.startswith("{")}
                              | {"and", "then"}))
