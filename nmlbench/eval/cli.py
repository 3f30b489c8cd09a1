"""`nmlbench evaluate`: tune methods on frozen backbones over a suite or tasks, one record per cell.

nmlbench evaluate --model nmlbench-out/ckpt/tinyresnet.mini_sym10_s0 --method all --suite mini
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from nmlbench import cliargs, tracking
from nmlbench.errors import UserError

EPILOG = """examples:
  nmlbench evaluate --model nmlbench-out/ckpt/tinyresnet.mini_sym10_s0 --method lp,mlp,nmtune --suite mini
  nmlbench evaluate --model resnet50,open_clip:ViT-B-16:openai --method all --suite paper --download
  nmlbench evaluate --model tinyresnet --method nmtune --task mini-objects --seeds 0,1 --set pretrained=false
  nmlbench evaluate --model nmlbench-out/ckpt/MY_CKPT --method lp --suite path/to/my-suite.yaml
  nmlbench evaluate --model nmlbench-out/ckpt/tinyresnet.mini_sym0_s0 --method det-ft --suite mini-dense
Re-running the same command skips finished cells (records under $NMLBENCH_ROOT/results/<suite>/).
Presets: `mini`, `mini-text`, `mini-dense` (defaults for those suites) and `reference` (the reference
code's settings; for det-* the standard Mask R-CNN 1x schedule, docs/dense.md)."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from nmlbench.launch import LAUNCHERS

    p = subparsers.add_parser(
        "evaluate",
        help="tune LP/MLP/NMTune/LoRA/FT/LEVI (detectors on dense tasks) and record results",
        description=__doc__,
        epilog=EPILOG,
    )
    p.add_argument(
        "--model", required=True, help="REF[,REF...]: checkpoint dir, NAME, timm:NAME, open_clip:NAME[/TAG]"
    )
    p.add_argument(
        "--method",
        default="all",
        help="METHOD[,METHOD...] or 'all' (lp, mlp, nmtune, nmtune-lora, lora, ft, levi, levi-lora; "
        "dense tasks: det-frozen, det-ft, det-lora)",
    )
    p.add_argument(
        "--suite", default=None, help="mini | paper | imagenet-shifts | ... or a suite YAML path (or --task)"
    )
    p.add_argument("--task", default=None, help="T[,T...]: task names or task YAML paths")
    p.add_argument(
        "--seeds", type=cliargs.seeds("--seeds"), default="0", help="comma-separated tuning seeds (default 0)"
    )
    p.add_argument(
        "--preset",
        default=None,
        help="tuner preset: mini | mini-text | mini-dense | reference (default: by suite)",
    )
    p.add_argument("--config", default=None, help="YAML file with EvalConfig sections (lp:, nmtune:, ...)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting, e.g. --set nmtune.epochs=5 (repeatable)",
    )
    p.add_argument("--data-root", default=None, help="datasets root (default $NMLBENCH_DATA)")
    p.add_argument("--download", action="store_true", help="download missing datasets where allowed")
    p.add_argument(
        "--launcher", default="none", choices=LAUNCHERS, help="none (in-process), local, debug, slurm"
    )
    p.add_argument("--root", default=None, help="output root (default $NMLBENCH_ROOT or ./nmlbench-out)")
    p.add_argument(
        "--threads",
        type=cliargs.integer("--threads", ge=1),
        default=None,
        help="torch CPU threads (default: torch's; use 1 when other jobs share the cores)",
    )
    tracking.add_arguments(p)
    p.set_defaults(func=run)


def _split(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def run(args: argparse.Namespace) -> int:
    from nmlbench.eval.run import EvalOptions, evaluate
    from nmlbench.eval.summary import summary_table

    track = tracking.from_args(args, args.root)  # curves only: never part of a result's key
    seeds = list(args.seeds)  # checked by cliargs.seeds
    if args.threads is not None:
        if args.threads < 1:
            raise UserError(f"--threads must be >= 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    if not args.suite and not args.task:
        raise UserError("pass --suite NAME or --task T[,T] to say what to evaluate on")
    options = EvalOptions(
        tasks=tuple(_split(args.task)),
        preset=args.preset,
        config_path=args.config,
        overrides=tuple(args.overrides),
        data_root=args.data_root,
        download=args.download,
        launcher=args.launcher,
    )
    with tracking.activated(track):
        paths = evaluate(
            _split(args.model), _split(args.method), args.suite, seeds or [0], args.root, options
        )
    records = [json.loads(Path(p).read_text(encoding="utf-8")) for p in paths]
    print(summary_table(records))
    return 0
