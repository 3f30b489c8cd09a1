"""The ground truth a submission is checked against: task versions, suites and test labels.

A small seam: `TaskCatalog` is what the checks need; `NmlbenchCatalog` answers it from
`nmlbench.tasks`, tests answer it from a dict.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

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


class TaskCatalog(Protocol):
    def task(self, name: str) -> TaskInfo | None: ...  # None: no such task
    def suite_tasks(self, name: str) -> list[str] | None: ...  # None: no such suite
    def truth(self, name: str) -> tuple[np.ndarray, np.ndarray]: ...  # test split (ids, labels)


class NmlbenchCatalog:
    """Answers from the registered task definitions; ground truth read from the local data root."""

    def __init__(self, data_root: str | Path | None = None) -> None:
        self.data_root = data_root
        self._truth: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def task(self, name: str) -> TaskInfo | None:
        from nmlbench.tasks import get_task

        try:
            spec = get_task(name)
        except (UserError, KeyError, FileNotFoundError):
            return None
        return TaskInfo(
            spec.name, int(spec.version), int(spec.num_classes), str(spec.domain), spec.train_task
        )

    def suite_tasks(self, name: str) -> list[str] | None:
        from nmlbench.tasks import get_suite

        try:
            suite = get_suite(name)
        except (UserError, KeyError, FileNotFoundError):
            return None
        return list(suite.id_tasks) + list(suite.ood_tasks)

    def truth(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        if name not in self._truth:
            from nmlbench.tasks import get_task, load_split

            split = load_split(get_task(name), "test", data_root=self.data_root, download=False)
            self._truth[name] = (np.asarray(split.ids).astype(str), np.asarray(split.labels, dtype=np.int64))
        return self._truth[name]
