"""Downstream tasks: versioned YAML definitions, registered readers, suites, and `load_split`.

    from nmlbench.tasks import get_task, load_split, get_suite
    spec = get_task("mini-objects")              # or a path to a user's task YAML
    split = load_split(spec, "train")            # split[i] -> (PIL RGB, int); .labels .classes .ids
"""
from __future__ import annotations

from nmlbench.tasks import readers_local as _readers_local  # noqa: F401  (registers mini/npz/image_folder)
from nmlbench.tasks import readers_minitext as _readers_minitext  # noqa: F401  (registers mini_text)
from nmlbench.tasks import readers_remote as _readers_remote  # noqa: F401  (registers torchvision/hf)
from nmlbench.tasks.spec import SPLIT_NAMES as SPLIT_NAMES
from nmlbench.tasks.spec import Suite as Suite
from nmlbench.tasks.spec import TaskSpec as TaskSpec
from nmlbench.tasks.spec import get_suite as get_suite
from nmlbench.tasks.spec import get_task as get_task
from nmlbench.tasks.spec import list_suites as list_suites
from nmlbench.tasks.spec import list_tasks as list_tasks
from nmlbench.tasks.spec import resolve_train_task as resolve_train_task
from nmlbench.tasks.split import TASK_READERS as TASK_READERS
from nmlbench.tasks.split import Split as Split
from nmlbench.tasks.split import load_split as load_split
