"""`nmlbench tasks`: list the registered tasks (name, domain, modality, classes, source, licence, version).

    nmlbench tasks list --suite paper
"""
from __future__ import annotations

import argparse

from nmlbench.config import dump_config

EPILOG = """examples:
  nmlbench tasks list                  # every built-in task
  nmlbench tasks list --suite mini     # the tasks one suite evaluates, in order
  nmlbench tasks list --modality text  # only text tasks (GLUE, GLUE-X, ...)
  nmlbench tasks show cifar10          # the resolved definition of one task (name or YAML path)
  nmlbench tasks list --suite my/suite.yaml   # a user suite: paths resolved beside the suite file
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("tasks", help="list and show downstream task definitions",
                                   description=__doc__, epilog=EPILOG)
    sub = parser.add_subparsers(dest="tasks_cmd", metavar="COMMAND", required=True)
    p = sub.add_parser("list", help="a table of tasks", epilog=EPILOG)
    p.add_argument("--suite", default=None,
                   help="only the tasks of this suite (mini, paper, ... or a suite YAML path)")
    p.add_argument("--modality", choices=("image", "text"), default=None,
                   help="only the tasks whose samples are images, or texts")
    p = sub.add_parser("show", help="print one task's resolved definition", epilog=EPILOG)
    p.add_argument("task", help="task name or task YAML path")
    parser.set_defaults(func=run)


def _list(args: argparse.Namespace) -> int:
    from nmlbench.tasks import get_suite, get_task, list_tasks, resolve_train_task

    names = list(get_suite(args.suite).tasks) if args.suite else list_tasks()
    rows = [("name", "key", "domain", "modality", "type", "classes", "version", "source", "licence")]
    for name in names:
        s = get_task(name)
        if args.modality and s.modality != args.modality:
            continue
        dom = s.domain if s.domain == "id" else f"ood<-{resolve_train_task(s).name}"
        where = s.source if s.builtin else s.origin
        kind = {"classification": "class", "detection": "det", "instance_segmentation": "seg"}[s.type]
        rows.append((s.name, s.key[:8], dom, s.modality, kind, str(s.num_classes), str(s.version), where,
                     s.license))
    widths = [max(len(r[i]) for r in rows) for i in range(7)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:7], widths, strict=True)) + f"  {r[7]}  [{r[8]}]")
    return 0


def _show(args: argparse.Namespace) -> int:
    from nmlbench.tasks import get_task

    print(dump_config(get_task(args.task)), end="")
    return 0


def run(args: argparse.Namespace) -> int:
    return {"list": _list, "show": _show}[args.tasks_cmd](args)
