"""`nmlbench leaderboard submit|build`: accept checked submissions, then rebuild the tables and page.

nmlbench leaderboard submit my-results.tar.gz
nmlbench leaderboard build
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nmlbench.leaderboard.archive import Limits

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
    _add_submit(sub)
    _add_build(sub)


def _add_submit(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser(
        "submit",
        help="check a results folder or archive and add it to the leaderboard",
        epilog=EPILOG,
    )
    s.add_argument(
        "path", type=Path, help="folder or .tar.gz/.tgz/.tar/.zip with submission.json, records, predictions/"
    )
    s.add_argument(
        "--leaderboard-dir",
        type=Path,
        default=Path("leaderboard"),
        help="leaderboard folder; accepted submissions go to its submissions/ (default: ./leaderboard)",
    )
    s.add_argument("--data-root", type=Path, default=None, help="where task data lives (ground-truth labels)")
    s.add_argument(
        "--max-file-mb", type=float, default=Limits.max_file_bytes / 2**20, help="per-file size limit"
    )
    s.add_argument(
        "--max-total-mb", type=float, default=Limits.max_total_bytes / 2**20, help="total size limit"
    )
    s.set_defaults(func=run_submit)


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


def run_submit(args: argparse.Namespace) -> int:
    from nmlbench.leaderboard.catalog import NmlbenchCatalog
    from nmlbench.leaderboard.submit import submit

    limits = Limits(
        max_file_bytes=int(args.max_file_mb * 2**20), max_total_bytes=int(args.max_total_mb * 2**20)
    )
    result = submit(args.path, args.leaderboard_dir, NmlbenchCatalog(args.data_root), limits)
    if not result.accepted:
        print(
            f"nmlbench: error: submission {args.path} rejected ({len(result.reasons)} reason(s)):",
            file=sys.stderr,
        )
        for reason in result.reasons:
            print(f"  - {_printable(reason)}", file=sys.stderr)
        return 2
    print(
        f"accepted as {result.name!r} in {result.dest}; run `nmlbench leaderboard build` to update the page"
    )
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
