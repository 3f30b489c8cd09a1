"""Task and suite definitions: frozen dataclasses read from strict YAML, looked up by name or path.

Built-in tasks live in `nmlbench/tasks/defs/<name>.yaml` (task name = file stem), suites in
`nmlbench/tasks/suites/<name>.yaml`. A user's task or suite is a YAML file of the same form passed by
path. A task is identified by what it is, never by its short name: `TaskSpec.key` hashes the resolved
definition (with its train task's key and, for a user's file, the file's location), and `TaskSpec.ref`
is what every stage passes around (a built-in name, or the absolute path of a user's YAML).
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import hashlib
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from nmlbench.config import SEED_MAX, Range, bounded, cast_value, from_mapping, read_yaml
from nmlbench.errors import UserError

SPLIT_NAMES = ("train", "val", "test")
_DEFS = "defs"
_SUITES = "suites"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$")  # result schema's `identifier`
# Filled by the loader, never by a YAML file.
_LOADER_FIELDS = ("origin", "key", "builtin")
# Words about a task that change no number: left out of its key.
_DESCRIPTIVE = ("description", "source", "license", "citation")


@dataclass(frozen=True)
class TaskSpec:
    """One downstream task: where its data comes from and what its labels mean."""

    name: str
    # bump when the same reader would yield different samples
    version: int = bounded(ge=1)
    reader: str                        # key in TASK_READERS: mini, npz, image_folder, torchvision, hf
    # size of the label space (OOD tasks: that of train_task)
    num_classes: int = bounded(ge=2)
    domain: Literal["id", "ood"] = "id"
    modality: Literal["image", "text"] = "image"  # what a sample is; a text task's reader gives texts
    # what is predicted: a class per sample, or boxes (+ instance masks) per image (docs/dense.md);
    # for dense tasks num_classes counts the object categories
    type: Literal["classification", "detection", "instance_segmentation"] = "classification"
    train_task: str | None = None      # OOD only: the ID task whose train/val splits train the head
    params: dict[str, Any] = field(default_factory=dict)  # reader-specific, see docs/tasks.md
    splits: tuple[str, ...] = ()       # empty: train/val/test for ID tasks, test for OOD tasks
    # Splits carved deterministically out of another split, in order, e.g.
    # {val: {from: train, fraction: 0.1, seed: 0}}; stratified by class (see docs/tasks.md).
    derived_splits: dict[str, dict[str, Any]] = field(default_factory=dict)
    classes: str | tuple[str, ...] | None = None     # names in label order, or "timm:<file>" / a file
    class_mask: str | tuple[str, ...] | None = None  # OOD: subset of train_task's classes (e.g. IN-R 200)
    description: str = ""
    source: str = ""                   # homepage / download URL
    license: str = ""
    citation: str = ""
    origin: str = ""                   # filled by the loader: the YAML file this spec came from
    key: str = ""                      # filled by the loader: sha256 of the resolved definition
    builtin: bool = False              # filled by the loader: shipped with nmlbench

    def __post_init__(self) -> None:
        if not NAME_PATTERN.match(self.name):
            raise ValueError(f"task name {self.name!r} must be letters, digits and '_.+-' (at most 128); "
                             "rename the file or set `name:` in it")
        if self.domain not in ("id", "ood"):
            raise ValueError(f"domain must be 'id' or 'ood', got {self.domain!r}")
        if self.domain == "ood" and not self.train_task:
            raise ValueError("an 'ood' task needs train_task: the ID task whose head it evaluates")
        if self.domain == "id" and self.train_task:
            raise ValueError("train_task is only for 'ood' tasks")
        if self.version < 1 or self.num_classes < 2:
            raise ValueError("version must be >= 1 and num_classes >= 2")
        bad = [s for s in self.split_names if s not in SPLIT_NAMES]
        if bad:
            raise ValueError(f"unknown split(s) {bad}; splits are {list(SPLIT_NAMES)}")
        for name, rule in self.derived_splits.items():
            if set(rule) - {"from", "fraction", "seed"} or "from" not in rule or "fraction" not in rule:
                raise ValueError(f"derived_splits.{name} needs 'from' and 'fraction' (and optional 'seed')")
            # the same checks as a config field's: finite, in range, seeds whole numbers
            cast_value(rule["fraction"], float, f"derived_splits.{name}.fraction", Range(gt=0, lt=1))
            cast_value(rule.get("seed", 0), int, f"derived_splits.{name}.seed", Range(ge=0, le=SEED_MAX))

    @property
    def dense(self) -> bool:
        """Boxes (and masks) per image rather than one class per sample."""
        return self.type != "classification"

    @property
    def split_names(self) -> tuple[str, ...]:
        if self.splits:
            return tuple(self.splits)
        return ("test",) if self.domain == "ood" else SPLIT_NAMES

    @property
    def ref(self) -> str:
        """What to pass to `get_task` to get this very task back: a built-in name or the YAML's path."""
        return self.name if self.builtin or not self.origin else self.origin

    @property
    def label(self) -> str:
        """File-name-safe and unique: the name plus a short key (two `train.yaml` never collide)."""
        return f"{self.name}-{self.key[:8]}" if self.key else self.name

    def record_block(self, train: TaskSpec | None) -> dict[str, Any]:
        """The `task` block of a result record: the name, and what the task is (key, origin)."""
        return {
            "name": self.name,
            "version": int(self.version),
            "domain": self.domain,
            "train_task": train.name if (self.domain == "ood" and train is not None) else None,
            "num_classes": int(self.num_classes),
            "key": self.key,
            "origin": "builtin" if self.builtin else self.origin,
            "builtin": bool(self.builtin),
            "modality": self.modality,
            **({} if self.type == "classification" else {"type": self.type}),
        }


@dataclass(frozen=True)
class Suite:
    """A named list of tasks: ID tasks (own heads) and OOD tasks (heads of their train_task).

    After `get_suite`, entries are task refs: built-in names, or absolute paths of user YAMLs
    (written relative to the suite file).
    """

    name: str
    version: int = bounded(ge=1)
    id_tasks: tuple[str, ...]
    ood_tasks: tuple[str, ...] = ()
    description: str = ""
    origin: str = ""  # filled by the loader
    key: str = ""  # filled by the loader: hash of the suite and of every task it names
    builtin: bool = False  # filled by the loader

    def __post_init__(self) -> None:
        if not NAME_PATTERN.match(self.name):
            raise ValueError(f"suite name {self.name!r} must be letters, digits and '_.+-'; "
                             "rename the file or set `name:` in it")

    @property
    def label(self) -> str:
        """The results folder's name: a built-in suite's name, or a user suite's name + short key."""
        return self.name if self.builtin or not self.key else f"{self.name}-{self.key[:8]}"

    def specs(self) -> list[TaskSpec]:
        """ID then OOD task specs, in suite order."""
        return [get_task(t) for t in (*self.id_tasks, *self.ood_tasks)]

    @property
    def tasks(self) -> tuple[str, ...]:
        """Every task to load, in order: ID tasks, the OOD tasks' train tasks not listed, OOD tasks."""
        extra = [resolve_train_task(get_task(t)).ref for t in self.ood_tasks]
        extra = [t for t in dict.fromkeys(extra) if t not in self.id_tasks]
        return tuple(self.id_tasks) + tuple(extra) + tuple(self.ood_tasks)


def _package_dir(kind: str) -> Path:
    return Path(str(resources.files("nmlbench.tasks") / kind))


def _load_spec(path: str) -> TaskSpec:
    return _load_spec_cached(path, Path(path).stat().st_mtime_ns)  # an edited file is read again


@functools.cache
def _load_spec_cached(path: str, mtime_ns: int) -> TaskSpec:
    raw = read_yaml(path)
    _refuse_loader_fields(raw, path)
    raw.setdefault("name", Path(path).stem)
    builtin = Path(path).parent == _package_dir(_DEFS)
    spec = dataclasses.replace(from_mapping(TaskSpec, raw, path), origin=path, builtin=builtin)
    return dataclasses.replace(spec, key=_task_key(spec))


def _refuse_loader_fields(raw: dict[str, Any], path: str | Path) -> None:
    bad = [k for k in _LOADER_FIELDS if k in raw]
    if bad:
        raise UserError(f"{path}: {', '.join(bad)} are set by nmlbench, not by the file; remove them")


def _file_digest(ref: Any, spec: TaskSpec) -> Any:
    """A class-list file's content hash (what the labels mean), else the value as written."""
    if not isinstance(ref, str) or ref.startswith("timm:"):
        return ref
    path = Path(ref) if Path(ref).is_absolute() else Path(spec.origin).parent / ref
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ref


def _task_key(spec: TaskSpec) -> str:
    """sha256 of what decides a task's numbers: its settings, class lists, train task, and (for a
    user's file) where it lives, since relative data paths are read beside it. Descriptions do not count."""
    body = {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)
            if f.name not in (*_LOADER_FIELDS, *_DESCRIPTIVE)}
    if spec.modality == "image":  # the field came later: image tasks keep the keys they had
        del body["modality"]
    if spec.type == "classification":  # likewise: classification tasks keep the keys they had
        del body["type"]
    body["classes"] = _file_digest(spec.classes, spec)
    body["class_mask"] = _file_digest(spec.class_mask, spec)
    if spec.train_task:
        body["train_task"] = resolve_train_task(spec).key
    if not spec.builtin:
        body["origin"] = spec.origin
    blob = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def list_tasks() -> list[str]:
    """Names of the built-in tasks."""
    return sorted(p.stem for p in _package_dir(_DEFS).glob("*.yaml"))


def list_suites() -> list[str]:
    return sorted(p.stem for p in _package_dir(_SUITES).glob("*.yaml"))


def get_task(name_or_path: str | Path | TaskSpec) -> TaskSpec:
    """A built-in task by name, or a user's task from a YAML path (`.yaml`/`.yml` or an existing file)."""
    if isinstance(name_or_path, TaskSpec):
        return name_or_path
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or Path(text).is_file():
        path = Path(text).expanduser()
        if not path.is_file():
            raise UserError(f"task file {path} does not exist; pass a task name "
                            f"(`nmlbench tasks list`) or the path of a task YAML")
        return _load_spec(str(path.resolve()))
    path = _package_dir(_DEFS) / f"{text}.yaml"
    if not path.is_file():
        close = difflib.get_close_matches(text, list_tasks(), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
        raise UserError(f"unknown task {text!r}; {hint}see `nmlbench tasks list` or pass a task YAML path")
    return _load_spec(str(path))


def _beside(ref: str, origin: str) -> str:
    """A YAML path written in a file is read relative to that file; names stay names."""
    if _is_path(ref) and origin and not Path(ref).expanduser().is_absolute():
        return str(Path(origin).parent / ref)
    return ref


def _is_path(ref: str) -> bool:
    return ref.endswith((".yaml", ".yml")) or "/" in ref


def resolve_train_task(spec: TaskSpec) -> TaskSpec:
    """The ID task an OOD task borrows its head from; a relative YAML path is read beside `spec`'s file."""
    if not spec.train_task:
        raise UserError(f"task {spec.name!r} is not an OOD task; it has no train_task")
    ref = _beside(spec.train_task, spec.origin)
    try:
        train = get_task(ref)
    except UserError as e:
        raise UserError(f"task {spec.name!r} ({spec.origin or 'built-in'}): its train_task "
                        f"{spec.train_task!r} cannot be found ({e}); fix train_task") from None
    if train.domain != "id":
        raise UserError(f"task {spec.name!r}: train_task {train.name!r} must be an 'id' task")
    return train


def get_suite(name_or_path: str | Path) -> Suite:
    """A built-in suite by name (`mini`, `paper`, `imagenet-shifts`, ...) or a suite YAML path.

    A user suite's task paths are read relative to the suite file; a task named twice, a task in the
    wrong list, or an OOD task whose train task cannot be found is an error here, before any work.
    """
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or Path(text).is_file():
        path = Path(text).expanduser().resolve()
        if not path.is_file():
            raise UserError(f"suite file {path} does not exist; pass a suite name "
                            f"({', '.join(list_suites())}) or the path of a suite YAML")
    else:
        path = _package_dir(_SUITES) / f"{text}.yaml"
        if not path.is_file():
            close = difflib.get_close_matches(text, list_suites(), n=3, cutoff=0.5)
            hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
            raise UserError(f"unknown suite {text!r}; {hint}known: {', '.join(list_suites())}")
    raw = read_yaml(path)
    _refuse_loader_fields(raw, path)
    raw.setdefault("name", path.stem)
    suite = from_mapping(Suite, raw, str(path))
    seen: dict[str, str] = {}
    lists: dict[str, list[str]] = {"id": [], "ood": []}
    for expected, entries in (("id", suite.id_tasks), ("ood", suite.ood_tasks)):
        for task in entries:
            try:
                spec = get_task(_beside(task, str(path)))
            except UserError as e:
                raise UserError(f"{path}: {e}") from None
            if spec.key in seen:
                raise UserError(f"{path}: task {task!r} is listed twice (also as {seen[spec.key]!r}); "
                                "list each task once")
            seen[spec.key] = task
            if spec.domain != expected:
                raise UserError(f"{path}: task {task!r} is listed as {expected} "
                                f"but its domain is {spec.domain!r}; move it to {spec.domain}_tasks")
            if spec.domain == "ood":
                try:
                    resolve_train_task(spec)
                except UserError as e:
                    raise UserError(f"{path}: {e}") from None
            lists[expected].append(spec.ref)
    builtin = path.parent == _package_dir(_SUITES)
    blob = json.dumps([suite.name, suite.version, list(seen)], separators=(",", ":"))
    key = hashlib.sha256(blob.encode()).hexdigest()
    return dataclasses.replace(suite, id_tasks=tuple(lists["id"]), ood_tasks=tuple(lists["ood"]),
                               origin=str(path), key=key, builtin=builtin)
