"""`nmlbench noise`: inject label or caption noise into a dataset; `nmlbench noise audit`: check a manifest.

nmlbench noise --dataset mini --type sym --rate 10% --seed 0
nmlbench noise audit nmlbench-out/noisy/mini/sym10-s0/manifest.parquet
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
from typing import Any

from nmlbench import cliargs
from nmlbench.config import load_config, replace
from nmlbench.errors import UserError
from nmlbench.io import check_output
from nmlbench.rates import parse_rate

EPILOG = """examples:
  nmlbench noise --dataset mini --type sym --rate 10%
  nmlbench noise --dataset mini-text --type sym --rate 30%   # the mini text benchmark's corpus
  nmlbench noise --imagefolder /data/imagenet/train --type asym --asym group \\
      --groups wnid_groups.yaml --rate 20%
  nmlbench noise --labels train.csv --id-column path --label-column y --type sym --rate 0.05 --seed 1
  nmlbench noise --npz upstream.npz --type sym --rate 20%
  nmlbench noise --hf /data/cifar10-parquet --label-column label --type sym --rate 20%
  nmlbench noise --wds '/data/cc12m/shards-{000000..001242}.tar' --type caption --rate 30%
  nmlbench noise --dataset mini --recipe sym10-ref           # a recipe from noise_recipes/
  nmlbench noise audit nmlbench-out/noisy/mini/sym10-s0/manifest.parquet --json
"""
SOURCE_FLAGS = {
    "dataset": "mini",
    "imagefolder": "imagefolder",
    "npz": "npz",
    "labels": "labels",
    "wds": "wds",
    "captions": "captions",
    "hf": "hf",
}
KNOWN_DATASETS = ["mini", "mini-text"]  # built-in datasets; each is also the name of its source type
LABEL_FILES = (".csv", ".tsv", ".parquet", ".jsonl")  # what --export-labels can write


def _add_source_args(p: argparse.ArgumentParser) -> None:
    src = p.add_argument_group("source (one of)").add_mutually_exclusive_group(required=False)
    src.add_argument("--dataset", metavar="NAME", help="a built-in dataset: mini or mini-text")
    src.add_argument("--imagefolder", metavar="DIR", help="ImageNet-layout tree DIR/<class>/<image>")
    src.add_argument("--npz", metavar="FILE", help="numpy archive with labels (and images, ids, classes)")
    src.add_argument("--labels", metavar="FILE", help="label table (.csv/.tsv/.parquet/.jsonl)")
    src.add_argument("--wds", metavar="PATTERN", help="webdataset shards, e.g. 'shards-{000000..000009}.tar'")
    src.add_argument("--captions", metavar="FILE", help="caption table (.csv/.tsv/.parquet/.jsonl)")
    src.add_argument(
        "--hf",
        metavar="PATH",
        help="HF dataset: save_to_disk folder, .parquet/.arrow file or folder, or hf-hub:NAME",
    )
    g = p.add_argument_group("source options")
    g.add_argument("--name", default="", help="dataset name in the output path (default: from the source)")
    g.add_argument("--data-root", default="", help="mini: where the generated benchmark is cached")
    g.add_argument(
        "--id-column", help="id column / npz array (default: id, npz: ids; HF/npz without: the row number)"
    )
    g.add_argument("--label-column", help="label column / npz array / json key (default: label(s))")
    g.add_argument("--caption-column", help="caption column / npz array / json key (default: caption(s))")
    g.add_argument("--split", default="train", help="HF dataset split (default: train)")
    g.add_argument("--num-classes", type=cliargs.integer("--num-classes", ge=2),
                   default=None, help="class count for integer labels")


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "noise",
        help="inject label/caption noise; write an audited per-sample manifest",
        description="Corrupt exactly round(r*N) samples of a dataset (never modified) and write "
        "noisy/<dataset>/<recipe>-s<seed>/manifest.parquet + manifest.json.",
        epilog=EPILOG,
    )
    _add_source_args(p)
    _add_noise_args(p)
    _add_output_args(p)
    p.set_defaults(func=run)
    _add_audit_parser(p)


def _add_noise_args(p: argparse.ArgumentParser) -> None:
    k = p.add_argument_group("noise")
    k.add_argument("--type", choices=["sym", "asym", "caption"], help="label (sym/asym) or caption noise")
    k.add_argument("--asym", choices=["pairflip", "group", "confusion", "subset"], help="asymmetric variant")
    k.add_argument(
        "--caption-mode",
        choices=["derangement", "pair_swap"],
        help="caption variant (default derangement; pair_swap = the reference's convention)",
    )
    k.add_argument("--rate", help="fraction corrupted: '10%%', '10' or '0.1'")
    k.add_argument("--seed", type=cliargs.seed("--seed"),
                   default=None, help="random seed (default 0, or the recipe's)")
    k.add_argument("--recipe", help="a recipe name from noise_recipes/ or a recipe YAML path")
    k.add_argument("--groups", help="asym group: YAML {group: [classes]} or CSV with class,group")
    k.add_argument("--confusion", help="asym confusion: CxC matrix (.npy or CSV), rows = true class")
    k.add_argument("--classes", help="asym subset: comma-separated class names or indices")
    k.add_argument("--within-subset", action="store_true", help="asym subset: new labels stay in the subset")
    k.add_argument(
        "--include-true-class",
        action="store_true",
        help="sym: draw from all C classes (the reference's r*(C-1)/C convention)",
    )
    k.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. --set params.include_true_class=true",
    )


def _add_output_args(p: argparse.ArgumentParser) -> None:
    o = p.add_argument_group("output")
    o.add_argument("--out", help="output directory (default $NMLBENCH_ROOT/noisy/<dataset>/<recipe>-s<seed>)")
    o.add_argument("--overwrite", action="store_true", help="replace a manifest made from other inputs")
    o.add_argument(
        "--export-labels", metavar="FILE", help="also write noisy labels (.csv/.tsv/.parquet/.jsonl)"
    )
    o.add_argument("--export-wds", metavar="DIR", help="also write noisy copies of the source shards")
    o.add_argument("--json", action="store_true", help="print the sidecar as JSON")


def _add_audit_parser(p: argparse.ArgumentParser) -> None:
    # A sub-subcommand: `nmlbench noise --dataset ...` (no subcommand) still applies noise.
    sub = p.add_subparsers(dest="noise_cmd", metavar="{audit}")
    a = sub.add_parser(
        "audit",
        help="check a manifest: re-derive it from source + recipe + seed, compare row by row",
        description="Verify a noise manifest: re-derive it from its source, recipe and seed and compare "
        "it row by row; the sidecar is not trusted.",
        epilog="example:\n  nmlbench noise audit nmlbench-out/noisy/mini/sym10-s0/manifest.parquet\n",
    )
    a.add_argument("manifest", help="manifest.parquet (or its directory)")
    _add_source_args(a)
    a.add_argument(
        "--no-check",
        action="store_true",
        help="do not read the source: re-derive the rows from the manifest's own clean rows",
    )
    a.add_argument("--json", action="store_true", help="print the report as JSON")
    a.set_defaults(func=run_audit)


def source_from_args(args: argparse.Namespace):
    """The SourceSpec the flags name, or None when no source flag was given."""
    from nmlbench.noise.sources import SourceSpec

    given = [(flag, getattr(args, flag)) for flag in SOURCE_FLAGS if getattr(args, flag)]
    if not given:
        return None
    flag, value = given[0]
    if flag != "dataset" and "://" not in value and not value.startswith(("pipe:", "hf-hub:")):
        value = os.path.abspath(os.path.expanduser(value))  # the sidecar's source must work from any cwd
    if flag == "dataset" and value not in KNOWN_DATASETS:
        close = difflib.get_close_matches(value, KNOWN_DATASETS, n=1, cutoff=0.4)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UserError(
            f"unknown dataset {value!r}; {hint}known: {', '.join(KNOWN_DATASETS)} "
            "(for your own data use --imagefolder, --npz, --labels, --wds, --captions or --hf)"
        )
    return SourceSpec(
        type=value if flag == "dataset" else SOURCE_FLAGS[flag],
        path=args.data_root if flag == "dataset" else value,
        name=args.name,
        id_column=args.id_column,
        label_column=args.label_column,
        caption_column=args.caption_column,
        split=args.split,
        num_classes=args.num_classes,
    )


def _kind_params(args: argparse.Namespace, kind: str) -> dict[str, Any]:
    """The kind's parameters from the flags; a flag meant for another kind is an error."""
    flags = {
        "groups": ("group_label", args.groups),
        "confusion": ("confusion_label", args.confusion),
        "classes": ("subset_label", args.classes),
        "within_subset": ("subset_label", args.within_subset),
        "include_true_class": ("symmetric_label", args.include_true_class),
    }
    params: dict[str, Any] = {}
    for name, (owner, value) in flags.items():
        if value in (None, False):
            continue
        if owner != kind:
            raise UserError(
                f"--{name.replace('_', '-')} does not apply to {kind}; drop it or change --type/--asym"
            )
        params[name] = [c.strip() for c in value.split(",") if c.strip()] if name == "classes" else value
    return params


def config_from_args(args: argparse.Namespace):
    from nmlbench.noise import NoiseConfig, load_recipe, resolve_kind

    if args.recipe:
        clash = [f for f in ("type", "rate", "asym", "caption_mode") if getattr(args, f)]
        if clash:
            raise UserError(f"--recipe sets the kind and rate; drop --{clash[0].replace('_', '-')}")
        cfg = load_recipe(args.recipe, tuple(args.set))
        return cfg if args.seed is None else replace(cfg, seed=args.seed)
    if not args.type or args.rate is None:
        raise UserError("say which noise: --type sym|asym|caption and --rate (e.g. 10%), or --recipe NAME")
    if args.asym and args.type != "asym" or args.caption_mode and args.type != "caption":
        raise UserError("--asym goes with --type asym and --caption-mode with --type caption")
    kind = resolve_kind(args.type, args.asym or args.caption_mode)
    base = {
        "kind": kind,
        "rate": parse_rate(args.rate),
        "seed": args.seed or 0,
        "params": _kind_params(args, kind),
    }
    return load_config(NoiseConfig, base=base, overrides=args.set)


def check_outputs(args: argparse.Namespace, spec: Any, cfg: Any) -> None:
    """Every output the flags name can be written and suits the data, before the manifest is made:
    an export refused after the manifest was written would leave that manifest behind."""
    from nmlbench.noise import NOISE, resolve_kind
    from nmlbench.paths import output_root

    check_output(args.out or output_root(), folder=True)
    if args.export_labels:
        if os.path.splitext(args.export_labels)[1].lower() not in LABEL_FILES:
            raise UserError(
                f"--export-labels {args.export_labels}: use a .csv, .tsv, .parquet or .jsonl file name"
            )
        if NOISE.get(resolve_kind(cfg.kind)).target != "label":
            raise UserError("--export-labels needs label noise; for captions use --export-wds")
        check_output(args.export_labels, folder=False)
    if args.export_wds:
        if spec.type != "wds":
            raise UserError(f"--export-wds needs a webdataset source (--wds), not --{spec.type}")
        check_output(args.export_wds, folder=True)


def run(args: argparse.Namespace) -> int:
    from nmlbench.noise import apply_noise
    from nmlbench.noise.export import export_labels, export_wds
    from nmlbench.noise.manifest import read_sidecar

    spec = source_from_args(args)
    cfg = config_from_args(args)
    if spec is None:
        raise UserError(
            "name the data: --dataset mini|mini-text, --imagefolder, --npz, --labels, --wds, "
            "--captions or --hf"
        )
    check_outputs(args, spec, cfg)
    path = apply_noise(spec, cfg, out=args.out, overwrite=args.overwrite)
    if args.export_labels:
        export_labels(path, args.export_labels)
    if args.export_wds:
        export_wds(path, args.export_wds)
    meta = read_sidecar(path)
    if args.json:
        print(json.dumps({"manifest": str(path), **meta}, indent=2, sort_keys=True))
    else:
        print(
            f"{meta['recipe']} ({meta['kind']}, seed {meta['seed']}) on {spec.dataset_name()}: "
            f"{meta['n_corrupted']} of {meta['n_samples']} samples corrupted "
            f"(nominal {meta['nominal_rate']:.4%}, realized {meta['realized_rate']:.4%})\n{path}"
        )
    return 0


def run_audit(args: argparse.Namespace) -> int:
    from nmlbench.noise.audit import audit, format_report

    rep = audit(args.manifest, source=source_from_args(args), check=not args.no_check)
    print(json.dumps(rep, indent=2, sort_keys=True) if args.json else format_report(rep), file=sys.stdout)
    return 0
