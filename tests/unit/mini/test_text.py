"""The built-in mini text benchmark: determinism, sizes, label spaces, shifts, pairs, noise on its corpus."""
from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from nmlbench.cli import main
from nmlbench.errors import UserError
from nmlbench.minitext import MINI_TEXT_VERSION, load_texts, load_upstream
from nmlbench.minitext import corpus as C
from nmlbench.minitext import data as D
from nmlbench.minitext import lexicon as L
from nmlbench.noise import ensure_manifest, noisy_labels_for, read_manifest
from nmlbench.tasks import get_suite, get_task, load_split


@pytest.fixture
def out_root() -> Path:
    return Path(os.environ["NMLBENCH_ROOT"])  # tests/conftest.py: a fresh folder per test


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, default=lambda a: np.asarray(a).tolist()).encode()).hexdigest()


def _fresh() -> None:
    D._upstream.cache_clear()
    D._split.cache_clear()
    L.lexicon.cache_clear()


def test_same_seed_same_bytes_other_seed_differs() -> None:
    _fresh()
    up = load_upstream()
    a = _digest(up.ids, up.texts, up.labels, up.classes, load_texts("pairs", "plain", "train"))
    _fresh()
    up2 = load_upstream()
    assert _digest(up2.ids, up2.texts, up2.labels, up2.classes, load_texts("pairs", "plain", "train")) == a
    other = load_upstream(seed=1)
    assert not np.array_equal(other.texts, up.texts)
    assert load_texts("families", "plain", "train", seed=1)[0] != load_texts("families", "plain", "train")[0]


# sha256 of what seed 0 draws (upstream + one OOD split) under MINI_TEXT_VERSION 1.
PINNED = "c84202cdba693eb0681d3329fac6fe3943305b016a56440a12bdac74101b249d"


def test_the_drawn_bytes_are_pinned_to_the_version() -> None:
    """A change in what a seed draws must come with a MINI_TEXT_VERSION bump (and new task versions)."""
    up = load_upstream()
    texts, labels = load_texts("families", "synonyms", "test")
    got = _digest(up.texts, up.labels, texts, labels)
    assert (MINI_TEXT_VERSION, got) == (1, PINNED), "the corpus changed: bump MINI_TEXT_VERSION, re-pin"


def test_upstream_has_60_balanced_classes_and_unique_ids() -> None:
    up = load_upstream()
    assert len(up.classes) == 60 and len(set(up.classes)) == 60
    assert Counter(up.labels.tolist()) == dict.fromkeys(range(60), D.UPSTREAM_PER_CLASS)
    assert len(np.unique(up.ids)) == len(up) == len(up.texts) and up.ids[0].startswith("txt/c")
    assert all(isinstance(t, str) and t for t in up.texts.tolist())


def test_lexicon_words_are_unique_and_synonyms_only_upstream() -> None:
    lex = L.lexicon(MINI_TEXT_VERSION)
    groups = [*lex.family_words, *lex.family_synonyms, *lex.topic_words, *lex.topic_synonyms,
              lex.distractors, lex.positive, lex.negative, lex.register]
    words = [w for g in groups for w in g]
    assert len(words) == len(set(words)) and not set(words) & set(L.TEMPLATE_WORDS)
    synonyms = {w for g in (*lex.family_synonyms, *lex.topic_synonyms) for w in g}
    primary = {w for g in (*lex.family_words, *lex.topic_words) for w in g}
    up_words = Counter(w for t in load_upstream().texts for w in t.split())
    seen = sum(up_words[w] for w in synonyms) / sum(up_words[w] for w in synonyms | primary)
    assert 0.15 < seen < 0.35  # synonyms are rare upstream (UPSTREAM_STYLE), yet nearly all are seen
    assert np.mean([up_words[w] > 0 for w in synonyms]) > 0.95
    id_words = {w for t in load_texts("families", "plain", "train")[0] for w in t.split()}
    ood_words = {w for t in load_texts("families", "synonyms", "test")[0] for w in t.split()}
    assert not id_words & synonyms and not ood_words & primary and ood_words & synonyms


def test_every_task_loads_with_its_modality_classes_and_sizes() -> None:
    suite = get_suite("mini-text")
    assert len(suite.id_tasks) >= 6 and len(suite.ood_tasks) >= 2
    for name in suite.tasks:
        spec = get_task(name)
        assert spec.modality == "text" and spec.reader == "mini_text" and name.startswith("mini-text-")
        for split in spec.split_names:
            s = load_split(spec, split)
            assert s.modality == "text" and s.images is None
            assert len(s) == D.SPLIT_SIZES[split] and len(s.classes) == spec.num_classes
            counts = np.bincount(s.labels, minlength=spec.num_classes)
            assert counts.min() == counts.max()  # balanced
            assert len(np.unique(s.ids)) == len(s)
            assert len(set(s.texts)) > 0.9 * len(s)  # not a handful of repeated sentences


def test_ood_tasks_use_their_train_tasks_label_space_with_other_text() -> None:
    for name in get_suite("mini-text").ood_tasks:
        spec = get_task(name)
        assert spec.domain == "ood" and spec.split_names == ("test",)
        train = load_split(spec.train_task, "train")
        ood = load_split(name, "test")
        assert ood.classes == train.classes
        assert not set(ood.texts) & set(load_split(spec.train_task, "test").texts)


def test_pair_task_gives_two_tuples_of_text() -> None:
    s = load_split("mini-text-pairs", "val")
    text, label = s[0]
    assert isinstance(text, tuple) and len(text) == 2 and all(isinstance(t, str) and t for t in text)
    assert all(isinstance(t, tuple) and len(t) == 2 for t in s.texts)
    assert label in (0, 1) and s.classes == ["different", "same"]
    assert all(isinstance(t, str) for t in load_split("mini-text-families", "val").texts)


def test_labels_are_written_into_the_text() -> None:
    """Each label is readable from its text by construction (the generator's own rule)."""
    lex = L.lexicon(MINI_TEXT_VERSION)
    texts, labels = load_texts("count", "plain", "test")
    joins = [t.count(" and ") + t.count(" ; ") + t.count(" , then ") for t in texts]
    assert np.array_equal(np.array(joins), labels)
    texts, labels = load_texts("sentiment", "plain", "test")
    pos = np.array([any(w in lex.positive for w in t.split()) for t in texts])
    assert np.array_equal(pos, labels == 1)
    texts, labels = load_texts("negation", "plain", "test")
    pos = np.array([any(w in lex.positive for w in t.split()) for t in texts])
    neg = np.array([any(w in L.NEGATIONS for w in t.split()) for t in texts])
    assert np.array_equal(pos ^ neg, labels == 1) and 0.2 < neg.mean() < 0.4
    texts, labels = load_texts("intent", "plain", "test")
    assert all(t.endswith("?") == (y == 1) for t, y in zip(texts, labels, strict=True))


def test_unknown_generator_shift_and_split_are_one_line_errors() -> None:
    with pytest.raises(UserError, match="did you mean 'pairs'"):
        load_texts("pair", "plain", "train")
    with pytest.raises(UserError, match="no 'wire' shift"):
        load_texts("sentiment", "wire", "test")
    with pytest.raises(UserError, match="not 'dev'"):
        load_texts("families", "plain", "dev")
    assert set(C.GENERATORS["families"].shifts) == {"plain", "synonyms", "wire"}


def test_noise_manifest_on_the_text_corpus_is_audited(out_root: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["noise", "--dataset", "mini-text", "--type", "sym", "--rate", "10%"]) == 0
    capsys.readouterr()
    manifest = out_root / "noisy" / "mini-text" / "sym10-s0" / "manifest.parquet"
    assert main(["noise", "audit", str(manifest), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    up = load_upstream()
    assert rep["n_corrupted"] == round(0.1 * len(up)) and rep["source_check"]["status"] == "ok"
    assert rep["source_check"]["n_checked"] == len(up)
    noisy = noisy_labels_for(manifest, up.ids, clean_labels=up.labels)
    assert (noisy != up.labels).sum() == round(0.1 * len(up))
    df, meta = read_manifest(ensure_manifest("mini-text", "sym", "10%", root=out_root))
    assert meta["n_samples"] == len(up) and len(df) == len(up)  # the same manifest, reused


def test_caption_noise_on_the_text_corpus_is_refused(out_root: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["noise", "--dataset", "mini-text", "--type", "caption", "--rate", "10%"]) == 2
    err = capsys.readouterr().err
    assert "has labels, not captions" in err and err.count("\n") == 1
    assert not (out_root / "noisy").exists() or not any((out_root / "noisy").rglob("manifest.*"))


def test_mini_text_preview_prints_every_task(capsys: pytest.CaptureFixture) -> None:
    assert main(["mini", "text", "--per-task", "1", "--split", "val"]) == 0
    out = capsys.readouterr().out
    assert all(f"{name} (" in out for name in get_suite("mini-text").tasks)
    assert " || " in out and "upstream: 6000 sentences, 60 classes" in out
