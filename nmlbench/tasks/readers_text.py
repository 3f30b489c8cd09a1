"""Text classification data read with Hugging Face `datasets` (reader `hf_text`): GLUE, GLUE-X, and the like.

A split's samples are strings, or (first, second) pairs for sentence-pair tasks (`text_columns` names one
column or two). Data lives under `data_root/subdir` in one of two forms:

- a `DatasetDict` saved with `save_to_disk` (what `--download` writes: `load_dataset(path, name,
  revision=...)`), or a single saved `Dataset`, read as split `test`;
- parquet files laid out as on the hub, `<split>-*.parquet`, `<split>.parquet` or `<split>/*.parquet`
  (`huggingface-cli download <path> --repo-type dataset --local-dir ...` gives this layout).

Labels go through `label_map` when a dataset's label names or ids differ from the task's classes (GLUE-X
sets read with a GLUE head). Rows whose stored label is listed in `drop_labels` (e.g. SNLI's -1, "no gold
label") are dropped and the count is logged; any other unlabelled (-1) row is refused, since GLUE's test
splits carry no labels and a score on them would be meaningless.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nmlbench.errors import UserError
from nmlbench.tasks.readers_remote import _hf_dataset_dict
from nmlbench.tasks.spec import TaskSpec
from nmlbench.tasks.split import TASK_READERS, Split, read_params, resolve_names

log = logging.getLogger(__name__)

_PARQUET_GLOBS = ("{split}-*.parquet", "{split}.parquet", "{split}/*.parquet")
_UNLABELLED = -1  # what `datasets` stores for "no label" (GLUE test splits, SNLI's no-gold pairs)


def _parquet_files(folder: Path, split: str) -> list[Path]:
    files: list[Path] = []
    for pattern in _PARQUET_GLOBS:
        files += sorted(folder.glob(pattern.format(split=split)))
    return files


def _parquet_splits(folder: Path) -> list[str]:
    """Split names found in a hub-layout folder (for the error that lists them)."""
    names = {p.name.split("-")[0].removesuffix(".parquet") for p in folder.glob("*.parquet")}
    names |= {p.parent.name for p in folder.glob("*/*.parquet")}
    return sorted(names)


def _load(spec: TaskSpec, p: dict[str, Any], root: Path, download: bool, hf_split: str):
    """One hub split as a `datasets.Dataset`, from save_to_disk or hub-layout parquet files."""
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = root / p["subdir"]
    saved = (folder / "dataset_dict.json").is_file() or (folder / "state.json").is_file()
    if not saved and folder.is_dir() and _parquet_splits(folder):
        files = _parquet_files(folder, hf_split)
        if not files:
            raise UserError(f"task {spec.name!r}: {folder} has parquet files for splits "
                            f"{_parquet_splits(folder)}, not {hf_split!r}; fix params.splits or add "
                            f"{hf_split}-*.parquet")
        # The schema's `huggingface` metadata carries the features (ClassLabel names) as on the hub.
        return datasets.Dataset(pa.concat_tables([pq.read_table(f) for f in files]))
    dd = _hf_dataset_dict(spec, p, root, download, single="test")
    if hf_split not in dd:
        raise UserError(f"task {spec.name!r}: the dataset at {folder} has splits {list(dd)}, "
                        f"not {hf_split!r}; fix params.splits")
    return dd[hf_split]


def _text_columns(spec: TaskSpec, value: Any) -> list[str]:
    columns = [value] if isinstance(value, str) else value
    if (not isinstance(columns, list) or not 1 <= len(columns) <= 2
            or not all(isinstance(c, str) and c for c in columns)):
        raise UserError(f"task {spec.name!r}: params.text_columns must be one column name or a list of "
                        f"two (a sentence pair), got {value!r}")
    return columns


def _column(spec: TaskSpec, ds: Any, column: str, hf_split: str, param: str) -> list[Any]:
    if column not in ds.column_names:
        raise UserError(f"task {spec.name!r}: split {hf_split!r} has no column {column!r} "
                        f"(it has {ds.column_names}); fix params.{param}")
    return ds.with_format("arrow")[column].to_pylist()  # ~100x faster than iterating a Column


class _Labels:
    """Stored label values -> indices into the task's classes, through `label_map` when given."""

    def __init__(self, spec: TaskSpec, p: dict[str, Any], feature: Any, classes: list[str]) -> None:
        self.spec, self.classes = spec, classes
        self.names = list(getattr(feature, "names", None) or [])  # a ClassLabel column's names
        self.drop = {str(v) for v in p["drop_labels"]}
        self.index = {c: i for i, c in enumerate(classes)}
        raw_map = p["label_map"]
        if raw_map is not None and not isinstance(raw_map, dict):
            raise UserError(f"task {spec.name!r}: params.label_map must map dataset labels to class names")
        self.map = None if raw_map is None else {str(k): str(v) for k, v in raw_map.items()}
        if self.map is not None:
            bad = sorted(set(self.map.values()) - set(classes))
            if bad:
                raise UserError(f"task {spec.name!r}: params.label_map maps to {bad}, which are not "
                                f"classes of this task ({classes}); fix label_map or classes")
        elif self.names and self.names != classes:
            raise UserError(f"task {spec.name!r}: the dataset's label names {self.names} differ from the "
                            f"task's classes {classes}; add params.label_map")

    def key(self, value: Any) -> str:
        """What label_map is keyed by: a ClassLabel column's name, else the stored value."""
        if self.names and isinstance(value, int | np.integer) and 0 <= value < len(self.names):
            return self.names[int(value)]
        return str(value)

    def target(self, value: Any) -> int | None:
        """The class index of one stored label, or None when it is unknown."""
        key = self.key(value)
        if self.map is not None:
            return self.index.get(self.map.get(key, ""))
        if isinstance(value, int | np.integer) and not isinstance(value, bool):
            return int(value) if 0 <= value < len(self.classes) else None
        return self.index.get(key)


def _labels(spec: TaskSpec, rule: _Labels, raw: Sequence[Any], where: str) -> tuple[np.ndarray, np.ndarray]:
    """(kept row indices, their class indices); refuses unlabelled and unknown values with one line."""
    keep, labels, unknown, unlabelled = [], [], set(), 0
    for i, value in enumerate(raw):
        if str(value) in rule.drop:
            continue
        target = rule.target(value)
        if target is None:
            if value is None or value == _UNLABELLED:
                unlabelled += 1
            else:
                unknown.add(rule.key(value))
            continue
        keep.append(i)
        labels.append(target)
    if unlabelled:
        raise UserError(f"task {spec.name!r}: {unlabelled} of {len(raw)} rows in {where} have no label "
                        f"(-1: e.g. GLUE's hidden test labels); map that split to a labelled one in "
                        f"params.splits, or list -1 in params.drop_labels to drop such rows")
    if unknown:
        raise UserError(f"task {spec.name!r}: labels {sorted(unknown)[:5]} in {where} are not "
                        f"{'keys of params.label_map' if rule.map is not None else 'classes of the task'}; "
                        "add them to params.label_map (or to params.drop_labels)")
    dropped = len(raw) - len(keep)
    if dropped:
        log.warning("task %s: dropped %d of %d rows in %s whose label is in drop_labels %s",
                    spec.name, dropped, len(raw), where, sorted(rule.drop))
    return np.asarray(keep, dtype=np.int64), np.asarray(labels, dtype=np.int64)


@TASK_READERS.register("hf_text")
def read_hf_text(spec: TaskSpec, split: str, root: Path, download: bool) -> Split:
    """A text classification dataset: one or two text columns and a label column, see the module doc."""
    p = read_params(spec, {"path": None, "name": None, "revision": None, "subdir": spec.name, "splits": {},
                           "text_columns": None, "label_column": "label", "label_map": None,
                           "drop_labels": []}, required=["text_columns"])
    columns = _text_columns(spec, p["text_columns"])
    if p["path"] and not p["revision"]:
        raise UserError(f"task {spec.name!r}: params.revision must pin the hub commit of {p['path']!r}, "
                        "so the same task always reads the same data")
    hf_splits = p["splits"].get(split, split)
    hf_splits = [hf_splits] if isinstance(hf_splits, str) else list(hf_splits)
    classes = resolve_names(spec.classes, spec)
    texts: list[Any] = []
    labels, ids = [], []
    for hf_split in hf_splits:  # several: pooled in order (GLUE-X evaluates some sets on all their splits)
        ds = _load(spec, p, root, download, hf_split)
        if p["label_column"] not in ds.column_names:
            raise UserError(f"task {spec.name!r}: split {hf_split!r} has no column {p['label_column']!r} "
                            f"(it has {ds.column_names}); fix params.label_column")
        feature = ds.features[p["label_column"]]
        classes = classes or list(getattr(feature, "names", None) or [])
        if not classes:
            raise UserError(f"task {spec.name!r}: the label column has no class names; set `classes`")
        where = f"split {hf_split!r} of {p['path'] or p['subdir']}"
        keep, y = _labels(spec, _Labels(spec, p, feature, classes), _column(
            spec, ds, p["label_column"], hf_split, "label_column"), where)
        cols = [_column(spec, ds, c, hf_split, "text_columns") for c in columns]
        rows = [tuple(col[i] for col in cols) for i in keep]
        empty = sum(any(not isinstance(t, str) for t in row) for row in rows)
        if empty:
            raise UserError(f"task {spec.name!r}: {empty} rows in {where} have no text in {columns}; "
                            "fix the data (or drop them before saving it)")
        texts += [r[0] if len(r) == 1 else r for r in rows]
        labels.append(y)
        ids += [f"{spec.name}/{hf_split}/{i:06d}" for i in keep]  # the row's index in its hub split
    assert classes is not None
    return Split(np.concatenate(labels), classes, np.array(ids), texts=texts)
