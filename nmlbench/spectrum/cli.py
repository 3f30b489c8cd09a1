"""`nmlbench spectrum`: singular-value metrics of frozen features on downstream test splits.

nmlbench spectrum --model nmlbench-out/ckpt/tinyresnet.mini_sym10_s0 --task mini-objects
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tqdm.auto import tqdm

from nmlbench import cliargs
from nmlbench.errors import UserError
from nmlbench.spectrum.metrics import CENTRINGS

EPILOG = """examples:
  nmlbench spectrum --model nmlbench-out/ckpt/tinyresnet.mini_sym10_s0 --task mini-objects
  nmlbench spectrum --model ckpt/a --model ckpt/b --suite mini --centring column
  nmlbench spectrum --model ckpt/a --suite mini --attach nmlbench-out/results/mini  # for the leaderboard
  nmlbench spectrum --features feats.npy --centring row                             # any (N, D) .npy array

records: $NMLBENCH_ROOT/spectrum/<model>-<key>/<task>-<key>__<centring>.json
(schema: leaderboard/schema/spectrum.v1.json)
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "spectrum",
        help="SVE, LSVR, effective rank of frozen features per task",
        description=__doc__,
        epilog=EPILOG,
    )
    p.add_argument(
        "--model",
        action="append",
        default=[],
        help="checkpoint dir, timm name or open_clip:<model>; repeatable",
    )
    p.add_argument("--task", action="append", default=[], help="task name or task YAML path; repeatable")
    p.add_argument("--suite", default=None, help="every task of this suite (a name or a suite YAML path)")
    p.add_argument("--features", type=Path, default=None, help="a saved (N, D) .npy array instead of a model")
    p.add_argument("--centring", choices=CENTRINGS, default="row", help="row = the reference's (default)")
    p.add_argument("--no-l2", action="store_true", help="skip the reference's row L2 normalisation")
    p.add_argument("--top-k", default="1,10,100", help="energy fractions to report (default 1,10,100)")
    p.add_argument("--attach", type=Path, default=None, help="results folder whose records get the spectrum")
    p.add_argument("--data-root", default=None, help="where task data lives")
    p.add_argument("--batch-size", type=cliargs.integer("--batch-size", ge=1),
                   default=256, help="feature extraction batch size")
    p.add_argument("--image-size", type=cliargs.integer("--image-size", ge=1),
                   default=None, help="input resolution (default: the model's own)")
    p.add_argument(
        "--random-init", action="store_true", help="timm names: seeded random weights, no download"
    )
    p.set_defaults(func=run)


def _top_k(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise UserError(f"--top-k {text!r} must be comma-separated integers, e.g. 1,10,100") from None
    if not values or min(values) < 1:
        raise UserError(f"--top-k {text!r} must list integers >= 1, e.g. 1,10,100")
    return values


def run(args: argparse.Namespace) -> int:
    import json

    import numpy as np

    from nmlbench.models import check_models
    from nmlbench.spectrum.metrics import analyse
    from nmlbench.spectrum.run import SpectrumOptions, attach, check_tasks, run_spectrum

    opts = SpectrumOptions(
        centring=args.centring,
        l2_normalise=not args.no_l2,
        top_k=_top_k(args.top_k),
        batch_size=args.batch_size,
        data_root=args.data_root,
        pretrained=not args.random_init,
        image_size=args.image_size,
    )
    if args.features is not None:
        if args.model or args.task or args.suite:
            raise UserError("--features takes a saved array; drop --model/--task/--suite")
        if args.features.suffix != ".npy" or not args.features.is_file():
            raise UserError(f"{args.features}: pass an existing .npy file of shape (N, D)")
        try:
            x = np.load(args.features, allow_pickle=False)  # never unpickle a user's file
        except ValueError as e:
            raise UserError(
                f"{args.features}: not a plain numeric .npy array ({e}); save it with np.save"
            ) from None
        print(json.dumps(analyse(x, opts.centring, opts.l2_normalise, opts.top_k).to_record(False), indent=2))
        return 0
    if not args.model:
        raise UserError("pass --model (repeatable), e.g. --model nmlbench-out/ckpt/tinyresnet.mini_sym0_s0")
    tasks = list(args.task)
    if args.suite:
        from nmlbench.tasks import get_suite

        suite = get_suite(args.suite)
        tasks += list(suite.id_tasks) + list(suite.ood_tasks)
    if not tasks:
        raise UserError("pass --task T (repeatable) or --suite S")
    check_models(args.model, opts.pretrained, opts.image_size)  # all checked before anything is written
    tasks = check_tasks(tasks, opts)
    if args.attach and not args.attach.is_dir():
        raise UserError(f"--attach {args.attach} is not a folder of result records; pass results/<suite>")
    from nmlbench.io import check_output
    from nmlbench.paths import output_root

    check_output(output_root(), folder=True)  # before the features are extracted
    paths = run_spectrum(args.model, tasks, opts, progress=lambda xs: tqdm(xs, desc="spectrum"))
    for p in paths:
        print(p)
    if args.attach:
        print(f"attached to {len(attach(paths, args.attach))} result record(s) in {args.attach}")
    return 0
