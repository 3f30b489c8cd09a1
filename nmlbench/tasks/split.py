"""Loaded splits and `load_split`: reader dispatch, derived splits, label checks, OOD label mapping."""
from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from nmlbench.errors import UserError
from nmlbench.paths import data_root as _data_root
from nmlbench.registry import Registry
from nmlbench.tasks.spec import TaskSpec, get_task, resolve_train_task

# A reader maps (spec, source split name, data root, download) to a Split over the task's own labels.
Reader = Callable[[TaskSpec, str, Path, bool], "Split"]
TASK_READERS: Registry[Reader] = Registry("task reader")


Text = str | tuple[str, str]  # one sentence, or a sentence pair (premise, hypothesis / question, answer)


class Split:
    """One split of a task: `split[i] -> (sample, int label)`, plus labels, classes and ids.

    A sample is a PIL RGB image (image tasks) or a `Text`: a string, or a pair of strings for
    sentence-pair tasks, which the text model's tokenizer encodes together (`texts`, text tasks).
    `images` is the whole split as a uint8 (n, H, W, 3) array for array-backed readers (mini, npz),
    else None. `class_subset` (OOD tasks with a class mask) lists the indices of `classes` that this
    task can contain; evaluators restrict predictions to them.
    """

    def __init__(self, labels: np.ndarray, classes: Sequence[str], ids: np.ndarray,
                 get_image: Callable[[int], Image.Image] | None = None, images: np.ndarray | None = None,
                 class_subset: np.ndarray | None = None, texts: Sequence[Text] | None = None) -> None:
        self.labels = np.array(labels, dtype=np.int64)  # a copy: readers may hand out read-only arrays
        self.classes = [str(c) for c in classes]
        self.ids = np.asarray(ids).astype(str)
        self.images = images
        self.class_subset = class_subset
        self._get_image = get_image
        self.texts: list[Text] | None = None if texts is None else [
            t if isinstance(t, str) else (str(t[0]), str(t[1])) for t in texts]
        if len(self.ids) != len(self.labels) or (images is not None and len(images) != len(self.labels)):
            raise ValueError("ids, labels and images must have the same length")
        if self.texts is not None and len(self.texts) != len(self.labels):
            raise ValueError("ids, labels and texts must have the same length")

    @property
    def modality(self) -> str:
        return "text" if self.texts is not None else "image"

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Image.Image | Text, int]:
        if self.texts is not None:
            return self.texts[int(i)], int(self.labels[i])
        if self.images is not None:
            img = Image.fromarray(self.images[i])
        else:
            assert self._get_image is not None
            img = self._get_image(int(i))
        return img.convert("RGB"), int(self.labels[i])

    def __iter__(self) -> Iterator[tuple[Image.Image, int]]:
        return (self[i] for i in range(len(self)))

    def subset(self, index: np.ndarray) -> Split:
        """The samples at `index` (ids and order kept)."""
        index = np.asarray(index, dtype=np.int64)
        get = self._get_image
        return Split(self.labels[index], self.classes, self.ids[index],
                     None if get is None else (lambda i: get(int(index[i]))),
                     None if self.images is None else self.images[index], self.class_subset,
                     None if self.texts is None else [self.texts[int(i)] for i in index])

    def relabel(self, mapping: np.ndarray, classes: Sequence[str], class_subset: np.ndarray | None) -> Split:
        """Same samples with labels mapped through `mapping` into another label space."""
        return Split(mapping[self.labels], classes, self.ids, self._get_image, self.images, class_subset,
                     self.texts)


def resolve_names(ref: str | Sequence[str] | None, spec: TaskSpec) -> list[str] | None:
    """Class names from a list, `timm:<name>` (a file shipped in timm.data._info) or a text file."""
    if ref is None:
        return None
    if not isinstance(ref, str):
        return [str(c) for c in ref]
    if ref.startswith("timm:"):
        path = Path(str(resources.files("timm") / "data" / "_info" / f"{ref[5:]}.txt"))
    else:
        path = Path(ref)
        if not path.is_absolute() and spec.origin:
            path = Path(spec.origin).parent / path
    if not path.is_file():
        raise UserError(f"task {spec.name!r}: class list {ref!r} not found at {path}; "
                        "fix 'classes'/'class_mask'")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def missing_data(spec: TaskSpec, where: Path, can_download: bool) -> UserError:
    """The one error for absent data: where it was expected and how to get it."""
    doc = "docs/language.md" if spec.modality == "text" else "docs/tasks.md"
    how = ("rerun with --download (download=True)" if can_download
           else f"get it from {spec.source or 'its source'} and place it there (see {doc})")
    return UserError(f"task {spec.name!r}: no data at {where}; {how}")


def _carve(labels: np.ndarray, fraction: float, seed: int, key: str) -> np.ndarray:
    """A stratified, seeded subset: round(fraction * n_c) samples of each class c (boolean mask)."""
    rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
    take = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = int(round(fraction * len(idx)))
        take[rng.choice(idx, size=k, replace=False)] = True
    return take


def _read(spec: TaskSpec, split: str, root: Path, download: bool) -> Split:
    """Read `split`, carving it out of (or removing carved parts from) its source split when derived."""
    rules = spec.derived_splits
    source = rules[split]["from"] if split in rules else split
    full = TASK_READERS.get(spec.reader)(spec, source, root, download)
    keep = np.ones(len(full), dtype=bool)
    for name, rule in rules.items():  # in YAML order: each carves from what the previous ones left
        if rule["from"] != source:
            continue
        remaining = np.flatnonzero(keep)
        take = _carve(full.labels[remaining], float(rule["fraction"]), int(rule.get("seed", 0)),
                      f"{spec.name}:{name}")
        if name == split:
            return full.subset(remaining[take])
        keep[remaining[take]] = False
    return full if keep.all() else full.subset(np.flatnonzero(keep))


def _check(spec: TaskSpec, split: Split, where: str, expected: int) -> None:
    if len(split.classes) != expected:
        raise UserError(f"task {spec.name!r}: the spec says {expected} classes but {where} has "
                        f"{len(split.classes)}; fix num_classes (or class_mask) in "
                        f"{spec.origin or 'the task YAML'} or the data")
    if len(split) == 0:
        raise UserError(f"task {spec.name!r}: {where} is empty; check the data")
    if split.modality != spec.modality:
        raise UserError(f"task {spec.name!r}: the spec says modality {spec.modality!r} but its reader "
                        f"{spec.reader!r} gives {split.modality} samples; fix modality in "
                        f"{spec.origin or 'the task YAML'}")
    if split.labels.min() < 0 or split.labels.max() >= expected:
        raise UserError(f"task {spec.name!r}: labels in {where} fall outside 0..{expected - 1}; "
                        f"fix the label files or num_classes")


def _to_train_space(spec: TaskSpec, split: Split, root: Path, download: bool) -> Split:
    """Map an OOD split's labels into its train task's label space (by class name)."""
    train = resolve_train_task(spec)
    train_classes = resolve_names(train.classes, train)
    if train_classes is None:
        train_classes = load_split(train, train.split_names[0], root, download).classes
    if len(train_classes) != spec.num_classes:
        raise UserError(f"task {spec.name!r}: num_classes {spec.num_classes} differs from train_task "
                        f"{train.name!r} ({len(train_classes)}); an OOD task uses its train task's "
                        "label space")
    index = {c: i for i, c in enumerate(train_classes)}
    missing = [c for c in split.classes if c not in index]
    if missing:
        raise UserError(f"task {spec.name!r}: classes {missing[:3]} are not classes of train_task "
                        f"{train.name!r}; OOD tasks must share its label names")
    mapping = np.array([index[c] for c in split.classes], dtype=np.int64)
    subset = None
    if spec.class_mask is not None:
        mask = resolve_names(spec.class_mask, spec) or []
        bad = [c for c in mask if c not in index]
        if bad:
            raise UserError(f"task {spec.name!r}: class_mask names {bad[:3]} "
                            f"are not classes of {train.name!r}")
        subset = np.array(sorted(index[c] for c in mask), dtype=np.int64)
    return split.relabel(mapping, train_classes, subset)


def load_split(spec: TaskSpec | str, split: str, data_root: str | Path | None = None,
               download: bool = False) -> Split:
    """Load one split of a task.

    Args:
        spec: a TaskSpec, a built-in task name or a task YAML path.
        split: "train", "val" or "test" (OOD tasks: "test" only).
        data_root: dataset root (else $NMLBENCH_DATA, else ~/.cache/nmlbench/data).
        download: let readers that can download do so when the data is absent.

    Returns:
        A Split. For OOD tasks labels are in the train task's label space (`split.classes` are its
        classes), so a head trained on `spec.train_task` scores them directly.
    """
    spec = get_task(spec)
    if spec.dense:  # COCO-format boxes/masks: a DenseSplit (nmlbench/tasks/readers_dense.py)
        from nmlbench.tasks.readers_dense import load_dense_split

        return load_dense_split(spec, split, data_root, download)
    if split not in spec.split_names:
        raise UserError(f"task {spec.name!r} has splits {list(spec.split_names)}, not {split!r}"
                        + ("; OOD tasks are evaluated on 'test' only" if spec.domain == "ood" else ""))
    root = _data_root(data_root)
    out = _read(spec, split, root, download)
    # An OOD task with a class mask holds only the masked classes in its own files.
    own = len(resolve_names(spec.class_mask, spec) or []) if spec.class_mask is not None else spec.num_classes
    _check(spec, out, f"split {split!r}", own)
    if spec.domain == "ood":
        out = _to_train_space(spec, out, root, download)
    return out


def read_params(spec: TaskSpec, allowed: dict[str, Any], required: Sequence[str] = ()) -> dict[str, Any]:
    """A reader's params with defaults; unknown or missing keys are errors naming the task file."""
    extra = sorted(set(spec.params) - set(allowed))
    if extra:
        raise UserError(f"task {spec.name!r}: unknown params {extra} for reader {spec.reader!r}; "
                        f"allowed: {sorted(allowed)}")
    missing = [k for k in required if k not in spec.params]
    if missing:
        raise UserError(f"task {spec.name!r}: reader {spec.reader!r} needs params {missing}")
    return {**allowed, **spec.params}
