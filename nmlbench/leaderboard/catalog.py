"""The ground truth a submission is checked against: task versions, suites and test labels.

A small seam: `TaskCatalog` is what the checks need; `NmlbenchCatalog` answers it from
`nmlbench.tasks`, tests answer it from a dict.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from nmlbench.errors import UserError


@dataclass(frozen=True)
class TaskInfo:
    """What a result record's `task` block must agree with."""

    name: str
    version: int
    num_classes: int
    domain: str
    train_task: str | None
    type: str = "classification"  # or detection / instance_segmentation (docs/dense.md)


class TaskCatalog(Protocol):
    # `ref`: a registered task's name, or a user task's YAML path (private boards)
    def task(self, ref: str) -> TaskInfo | None: ...  # None: no such task
    def suite_tasks(self, name: str) -> list[str] | None: ...  # None: no such suite
    def truth(self, ref: str) -> tuple[np.ndarray, np.ndarray]: ...  # test split (ids, labels)
    def dense_truth(self, ref: str) -> Any: ...  # dense tasks: the test split's pycocotools COCO


class NmlbenchCatalog:
    """Answers from task definitions (registered names, or YAML paths for user tasks); ground
    truth read from the local data root, the way `nmlbench evaluate` reads it."""

    def __init__(self, data_root: str | Path | None = None) -> None:
        self.data_root = data_root
        self._truth: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._dense: dict[str, Any] = {}

    def task(self, ref: str) -> TaskInfo | None:
        from nmlbench.tasks import get_task
        from nmlbench.tasks.spec import resolve_train_task

        try:
            spec = get_task(ref)
            # records name an OOD task's train task by name, whether the YAML names it or a path
            train = resolve_train_task(spec).name if spec.domain == "ood" else None
        except (UserError, KeyError, ValueError, OSError):
            return None
        return TaskInfo(
            spec.name, int(spec.version), int(spec.num_classes), str(spec.domain), train, spec.type
        )

    def suite_tasks(self, name: str) -> list[str] | None:
        from nmlbench.tasks import get_suite

        try:
            suite = get_suite(name)
        except (UserError, KeyError, FileNotFoundError):
            return None
        return list(suite.id_tasks) + list(suite.ood_tasks)

    def truth(self, ref: str) -> tuple[np.ndarray, np.ndarray]:
        if ref not in self._truth:
            from nmlbench.tasks import get_task, load_split

            split = load_split(get_task(ref), "test", data_root=self.data_root, download=False)
            self._truth[ref] = (np.asarray(split.ids).astype(str), np.asarray(split.labels, dtype=np.int64))
        return self._truth[ref]

    def dense_truth(self, ref: str) -> Any:
        """A dense task's test split ground truth (a pycocotools COCO), as `evaluate` scored it."""
        if ref not in self._dense:
            from nmlbench.tasks import get_task, load_split

            split = load_split(get_task(ref), "test", data_root=self.data_root, download=False)
            self._dense[ref] = split.coco
        return self._dense[ref]
