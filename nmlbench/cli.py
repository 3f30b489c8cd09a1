"""The `nmlbench` command: one verb per stage, each defined in its stage's own `cli.py`.

    nmlbench noise --type sym --rate 10% --dataset mini
    nmlbench run                       # the whole mini study on a laptop CPU
"""
from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from nmlbench import __version__
from nmlbench.errors import UserError, os_error_line

# Each module defines `add_parser(subparsers)`; its parser sets `func(args) -> int`.
# Only verbs that work are listed here, so `nmlbench --help` never offers a stub.
VERB_MODULES: list[str] = [
    "nmlbench.study.cli",
    "nmlbench.noise.cli",
    "nmlbench.pretrain.cli",
    "nmlbench.eval.cli",
    "nmlbench.mini.cli",
    "nmlbench.tasks.cli",
    "nmlbench.leaderboard.cli",
    "nmlbench.report.cli",
    "nmlbench.spectrum.cli",
]

EPILOG = """examples:
  nmlbench run                                            # the whole mini study on a laptop CPU
  nmlbench noise --dataset mini --type sym --rate 10%     # noisy labels + audited manifest
  nmlbench noise audit nmlbench-out/noisy/mini/sym10-s0/manifest.parquet
  nmlbench pretrain --noise 10%                           # pretrain on the mini benchmark
  nmlbench evaluate --model nmlbench-out/ckpt/tinyresnet.mini_sym10_s0 --method nmtune --suite mini
  nmlbench leaderboard build                              # tables + static web page
  nmlbench spectrum --model nmlbench-out/ckpt/tinyresnet.mini_sym10_s0 --task mini-objects
"""


class _Parser(argparse.ArgumentParser):
    """Keeps the line breaks of every verb's description and examples (argparse reflows them).

    Sub-parsers inherit the parser class, so verbs and their sub-verbs need not repeat it.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> NoReturn:
        """argparse's own complaints (unknown flag, invalid choice, missing value) follow the bad-input
        contract too: one line naming the problem and where the fix is, not a usage block."""
        raise UserError(f"{self.prog}: {message}; see `{self.prog} --help`")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="nmlbench",
        description="Benchmark suite for noisy pre-training: inject noise, pretrain, evaluate, compare.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"nmlbench {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for name in VERB_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UserError as e:  # argparse's complaints and numbers refused by `type=` checks (cliargs)
        print(f"nmlbench: error: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"nmlbench: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if e.errno == errno.EPIPE:  # `nmlbench tasks list | head`: the reader left, nothing went wrong
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
            return 141  # what a shell reports for a pipe writer stopped by SIGPIPE
        # Every verb, one mapping: the filesystem's state is the user's to fix (see errors.py).
        logging.getLogger("nmlbench").debug("operating-system error", exc_info=True)  # -v: traceback
        print(f"nmlbench: error: {os_error_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nmlbench: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


def entry() -> None:
    sys.exit(main())
