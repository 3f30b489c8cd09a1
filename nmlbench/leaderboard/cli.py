"""`nmlbench leaderboard submit|check|build`: accept checked submissions, then rebuild the tables and page.

nmlbench leaderboard check my-results.tar.gz     # every check, nothing written
nmlbench leaderboard submit my-results.tar.gz
nmlbench leaderboard build
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from nmlbench.errors import UserError
from nmlbench.leaderboard.archive import Limits

MAX_MB = 1 << 20  # a terabyte: any larger limit is no limit, and would overflow the byte counts

EPILOG = """examples:
  nmlbench leaderboard submit nmlbench-out/results/mini            # a folder holding submission.json
  nmlbench leaderboard submit my-method.tar.gz --leaderboard-dir leaderboard
  nmlbench leaderboard build                           # LEADERBOARD.md, leaderboard.csv, index.html
  nmlbench leaderboard build --set metric=macro_f1 --out site/
  nmlbench leaderboard build --results nmlbench-out/results/my-suite --out my-board/   # your own results
  nmlbench leaderboard submit my-results/ --leaderboard-dir my-board   # my-board/board.yaml: user_tasks: true
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "leaderboard",
        help="check and accept submissions; build the leaderboard",
        description=__doc__,
        epilog=EPILOG,
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    _add_submit(sub, "submit", "check a results folder or archive and add it to the leaderboard")
    _add_submit(sub, "check", "run every submission check on a folder or archive; write nothing")
    _add_build(sub)


def _add_submit(sub: argparse._SubParsersAction, verb: str, help: str) -> None:
    s = sub.add_parser(verb, help=help, epilog=EPILOG)
    s.add_argument(
        "path", type=Path, help="folder or .tar.gz/.tgz/.tar/.zip with submission.json, records, predictions/"
    )
    s.add_argument(
        "--leaderboard-dir",
        type=Path,
        default=Path("leaderboard"),
        help="leaderboard folder; accepted submissions go to its submissions/ (default: ./leaderboard); "
        "`check` compares against it too (copies, names)",
    )
    s.add_argument("--data-root", type=Path, default=None, help="where task data lives (ground-truth labels)")
    s.add_argument(
        "--max-file-mb", type=float, default=Limits.max_file_bytes / 2**20, help="per-file size limit"
    )
    s.add_argument(
        "--max-total-mb", type=float, default=Limits.max_total_bytes / 2**20, help="total size limit"
    )
    s.set_defaults(func=run_submit, accept=verb == "submit")


def _add_build(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser(
        "build",
        help="aggregate all submissions into LEADERBOARD.md, a CSV and a web page",
        epilog=EPILOG,
    )
    b.add_argument(
        "--leaderboard-dir",
        type=Path,
        default=Path("leaderboard"),
        help="folder holding submissions/ and schema.yaml (default: ./leaderboard)",
    )
    b.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default: the leaderboard folder; with --results: $NMLBENCH_ROOT/board)",
    )
    b.add_argument(
        "--config", type=Path, default=None, help="display config (default: <leaderboard-dir>/schema.yaml)"
    )
    b.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a display setting"
    )
    b.add_argument(
        "--results",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="build from these folders of result records instead of submissions/ (repeatable): "
        "a private board over your own results, user tasks included",
    )
    b.add_argument("--no-plots", action="store_true", help="skip the figures (faster)")
    b.set_defaults(func=run_build)


def _megabytes(value: float, flag: str) -> int:
    if not math.isfinite(value) or value <= 0 or value > MAX_MB:
        raise UserError(f"{flag} must be a number of megabytes in (0, {MAX_MB}], got {value}; e.g. {flag} 64")
    return int(value * 2**20)


def run_submit(args: argparse.Namespace) -> int:
    from nmlbench.leaderboard.catalog import NmlbenchCatalog
    from nmlbench.leaderboard.submit import submit

    limits = Limits(
        max_file_bytes=_megabytes(args.max_file_mb, "--max-file-mb"),
        max_total_bytes=_megabytes(args.max_total_mb, "--max-total-mb"),
    )
    result = submit(
        args.path, args.leaderboard_dir, NmlbenchCatalog(args.data_root), limits, accept=args.accept
    )
    if not result.accepted:
        # One line, every reason: a script reads the first line, a person reads all of them.
        n = len(result.reasons)
        print(
            _printable(
                f"nmlbench: error: submission {args.path} rejected ({n} reason(s)): "
                + "; ".join(result.reasons)
            ),
            file=sys.stderr,
        )
        return 2
    if args.accept:
        print(
            _printable(f"accepted as {result.name!r} in {result.dest}; ")
            + "run `nmlbench leaderboard build` to update the page"
        )
    else:
        print(_printable(f"{args.path} passes every check; it would be accepted as {result.name!r}"))
    return 0


def _printable(text: str) -> str:
    """Reasons quote submission content: control characters are shown escaped, never sent to the terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def run_build(args: argparse.Namespace) -> int:
    from nmlbench.leaderboard.build import build

    written = build(
        args.leaderboard_dir,
        out_dir=args.out,
        config=args.config,
        overrides=args.set,
        plots=not args.no_plots,
        results=args.results,
    )
    for path in written:
        print(path)
    return 0
