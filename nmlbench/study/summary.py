"""The study's headline tables: per method, ID and OOD averages at each noise rate, and the OOD change;
one table per headline metric (top-1 for classification, box / mask AP for dense tasks)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

# The headline metric of each record kind, in table order: top-1 for classification; COCO box AP, and
# mask AP where the task has masks, for dense tasks (kept in their own tables, never averaged together).
HEADLINES = {"top1": "top-1 %", "box_ap": "box AP", "mask_ap": "mask AP"}


def records_frame(paths: Iterable[str | Path]) -> pd.DataFrame:
    """One row per (record, headline metric it has); `value` in percent."""
    rows = []
    for p in paths:
        rec = json.loads(Path(p).read_text(encoding="utf-8"))
        noise = rec["model"].get("noise") or {}
        base = {
            "method": rec["method"]["name"],
            "rate": float(noise.get("rate", 0.0)),
            "pretrain_seed": rec["model"].get("pretrain_seed") or 0,
            "seed": rec["seed"],
            "task": rec["task"]["name"],
            "domain": rec["task"]["domain"],
        }
        for metric in HEADLINES:
            if metric in rec["metrics"]:
                rows.append({**base, "metric": metric, "value": rec["metrics"][metric]})
    return pd.DataFrame(rows)


def study_table(paths: Iterable[str | Path]) -> str:
    """Per headline metric: mean ± std over (pretraining seed, tuning seed) pairs of the per-domain
    task average, and the OOD change against the clean checkpoint."""
    df = records_frame(paths)
    if df.empty:
        return "no results"
    metrics = [m for m in HEADLINES if m in set(df.metric)]
    return "\n\n".join(_metric_table(df[df.metric == m], HEADLINES[m]) for m in metrics)


def _metric_table(df: pd.DataFrame, unit: str) -> str:
    # Average over tasks first, per seed pair, so the std is the spread between seeds, not tasks.
    per_seed = df.groupby(["method", "rate", "domain", "pretrain_seed", "seed"])["value"].mean().reset_index()
    grouped = per_seed.groupby(["method", "rate", "domain"])["value"]
    stats = grouped.agg(["mean", "std", "count"]).reset_index()
    clean = stats[stats.rate == 0.0].set_index(["method", "domain"])["mean"]
    lines = []
    rates = sorted(stats.rate.unique())
    header = ["method"] + [f"{d} @{r * 100:g}%" for r in rates for d in ("ID", "OOD")]
    if 0.0 in rates and len(rates) > 1:
        header += [f"ΔOOD @{r * 100:g}%" for r in rates if r > 0]
    lines.append(header)
    for method in sorted(stats.method.unique(), key=_method_order):
        row = [method]
        for r in rates:
            for dom in ("id", "ood"):
                cell = stats[(stats.method == method) & (stats.rate == r) & (stats.domain == dom)]
                row.append(_fmt(cell))
        if 0.0 in rates and len(rates) > 1:
            for r in rates:
                if r > 0:
                    cell = stats[(stats.method == method) & (stats.rate == r) & (stats.domain == "ood")]
                    base = clean.get((method, "ood"))
                    ok = len(cell) and base is not None
                    row.append(f"{cell['mean'].iloc[0] - base:+.2f}" if ok else "-")
        lines.append(row)
    widths = [max(len(str(r[i])) for r in lines) for i in range(len(header))]
    out = [" | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in lines]
    out.insert(1, "-+-".join("-" * w for w in widths))
    n = int(stats["count"].max())
    note = (
        f"{unit}, task average, mean ± std over {n} seed pair(s)"
        if n > 1
        else f"{unit}, task average, one seed (use --seeds 0,1 for a spread)"
    )
    return "\n".join(out) + f"\n({note})"


def _fmt(cell: pd.DataFrame) -> str:
    if cell.empty:
        return "-"
    mean, std = cell["mean"].iloc[0], cell["std"].iloc[0]
    return f"{mean:.2f}" if pd.isna(std) else f"{mean:.2f}±{std:.2f}"


_ORDER = [
    *("lp", "mlp", "nmtune", "lora", "nmtune-lora", "ft", "levi", "levi-lora"),
    *("det-frozen", "det-ft", "det-lora"),
]


def _method_order(name: str) -> tuple[int, str]:
    return (_ORDER.index(name) if name in _ORDER else len(_ORDER), name)
