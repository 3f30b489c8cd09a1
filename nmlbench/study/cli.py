"""`nmlbench run`: the whole study on the built-in mini benchmark (or a preset/suite you name).

nmlbench run                                   # noise 0/10/30 % -> pretrain -> all methods -> table
nmlbench run --noise 0,10,30% --seeds 0,1 --methods lp,nmtune
"""

from __future__ import annotations

import argparse
from typing import Any

from nmlbench import cliargs, tracking
from nmlbench.errors import UserError
from nmlbench.io import check_output, write_text
from nmlbench.paths import output_root
from nmlbench.rates import parse_rates
from nmlbench.study.run import StudyOptions, run_study

# --modality: (pretraining preset, evaluation suite, methods) of the built-in studies. The text study
# runs the methods NMTune's language experiments compare on frozen models (LP, MLP, NMTune); the
# others run on text too (--methods all), at ~10x the time of the three (docs/language.md). The dense
# study evaluates the same image checkpoints with detectors (det-frozen, det-ft, det-lora) on the mini
# dense task; opt-in, as its fits take minutes each (docs/dense.md).
MODALITIES = {
    "image": ("mini-resnet", "mini", "all"),
    "text": ("mini-text", "mini-text", "lp,mlp,nmtune"),
    "dense": ("mini-resnet", "mini-dense", "all"),
}

EPILOG = """examples:
  nmlbench run                                        # the mini study, under 10 minutes on 2 cores
  nmlbench run --modality text                        # the mini text study: tinytext, 11 tasks, LP/MLP/NMTune
  nmlbench run --modality dense                       # the mini dense study: box / mask AP, det-* methods
  nmlbench run --noise 0,5,10,20,30% --seeds 0,1      # a finer sweep, two tuning seeds
  nmlbench run --methods lp,mlp,nmtune --preset mini-clip
  nmlbench run --tensorboard                          # curves: tensorboard --logdir nmlbench-out/tb
Run the same command again after an interruption: finished manifests, checkpoints and results are reused.
"""


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "run",
        help="run the whole study (default: the built-in mini benchmark)",
        description=__doc__,
        epilog=EPILOG,
    )
    p.add_argument("--noise", default="0,10,30%", help="pretraining noise rates (default: 0,10,30%%)")
    p.add_argument(
        "--modality",
        choices=tuple(MODALITIES),
        default="image",
        help="image: the mini vision study; text: the mini text study (preset mini-text, "
        "suite mini-text); dense: detection / segmentation on the image checkpoints (suite "
        "mini-dense); sets the defaults of --preset and --suite",
    )
    p.add_argument(
        "--preset", default=None, help="pretraining preset (default: mini-resnet; text: mini-text)"
    )
    p.add_argument(
        "--pretrain-seeds",
        type=cliargs.seeds("--pretrain-seeds"),
        default="0",
        help="pretraining seeds, e.g. 0,1",
    )
    p.add_argument(
        "--methods",
        default=None,
        help="tuning methods, comma-separated, or 'all': the classification methods, or det-* on a "
        "dense suite (default: all; text: lp,mlp,nmtune)",
    )
    p.add_argument(
        "--suite", default=None, help="evaluation suite (default: mini; text: mini-text; dense: mini-dense)"
    )
    p.add_argument("--task", default="", help="only these tasks of the suite, comma-separated")
    p.add_argument("--seeds", type=cliargs.seeds("--seeds"), default="0", help="tuning seeds, e.g. 0,1")
    p.add_argument(
        "--workers",
        type=cliargs.integer("--workers", ge=0),
        default=0,
        help="parallel processes (default: one per core)",
    )
    p.add_argument(
        "--set",
        dest="pretrain_set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a pretraining config value (repeatable)",
    )
    p.add_argument(
        "--eval-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override an evaluation config value (repeatable)",
    )
    p.add_argument("--root", help="output root (default: $NMLBENCH_ROOT or ./nmlbench-out)")
    p.add_argument("--data-root", help="dataset root (default: $NMLBENCH_DATA or ~/.cache/nmlbench/data)")
    tracking.add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    preset, suite, methods = MODALITIES[args.modality]
    args.preset, args.suite = args.preset or preset, args.suite or suite
    args.methods = args.methods or methods
    opts = StudyOptions(
        rates=tuple(parse_rates(args.noise)),
        preset=args.preset,
        pretrain_seeds=args.pretrain_seeds,
        methods=tuple(m.strip() for m in args.methods.split(",") if m.strip()),
        suite=args.suite,
        tasks=tuple(t.strip() for t in args.task.split(",") if t.strip()),
        seeds=args.seeds,
        workers=args.workers,
        pretrain_overrides=tuple(args.pretrain_set),
        eval_overrides=tuple(args.eval_set),
        root=args.root,
        data_root=args.data_root,
    )
    if args.workers < 0:
        raise UserError("--workers must be >= 0 (0: one per core)")
    check_output(output_root(args.root), folder=True)  # not after an hour of training
    track = tracking.from_args(args, args.root)
    with tracking.activated(track):  # reaches the worker processes; never part of a key
        _, table = run_study(opts)
    print(table)
    # the suite's results-folder label: a built-in name, or a user suite's name + short key (a suite
    # given as a path must not put the summary beside the suite file)
    from nmlbench.tasks import get_suite  # at call time: the task stage's current functions

    out = output_root(args.root) / "study" / f"{get_suite(args.suite).label}-summary.txt"
    write_text(out, table + "\n")
    print(f"\nsummary written to {out}")
    return 0
