"""`nmlbench mini`: generate, inspect and preview the built-in mini benchmark.

    nmlbench mini build                 # generate (or reuse) the cache, print sizes and time
    nmlbench mini show --out grid.png   # a preview sheet: upstream + every mini task
    nmlbench mini text                  # sample sentences of the mini text benchmark (nmlbench.minitext)
"""
from __future__ import annotations

import argparse
import json

from nmlbench import cliargs
from nmlbench.errors import UserError
from nmlbench.io import check_output

EPILOG = """examples:
  nmlbench mini build                      # generate once, cached under $NMLBENCH_DATA/mini-v1/seed0
  nmlbench mini show --out mini-grid.png   # preview sheet of upstream and all 18 tasks
  nmlbench mini info                       # version, cache folder, sizes, tasks
  nmlbench mini text --per-task 2          # the text benchmark: upstream and every mini-text task
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("mini", help="the built-in mini benchmark: build, show, info",
                                   description=__doc__, epilog=EPILOG)
    sub = parser.add_subparsers(dest="mini_cmd", metavar="COMMAND", required=True)
    for name, text in (("build", "generate (or reuse) the cached mini benchmark"),
                       ("show", "write a PNG preview grid"), ("info", "print version, cache and tasks"),
                       ("text", "print sample sentences of the mini text benchmark")):
        p = sub.add_parser(name, help=text, description=text, epilog=EPILOG)
        p.add_argument("--data-root", default=None, help="dataset root (default $NMLBENCH_DATA)")
        p.add_argument("--seed", type=cliargs.seed("--seed"), default=0, help="generation seed (default 0)")
        if name == "show":
            p.add_argument("--out", required=True, help="PNG file to write")
            p.add_argument("--split", default="test", choices=("train", "val", "test"),
                           help="which split of each ID task to show (OOD tasks: test)")
            p.add_argument("--per-row", type=cliargs.integer("--per-row", ge=1),
                           default=12, help="images per row")
        if name == "info":
            p.add_argument("--json", action="store_true", help="print JSON instead of text")
        if name == "text":
            p.add_argument("--split", default="test", choices=("train", "val", "test"),
                           help="which split of each ID task to show (OOD tasks: test)")
            p.add_argument("--per-task", type=cliargs.integer("--per-task", ge=1), default=3,
                           help="sentences per task")
    parser.set_defaults(func=run)


def _mini_pairs(seed: int) -> list[tuple[str, str, str]]:
    """(task, generator, domain) for every task of the `mini` suite."""
    from nmlbench.tasks import get_suite, get_task

    out = []
    for name in get_suite("mini").tasks:
        spec = get_task(name)
        if int(spec.params.get("seed", 0)) == seed or "seed" not in spec.params:
            out.append((name, spec.params["generator"], spec.params.get("domain", "real")))
    return out


def _build(args: argparse.Namespace) -> int:
    from nmlbench.mini import build

    info = build([(g, d) for _, g, d in _mini_pairs(args.seed)], args.data_root, args.seed)
    print(f"mini benchmark v{info['version']} (seed {info['seed']}) at {info['path']}")
    print(f"  upstream: {info['upstream']['n']} images, {info['upstream']['classes']} classes, "
          f"{'x'.join(map(str, info['image_size']))}")
    for key, sizes in info["tasks"].items():
        print(f"  {key:<22} " + "  ".join(f"{s} {n}" for s, n in sizes.items()))
    print(f"  done in {info['seconds']:.1f} s")
    return 0


def _show(args: argparse.Namespace) -> int:
    from nmlbench.mini import load_upstream
    from nmlbench.mini.preview import preview_grid
    from nmlbench.tasks import get_task, load_split

    if args.per_row < 1:
        raise UserError(f"--per-row must be at least 1, got {args.per_row}")
    check_output(args.out, folder=False)
    up = load_upstream(args.data_root, args.seed)
    rows = [("upstream", up.images)]
    for name, _, _ in _mini_pairs(args.seed):
        split = args.split if get_task(name).domain == "id" else "test"
        rows.append((name, load_split(name, split, args.data_root).images))
    print(preview_grid(rows, args.out, per_row=args.per_row))
    return 0


def _info(args: argparse.Namespace) -> int:
    from nmlbench.mini import MINI_VERSION, mini_dir
    from nmlbench.mini.data import SPLIT_SIZES, UPSTREAM_SIZE, generator
    from nmlbench.mini.generators import UPSTREAM_CLASSES

    folder = mini_dir(args.data_root, args.seed)
    info = {"version": MINI_VERSION, "seed": args.seed, "cache": str(folder),
            "built": (folder / "info.json").is_file(),
            "upstream": {"n": UPSTREAM_SIZE, "classes": len(UPSTREAM_CLASSES), "image_size": [32, 32, 3]},
            "split_sizes": SPLIT_SIZES,
            "tasks": {t: {"generator": g, "domain": d, "classes": len(generator(g).classes)}
                      for t, g, d in _mini_pairs(args.seed)}}
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"mini benchmark v{MINI_VERSION}, seed {args.seed}: {'built' if info['built'] else 'not built yet'}"
          f" at {folder}")
    print(f"  upstream: {UPSTREAM_SIZE} images 32x32, {len(UPSTREAM_CLASSES)} classes (shape x colour),"
          " with captions")
    print("  ID task splits: " + ", ".join(f"{k} {v}" for k, v in SPLIT_SIZES.items())
          + f"; OOD tasks: test {SPLIT_SIZES['test']}")
    for task, t in info["tasks"].items():
        print(f"  {task:<24} {t['generator']:<12} {t['domain']:<9} {t['classes']:>3} classes")
    return 0


def _text(args: argparse.Namespace) -> int:
    from nmlbench.minitext import MINI_TEXT_VERSION, load_upstream
    from nmlbench.tasks import get_suite, get_task, load_split

    up = load_upstream(seed=args.seed)
    print(f"mini text benchmark v{MINI_TEXT_VERSION} (seed {args.seed}), drawn in memory; "
          f"upstream: {len(up)} sentences, {len(up.classes)} classes")
    for i in range(args.per_task):
        print(f"  [{up.classes[up.labels[i]]}] {up.texts[i]}")
    for name in get_suite("mini-text").tasks:
        spec = get_task(name)
        split = load_split(spec, args.split if spec.domain == "id" else "test")  # the task's own seed
        print(f"{name} ({spec.domain}, {len(split.classes)} classes, {len(split)} {split.modality} samples)")
        for i in range(min(args.per_task, len(split))):
            text, label = split[i]
            shown = text if isinstance(text, str) else " || ".join(text)
            print(f"  [{split.classes[label]}] {shown}")
    return 0


def run(args: argparse.Namespace) -> int:
    return {"build": _build, "show": _show, "info": _info, "text": _text}[args.mini_cmd](args)
