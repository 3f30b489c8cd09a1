"""The built-in mini text benchmark: a procedurally generated, seed-deterministic text study in miniature.

    from nmlbench.minitext import load_upstream, MINI_TEXT_VERSION
    up = load_upstream()          # ids, texts, labels (60 topic classes), classes

Its downstream tasks are ordinary task definitions (`mini-text-*`, reader `mini_text`, modality text)
in `nmlbench.tasks`; the suite is `mini-text`. See docs/language/mini-text.md.
"""
from __future__ import annotations

from nmlbench.minitext.data import MINI_TEXT_VERSION as MINI_TEXT_VERSION
from nmlbench.minitext.data import TextUpstream as TextUpstream
from nmlbench.minitext.data import load_texts as load_texts
from nmlbench.minitext.data import load_upstream as load_upstream
