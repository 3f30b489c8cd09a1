"""The leaderboard as a markdown table: formatted 'mean ± std' cells, every submitted string escaped."""

from __future__ import annotations

import html
import math

import pandas as pd

from nmlbench.report.aggregate import DisplayConfig


def noise_label(kind: str, rate: float) -> str:
    """'symmetric_label', 0.1 -> 'symmetric_label 10%'; models not pretrained by nmlbench -> 'n/a'."""
    if kind == "none" or rate != rate:
        return "n/a"
    return f"{kind} {rate * 100:g}%"


def fmt(mean: float, std: float, n: int, decimals: int, signed: bool = False) -> str:
    """'71.30 ± 0.40'; a single seed shows no ± part; missing values show as an em dash."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "—"
    head = f"{mean:+.{decimals}f}" if signed else f"{mean:.{decimals}f}"
    if n > 1 and std == std:
        return f"{head} ± {std:.{decimals}f}"
    return head


def md_escape(text: object) -> str:
    """Markdown renderers pass HTML through: escape it, and the table's own pipes and newlines."""
    return html.escape(str(text), quote=True).replace("|", "&#124;").replace("\n", " ").replace("\r", " ")


def display_rows(
    summary: pd.DataFrame, tasks: list[str], cfg: DisplayConfig
) -> tuple[list[str], list[list[str]]]:
    """Header and string cells shared by the markdown table and the web page (not yet escaped)."""
    d = cfg.decimals
    header = [
        "Submission",
        "Author",
        "Model",
        "Noise",
        "Method",
        "Seeds",
        "ID avg",
        "Δ ID",
        "OOD avg",
        "Δ OOD",
    ] + tasks
    rows = []
    for r in summary.to_dict("records"):
        n = int(r["n_seeds"])
        cells = [
            r["submission"],
            r["author"],
            r["model"],
            noise_label(r["noise_kind"], r["noise_rate"]),
            r["method"],
            str(n),
        ]
        for col, signed in (("id_avg", False), ("id_delta", True), ("ood_avg", False), ("ood_delta", True)):
            cells.append(fmt(r[f"{col}_mean"], r[f"{col}_std"], n, d, signed))
        cells += [fmt(r[f"{t}_mean"], r[f"{t}_std"], n, d) for t in tasks]
        rows.append([str(c) for c in cells])
    return header, rows


def markdown_table(summary: pd.DataFrame, tasks: list[str], cfg: DisplayConfig | None = None) -> str:
    header, rows = display_rows(summary, tasks, cfg or DisplayConfig())
    lines = [
        "| " + " | ".join(md_escape(h) for h in header) + " |",
        "|" + "|".join(":---" if i < 5 else "---:" for i in range(len(header))) + "|",
    ]
    lines += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def markdown_page(summary: pd.DataFrame, tasks: list[str], cfg: DisplayConfig) -> str:
    metric = cfg.metric_names.get(cfg.metric, cfg.metric)
    return (
        f"# {md_escape(cfg.title)}\n\n"
        f"Metric: {md_escape(metric)}, mean ± std over (pretraining seed, evaluation seed) pairs. "
        "Δ: difference to the clean (0 % noise) checkpoint of the same recipe, method and seeds; "
        "ID and OOD averaged apart. Built by `nmlbench leaderboard build`.\n\n"
        + markdown_table(summary, tasks, cfg)
    )
