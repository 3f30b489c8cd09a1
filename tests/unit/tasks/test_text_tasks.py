"""GLUE / GLUE-X text tasks: the `hf_text` reader on tiny data in real on-disk formats, label maps, errors."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pytest

from nmlbench.errors import UserError
from nmlbench.tasks import cli as tasks_cli
from nmlbench.tasks import get_suite, get_task, list_tasks, load_split, resolve_train_task

GLUE = ("sst2", "cola", "mrpc", "qqp", "mnli", "qnli", "rte")
NLI = ["entailment", "neutral", "contradiction"]


def _features(columns: dict[str, str], names: list[str] | None):
    import datasets

    feats = {c: datasets.Value(t) for c, t in columns.items()}
    if "label" not in feats:  # given: stored as is (e.g. strings)
        feats["label"] = datasets.ClassLabel(names=names) if names else datasets.Value("int64")
    return datasets.Features(feats)


def _dataset(rows: dict[str, list], columns: dict[str, str], names: list[str] | None = None):
    import datasets

    return datasets.Dataset.from_dict(rows, features=_features(columns, names))


def _sst2_rows(n: int, labels: list[int] | None = None) -> dict[str, list]:
    labels = labels if labels is not None else [i % 2 for i in range(n)]
    return {"sentence": [f"{'great' if y == 1 else 'dull'} film {i}" for i, y in enumerate(labels)],
            "label": labels, "idx": list(range(n))}


def _nli_rows(labels: list[int]) -> dict[str, list]:
    return {"premise": [f"premise {i}" for i in range(len(labels))],
            "hypothesis": [f"hypothesis {i} is {y}" for i, y in enumerate(labels)], "label": labels}


SST2_COLS = {"sentence": "string", "idx": "int32"}
NLI_COLS = {"premise": "string", "hypothesis": "string"}


@pytest.fixture
def glue_sst2(tmp_path: Path) -> Path:
    """GLUE SST-2 as `load_dataset("nyu-mll/glue", "sst2").save_to_disk()` writes it; test labels hidden."""
    import datasets

    names = ["negative", "positive"]
    dd = datasets.DatasetDict({
        "train": _dataset(_sst2_rows(20), SST2_COLS, names),
        "validation": _dataset(_sst2_rows(6, [1, 0, 1, 1, 0, 0]), SST2_COLS, names),
        "test": _dataset(_sst2_rows(4, [-1] * 4), SST2_COLS, names),
    })
    dd.save_to_disk(str(tmp_path / "glue" / "sst2"))
    return tmp_path


def test_single_sentence_glue_task_from_save_to_disk(glue_sst2: Path) -> None:
    spec = get_task("sst2")
    train, val, test = (load_split(spec, s, glue_sst2) for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (18, 2, 6)  # val = 10 % of train, stratified
    assert np.bincount(val.labels).tolist() == [1, 1] and not set(train.ids) & set(val.ids)
    assert train.modality == "text" and train.classes == ["negative", "positive"]
    assert test.labels.tolist() == [1, 0, 1, 1, 0, 0]  # our test is GLUE's validation split
    text, label = test[0]
    assert text == "great film 0" and label == 1
    assert test.ids[2] == "sst2/validation/000002"
    text, label = train[3]
    assert isinstance(text, str) and text.startswith("great" if label else "dull")


def test_glue_test_split_without_labels_is_refused(glue_sst2: Path, write_yaml) -> None:
    params = {"path": "nyu-mll/glue", "name": "sst2", "revision": "x" * 40, "subdir": "glue/sst2",
              "text_columns": "sentence"}
    spec = get_task(write_yaml("hidden", {"version": 1, "reader": "hf_text", "modality": "text",
                                          "num_classes": 2, "splits": ["test"], "params": params}))
    with pytest.raises(UserError, match=r"4 of 4 rows in split 'test' .* have no label .*drop_labels"):
        load_split(spec, "test", glue_sst2)


@pytest.fixture
def glue_mnli_parquet(tmp_path: Path) -> Path:
    """GLUE MNLI laid out as on the hub (`huggingface-cli download nyu-mll/glue`): mnli/<split>-*.parquet"""
    folder = tmp_path / "glue" / "mnli"
    folder.mkdir(parents=True)
    for split, labels in (("train", [0, 1, 2] * 10), ("validation_matched", [2, 1, 0, 0]),
                          ("validation_mismatched", [1, 1, 2]), ("test_matched", [-1, -1])):
        _dataset(_nli_rows(labels), NLI_COLS, NLI).to_parquet(str(folder / f"{split}-00000-of-00001.parquet"))
    return tmp_path


def test_sentence_pair_task_and_mismatched_ood_from_hub_parquet(glue_mnli_parquet: Path, user_copy) -> None:
    test = load_split("mnli", "test", glue_mnli_parquet)
    assert test.classes == NLI and test.labels.tolist() == [2, 1, 0, 0]
    (premise, hypothesis), label = test[0]
    assert (premise, hypothesis, label) == ("premise 0", "hypothesis 0 is 2", 2)
    assert len(load_split("mnli", "train", glue_mnli_parquet)) == 27
    ood = load_split("mnli-mismatched", "test", glue_mnli_parquet)
    assert ood.classes == NLI and ood.labels.tolist() == [1, 1, 2] and isinstance(ood.texts[0], tuple)
    with pytest.raises(UserError, match=r"parquet files for splits .*validation_matched.*, not 'nope'"):
        load_split(user_copy("mnli", {"splits": {"test": "nope"}}), "test", glue_mnli_parquet)


@pytest.fixture
def user_copy(tmp_path: Path):
    """Write a user task YAML copied from a built-in one, with some params and fields replaced."""
    import yaml

    def write(name: str, params: dict, **fields) -> Path:
        spec = get_task(name)
        raw = {"version": 1, "reader": spec.reader, "modality": "text", "num_classes": spec.num_classes,
               "classes": list(spec.classes), "params": {**spec.params, **params}, "domain": spec.domain,
               "derived_splits": dict(spec.derived_splits), **fields}
        if spec.train_task:
            raw["train_task"] = spec.train_task
        out = tmp_path / f"{name}-copy-{len(list(tmp_path.glob('*-copy-*.yaml')))}.yaml"
        out.write_text(yaml.safe_dump(raw))
        return out

    return write


@pytest.fixture
def snli(tmp_path: Path) -> Path:
    """SNLI as saved from `stanfordnlp/snli`: 3 NLI classes, -1 for pairs without a gold label."""
    import datasets

    dd = datasets.DatasetDict({"test": _dataset(_nli_rows([0, 1, -1, 2, 0, -1, 1]), NLI_COLS, NLI)})
    dd.save_to_disk(str(tmp_path / "snli" / "plain_text"))
    return tmp_path


def test_snli_drops_unlabelled_pairs_and_says_so(snli: Path, user_copy,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="nmlbench.tasks.readers_text"):
        split = load_split("mnli-snli", "test", snli)
    assert split.labels.tolist() == [0, 1, 2, 0, 1] and split.classes == NLI
    assert list(split.ids) == [f"mnli-snli/test/{i:06d}" for i in (0, 1, 3, 4, 6)]  # rows keep their ids
    assert "dropped 2 of 7 rows" in caplog.text
    with pytest.raises(UserError, match="2 of 7 rows .* have no label"):
        load_split(user_copy("mnli-snli", {"drop_labels": []}, domain="ood"), "test", snli)


def test_three_class_nli_set_read_with_a_two_class_head(snli: Path, user_copy) -> None:
    """SNLI under RTE's head: entailment stays, neutral and contradiction become not_entailment."""
    spec = user_copy("rte-scitail", {
        "path": "stanfordnlp/snli", "name": "plain_text", "revision": "x" * 40, "subdir": "snli/plain_text",
        "splits": {"test": "test"}, "drop_labels": [-1],
        "label_map": {"entailment": "entailment", "neutral": "not_entailment",
                      "contradiction": "not_entailment"}}, domain="ood")
    split = load_split(spec, "test", snli)
    assert split.classes == ["entailment", "not_entailment"]
    assert split.labels.tolist() == [0, 1, 1, 0, 1]
    partial = user_copy("rte-scitail", {"subdir": "snli/plain_text", "splits": {"test": "test"},
                                         "drop_labels": [-1], "label_map": {"entailment": "entailment"}},
                         domain="ood")
    with pytest.raises(UserError, match=r"\['contradiction', 'neutral'\] .* not keys of params.label_map"):
        load_split(partial, "test", snli)
    wrong = user_copy("rte-scitail", {"subdir": "snli/plain_text", "splits": {"test": "test"},
                                      "label_map": {"neutral": "neutral"}}, domain="ood")
    with pytest.raises(UserError, match=r"label_map maps to \['neutral'\], which are not classes"):
        load_split(wrong, "test", snli)


def test_string_labels_and_a_single_saved_dataset(tmp_path: Path) -> None:
    """GLUE-X's own releases (e.g. NewsQA-based QNLI) are one saved Dataset with string labels."""
    rows = {"question": ["who?", "when?", "where?"], "sentence": ["him.", "then.", "nowhere."],
            "label": ["entailment", "entailment", "not_entailment"]}
    _dataset(rows, {"question": "string", "sentence": "string", "label": "string"}).save_to_disk(
        str(tmp_path / "glue-x" / "newsqa"))
    split = load_split("qnli-newsqa", "test", tmp_path)
    assert split.classes == ["entailment", "not_entailment"] and split.labels.tolist() == [0, 0, 1]
    assert split[2] == (("where?", "nowhere."), 1)


def test_missing_data_says_where_and_how(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"no data at .*glue/sst2; rerun with --download"):
        load_split("sst2", "train", tmp_path)
    with pytest.raises(UserError, match="could not download 'nyu-mll/glue'"):  # offline in tests
        load_split("sst2", "train", tmp_path, download=True)
    assert not (tmp_path / "glue").exists()  # nothing half-written
    # A GLUE-X release with no hub copy: --download cannot help, the line says where to get it.
    for download in (False, True):
        with pytest.raises(UserError, match=r"no data at .*glue-x/grammar; get it from https://drive.* "
                                            r"place it there \(see docs/language.md\)"):
            load_split("cola-grammar", "test", tmp_path, download=download)


def test_bad_params_are_one_line(glue_sst2: Path, user_copy) -> None:
    with pytest.raises(UserError, match=r"no column 'sentense' \(it has \['sentence', 'label', 'idx'\]\)"):
        load_split(user_copy("sst2", {"text_columns": ["sentense"]}), "test", glue_sst2)
    with pytest.raises(UserError, match="text_columns must be one column name or a list of two"):
        load_split(user_copy("sst2", {"text_columns": ["a", "b", "c"]}), "test", glue_sst2)
    with pytest.raises(UserError, match="no column 'score'.*fix params.label_column"):
        load_split(user_copy("sst2", {"label_column": "score"}), "test", glue_sst2)
    with pytest.raises(UserError, match=r"names \['negative', 'positive'\] differ .* add params.label_map"):
        load_split(user_copy("sst2", {}, classes=["neg", "pos"]), "test", glue_sst2)
    with pytest.raises(UserError, match="params.revision must pin"):
        load_split(user_copy("sst2", {"revision": None}), "test", glue_sst2)
    with pytest.raises(UserError, match=r"has splits \['train', 'validation', 'test'\], not 'dev'"):
        load_split(user_copy("sst2", {"splits": {"test": "dev"}}), "test", glue_sst2)


def test_every_glue_and_glue_x_task_loads_with_a_covering_label_map() -> None:
    glue_x = get_suite("glue-x")
    assert get_suite("glue").id_tasks == GLUE == glue_x.id_tasks
    assert len(glue_x.ood_tasks) == 21 and glue_x.tasks == GLUE + glue_x.ood_tasks
    assert "stsb" not in list_tasks()  # a regression task: the metric layer is top-1 accuracy
    for name in (*GLUE, *glue_x.ood_tasks):
        spec = get_task(name)
        assert spec.modality == "text" and spec.reader == "hf_text" and spec.source and spec.license, name
        if spec.params.get("path"):
            assert spec.params["revision"], name  # hub data pinned
        if spec.domain == "ood":
            train = resolve_train_task(spec)
            assert list(spec.classes) == list(train.classes) and spec.num_classes == train.num_classes
            # every class of the head can be hit, and the map only names the head's classes
            assert set(spec.params["label_map"].values()) == set(train.classes), name
        else:
            assert spec.params["path"] == "nyu-mll/glue" and "val" in spec.derived_splits


def test_tasks_cli_lists_text_tasks(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="nmlbench")
    tasks_cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(["tasks", "list", "--suite", "glue-x"])
    assert args.func(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 + 7 + 21 and any(line.split()[:4] == ["mnli-snli", line.split()[1], "ood<-mnli",
                                                                  "text"] for line in lines)
    args = parser.parse_args(["tasks", "list", "--modality", "image"])
    assert args.func(args) == 0
    names = {line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]}
    assert "cifar10" in names and "rendered-sst2" in names and not names & {*GLUE, "mnli-snli"}


def test_download_loads_the_pinned_revision_and_saves_it(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    calls = []

    def fake_load_dataset(path, name=None, revision=None, cache_dir=None):
        calls.append((path, name, revision))
        rows = _nli_rows([0, 1, 2, 1])
        return datasets.DatasetDict({s: _dataset(rows, NLI_COLS, NLI)
                                     for s in ("train", "validation_matched", "validation_mismatched")})

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    split = load_split("mnli-mismatched", "test", tmp_path, download=True)
    assert calls == [("nyu-mll/glue", "mnli", get_task("mnli").params["revision"])]
    assert (tmp_path / "glue" / "mnli" / "dataset_dict.json").is_file() and len(split) == 4
    assert len(load_split("mnli", "test", tmp_path)) == 4 and len(calls) == 1  # read back, not fetched again
