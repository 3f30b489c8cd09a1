"""`nmlbench plot`: the leaderboard's figures for any folders of result records.

nmlbench plot nmlbench-out/results/mini --out figs/
"""

from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = """examples:
  nmlbench plot nmlbench-out/results/mini                          # figures into nmlbench-out/plots/
  nmlbench plot results/mini --spectrum nmlbench-out/spectrum --out figs/ --metric macro_f1

figures (PNG + SVG): accuracy_vs_noise, delta_heatmap, spectra, spectrum_vs_noise (see docs/plots.md)
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "plot",
        help="draw accuracy/noise, delta heat map and spectrum figures",
        description=__doc__,
        epilog=EPILOG,
    )
    p.add_argument("results", type=Path, nargs="+", help="folders of result records (results/<suite>)")
    p.add_argument(
        "--spectrum",
        type=Path,
        action="append",
        default=[],
        help="folder searched recursively for `nmlbench spectrum` records; repeatable",
    )
    p.add_argument("--out", type=Path, default=None, help="output folder (default: $NMLBENCH_ROOT/plots)")
    p.add_argument("--metric", choices=("top1", "macro_f1", "box_ap", "mask_ap"), default="top1",
                   help="record metric to plot (box_ap, mask_ap: dense tasks)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nmlbench.errors import UserError
    from nmlbench.io import check_output
    from nmlbench.paths import output_root
    from nmlbench.report import plots
    from nmlbench.report.aggregate import DisplayConfig, build_tables, load_records, of_kind, task_order

    for d in [*args.results, *args.spectrum]:
        if not d.is_dir():
            raise UserError(f"{d} is not a folder; pass results/<suite> (and spectrum folders) that exist")
    out = args.out or output_root() / "plots"
    check_output(out, folder=True)
    cfg = DisplayConfig(metric=args.metric)
    df = of_kind(load_records(args.results), cfg.metric)  # AP metrics: the dense tasks' records
    cells, summary = build_tables(df, cfg)
    record_files = [p for d in args.results for p in sorted(d.glob("*.json")) if p.name != "submission.json"]
    record_files += [p for d in args.spectrum for p in sorted(d.rglob("*.json"))]
    figs = plots.make_all(
        cells, summary, task_order(df), plots.load_spectra(record_files), out, cfg.metric_names[cfg.metric]
    )
    for paths in figs.values():
        for p in paths:
            print(p)
    return 0
