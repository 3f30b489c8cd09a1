"""`nmlbench pretrain`: pretrain on noisy data, one run per noise rate, here or on SLURM.

nmlbench pretrain --noise 10%
nmlbench pretrain --preset mini-clip --noise 0,10,30%
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from nmlbench import cliargs, tracking
from nmlbench.launch import LAUNCHERS, run_jobs
from nmlbench.models.zoo import resolve_model
from nmlbench.paths import output_root
from nmlbench.pretrain.config import PRESETS, PretrainConfig, load_pretrain_config
from nmlbench.rates import parse_rates

EPILOG = """examples:
  nmlbench pretrain --noise 10%                          # mini benchmark, tiny ResNet, 10 % label noise
  nmlbench pretrain --noise 0,10,30%                     # a sweep: one run (checkpoint) per rate
  nmlbench pretrain --preset mini-clip --noise 0,10,30%  # tiny CLIP, 0/10/30 % swapped captions
  nmlbench pretrain --model resnet18 --set optim.epochs=2 --noise 5%
  nmlbench pretrain --noise 10% --tensorboard             # curves: tensorboard --logdir nmlbench-out/tb
  nmlbench pretrain --preset resnet50-in1k --noise 0,5,10,20,30% --launcher slurm \\
      --set data.path=/datasets/imagenet/train --set slurm.partition=gpu
  nmlbench pretrain --list-presets
"""


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "pretrain",
        help="pretrain a timm (supervised) or open_clip (CLIP) model on noisy data",
        description="Pretrain on data with label or caption noise and write checkpoints under "
        "$NMLBENCH_ROOT/ckpt/. Finished runs are skipped; interrupted runs resume.",
        epilog=EPILOG,
    )
    p.add_argument("--preset", help="a built-in preset (default: mini-resnet); see --list-presets")
    p.add_argument("--config", help="a YAML config file (may `include:` a preset file)")
    p.add_argument(
        "--model", help="a preset model name (tinyresnet, tinyclip, ...), timm model or open_clip config"
    )
    p.add_argument(
        "--objective",
        choices=("supervised", "clip"),
        help="default: from the preset, or from --model's library",
    )
    p.add_argument(
        "--noise", help="noise rate(s): '10%%', '0.1' or a sweep '0,10,30%%' (default: the config's)"
    )
    p.add_argument(
        "--seed",
        type=cliargs.seed("--seed"),
        help="pretraining seed (also the noise seed unless noise.seed is set)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set optim.epochs=2 (repeatable)",
    )
    p.add_argument(
        "--launcher",
        choices=LAUNCHERS,
        default="none",
        help="none: in this process; local: submitit subprocesses; debug: submitit in-process; "
        "slurm: one SLURM job (array) per run",
    )
    p.add_argument(
        "--resume",
        default="latest",
        help="'latest' (default: continue the newest interval checkpoint that passes its checks; "
        "corrupt ones are skipped, saying so), 'never' (start over), or a step-* dir",
    )
    p.add_argument("--out", help="output root (default: $NMLBENCH_ROOT or ./nmlbench-out)")
    p.add_argument("--data-root", help="dataset root (default: $NMLBENCH_DATA or ~/.cache/nmlbench/data)")
    p.add_argument("--list-presets", action="store_true", help="print the built-in presets and exit")
    tracking.add_arguments(p)
    p.set_defaults(func=run)


def build_configs(args: argparse.Namespace) -> list[PretrainConfig]:
    """The resolved config of every run the command asks for (one per noise rate)."""
    overrides = list(args.set)  # noise.rate is read by the rate parser (config.rate_field), like --noise
    if args.model:
        overrides.append(f"model={args.model}")
        if not args.objective:
            lib = resolve_model(args.model).library
            overrides.append(f"objective={'clip' if lib == 'open_clip' else 'supervised'}")
    if args.objective:
        overrides.append(f"objective={args.objective}")
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    cfg = load_pretrain_config(args.preset, args.config, overrides)
    from nmlbench.pretrain.train import model_spec

    model_spec(cfg)  # unknown model -> one line with did-you-mean, before anything runs
    rates = parse_rates(args.noise) if args.noise else [cfg.noise.rate]
    return [dataclasses.replace(cfg, noise=dataclasses.replace(cfg.noise, rate=r)) for r in rates]


@dataclasses.dataclass(frozen=True)
class PretrainJob:
    """The picklable unit of work submitted by the launcher: one config -> its checkpoint path."""

    root: str
    data_root: str | None
    resume: str

    def __call__(self, cfg: PretrainConfig) -> str:
        from nmlbench.pretrain.train import pretrain

        return str(pretrain(cfg, self.root, self.data_root, self.resume))


def run(args: argparse.Namespace) -> int:
    if args.list_presets:
        for name in PRESETS.names():
            first = PRESETS.get(name).read_text(encoding="utf-8").splitlines()[0].lstrip("# ")
            print(f"{name:28s} {first}")
        return 0
    track = tracking.from_args(args, args.out)
    configs = build_configs(args)
    root = output_root(args.out)
    job = PretrainJob(str(root), args.data_root, args.resume)
    with tracking.activated(track):  # the environment carries it to launched jobs, never the config
        paths = run_jobs(
            job,
            configs,
            launcher=args.launcher,
            folder=root / "jobs" / "pretrain",
            slurm=configs[0].slurm,
            name="nmlbench-pretrain",
        )
    for path in paths:
        print(Path(path))
    return 0
