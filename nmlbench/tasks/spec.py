"""Task and suite definitions: frozen dataclasses read from strict YAML, looked up by name or path.

Built-in tasks live in `nmlbench/tasks/defs/<name>.yaml` (task name = file stem), suites in
`nmlbench/tasks/suites/<name>.yaml`. A user's task is a YAML file of the same form passed by path.
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from nmlbench.config import from_mapping, read_yaml
from nmlbench.errors import UserError

SPLIT_NAMES = ("train", "val", "test")
_DEFS = "defs"
_SUITES = "suites"


@dataclass(frozen=True)
class TaskSpec:
    """One downstream task: where its data comes from and what its labels mean."""

    name: str
    version: int                       # bump when the same reader would yield different samples
    reader: str                        # key in TASK_READERS: mini, npz, image_folder, torchvision, hf
    num_classes: int                   # size of the label space (OOD tasks: that of train_task)
    domain: Literal["id", "ood"] = "id"
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

    def __post_init__(self) -> None:
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
            if not 0 < float(rule["fraction"]) < 1:
                raise ValueError(f"derived_splits.{name}.fraction must be in (0, 1)")

    @property
    def split_names(self) -> tuple[str, ...]:
        if self.splits:
            return tuple(self.splits)
        return ("test",) if self.domain == "ood" else SPLIT_NAMES


@dataclass(frozen=True)
class Suite:
    """A named list of tasks: ID tasks (own heads) and OOD tasks (heads of their train_task)."""

    name: str
    version: int
    id_tasks: tuple[str, ...]
    ood_tasks: tuple[str, ...] = ()
    description: str = ""

    @property
    def tasks(self) -> tuple[str, ...]:
        """Every task to load, in order: ID tasks, the OOD tasks' train tasks not listed, OOD tasks."""
        extra = [get_task(t).train_task for t in self.ood_tasks]
        extra = [t for t in dict.fromkeys(extra) if t and t not in self.id_tasks]
        return tuple(self.id_tasks) + tuple(extra) + tuple(self.ood_tasks)


def _package_dir(kind: str) -> Path:
    return Path(str(resources.files("nmlbench.tasks") / kind))


def _load_spec(path: str) -> TaskSpec:
    return _load_spec_cached(path, Path(path).stat().st_mtime_ns)  # an edited file is read again


@functools.cache
def _load_spec_cached(path: str, mtime_ns: int) -> TaskSpec:
    raw = read_yaml(path)
    raw.setdefault("name", Path(path).stem)
    spec = from_mapping(TaskSpec, raw, path)
    return dataclasses.replace(spec, origin=path)


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


def resolve_train_task(spec: TaskSpec) -> TaskSpec:
    """The ID task an OOD task borrows its head from; a relative YAML path is read beside `spec`'s file."""
    if not spec.train_task:
        raise UserError(f"task {spec.name!r} is not an OOD task; it has no train_task")
    ref = spec.train_task
    if ref.endswith((".yaml", ".yml")) and spec.origin and not Path(ref).is_absolute():
        ref = str(Path(spec.origin).parent / ref)
    train = get_task(ref)
    if train.domain != "id":
        raise UserError(f"task {spec.name!r}: train_task {train.name!r} must be an 'id' task")
    return train


def get_suite(name_or_path: str | Path) -> Suite:
    """A built-in suite by name (`mini`, `paper`, `imagenet-shifts`, ...) or a suite YAML path."""
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")):
        path = Path(text)
    else:
        path = _package_dir(_SUITES) / f"{text}.yaml"
        if not path.is_file():
            close = difflib.get_close_matches(text, list_suites(), n=3, cutoff=0.5)
            hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
            raise UserError(f"unknown suite {text!r}; {hint}known: {', '.join(list_suites())}")
    raw = read_yaml(path)
    raw.setdefault("name", path.stem)
    suite = from_mapping(Suite, raw, str(path))
    for task in suite.id_tasks + suite.ood_tasks:
        spec = get_task(task)
        expected = "id" if task in suite.id_tasks else "ood"
        if spec.domain != expected:
            raise UserError(f"{path}: task {task!r} is listed as {expected} "
                            f"but its domain is {spec.domain!r}")
    return suite
