"""The leaderboard as a markdown table: formatted 'mean ± std' cells, every submitted string escaped."""

from __future__ import annotations

import math
import re

import pandas as pd

from nmlbench.leaderboard.text import clean_text, md_cell
from nmlbench.report.aggregate import DisplayConfig

# Text columns, then the numbers; "Seeds" reads 'pretraining seeds × tuning seeds'.
TEXT_COLUMNS = ("Submission", "Author", "Data", "Model", "Noise", "Method", "Flags", "Seeds")
EXPLAIN = (
    "One row per checkpoint recipe (upstream data, noise recipe, architecture, pretraining "
    "config) and method; a value is the mean over its checkpoints (one per pretraining seed) "
    "of each checkpoint's mean over tuning seeds, ± the std over pretraining seeds (ᵖ) and ± "
    "the mean std over tuning seeds within a checkpoint (ᵗ). Δ: difference to the clean "
    "(0 % noise) checkpoint of the same upstream data, architecture and pretraining seed, "
    "tuned with the same method and seed; ID and OOD averaged apart. Flags: results whose "
    "predictions are one class for a whole split (degenerate) or all right (perfect: the task "
    "is at its ceiling) / results in the row."
)


def noise_label(kind: str, rate: float, recipe: str = "") -> str:
    """'symmetric_label', 0.1 -> 'symmetric_label 10%'; a named recipe is shown too
    ('group_label 20% (group20-3f9a1c)'); clean data without a manifest -> 'clean'; models not
    pretrained by nmlbench -> 'n/a'."""
    if rate != rate:
        return "n/a"
    if kind == "none":
        return "clean"
    label = f"{kind} {rate * 100:g}%"
    return label if not recipe or re.fullmatch(r"[a-z]+\d+", recipe) else f"{label} ({recipe})"


def fmt(mean: float, sd_pretrain: float, sd_tune: float, decimals: int, signed: bool = False) -> str:
    """'71.30 ± 0.40ᵖ ± 0.12ᵗ': spread over pretraining seeds (ᵖ) and within a checkpoint over
    tuning seeds (ᵗ), each shown only where there were two seeds to measure it; '—' when missing."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "—"
    out = f"{mean:+.{decimals}f}" if signed else f"{mean:.{decimals}f}"
    if sd_pretrain == sd_pretrain and sd_pretrain is not None:
        out += f" ± {sd_pretrain:.{decimals}f}ᵖ"
    if sd_tune == sd_tune and sd_tune is not None:
        out += f" ± {sd_tune:.{decimals}f}ᵗ"
    return out


def seeds_label(n_pretrain: int, n_tune_min: int, n_tune_max: int) -> str:
    """'2×3': pretraining seeds (checkpoints) × tuning seeds per checkpoint ('2×1–3' if uneven)."""
    tune = str(n_tune_min) if n_tune_min == n_tune_max else f"{n_tune_min}–{n_tune_max}"
    return f"{n_pretrain}×{tune}"


def model_labels(summary: pd.DataFrame) -> list[str]:
    """The architecture, plus the image size and a short recipe key where two rows would
    otherwise read the same: two recipes of one architecture never share a label."""
    recs = summary.to_dict("records")
    same = ["submission", "data", "model", "noise_kind", "noise_rate", "recipe", "method"]

    def key(r: dict, cols: list[str]) -> tuple:
        return tuple("nan" if isinstance(r.get(c), float) and r[c] != r[c] else r.get(c) for c in cols)

    sizes: dict[tuple, set] = {}
    groups: dict[tuple, set] = {}
    for r in recs:
        sizes.setdefault(key(r, same[:3]), set()).add(r.get("image_size", 0))
        groups.setdefault(key(r, same + ["image_size"]), set()).add(r.get("group", ""))
    out = []
    for r in recs:
        label = str(r["model"])
        if len(sizes[key(r, same[:3])]) > 1 and r.get("image_size"):
            label += f" @{int(r['image_size'])}px"
        if len(groups[key(r, same + ["image_size"])]) > 1:
            g = str(r.get("group") or "")
            label += f" [{g[5:] if g.startswith('name:') else g[:8] or 'legacy'}]"
        out.append(label)
    return out


def md_escape(text: object) -> str:
    """Text shown literally in markdown: no HTML, link, image, autolink, emphasis or math, no
    broken table (pipes, line breaks), no control or bidi characters (`leaderboard.text`)."""
    return md_cell(text)


def display_rows(
    summary: pd.DataFrame, tasks: list[str], cfg: DisplayConfig
) -> tuple[list[str], list[list[str]]]:
    """Header and string cells shared by the markdown table and the web page: cleaned (control and
    bidi characters removed), not yet escaped for either format."""
    d = cfg.decimals
    header = list(TEXT_COLUMNS) + ["ID avg", "Δ ID", "OOD avg", "Δ OOD"] + [clean_text(t) for t in tasks]
    rows = []
    for r, model in zip(summary.to_dict("records"), model_labels(summary), strict=True):
        cells = [
            r["submission"],
            r["author"],
            r.get("data") or "—",
            model,
            noise_label(r["noise_kind"], r["noise_rate"], r.get("recipe") or ""),
            r["method"],
            r.get("flags") if isinstance(r.get("flags"), str) else "",
            seeds_label(int(r["n_pretrain"]), int(r["n_tune_min"]), int(r["n_tune_max"])),
        ]
        for col, signed in (("id_avg", False), ("id_delta", True), ("ood_avg", False), ("ood_delta", True)):
            cells.append(fmt(r[f"{col}_mean"], r[f"{col}_sd_pretrain"], r[f"{col}_sd_tune"], d, signed))
        cells += [fmt(r[f"{t}_mean"], r[f"{t}_sd_pretrain"], r[f"{t}_sd_tune"], d) for t in tasks]
        rows.append([clean_text(c) for c in cells])  # submitted text, cleaned again at render time
    return header, rows


def markdown_table(summary: pd.DataFrame, tasks: list[str], cfg: DisplayConfig | None = None) -> str:
    header, rows = display_rows(summary, tasks, cfg or DisplayConfig())
    lines = [
        "| " + " | ".join(md_escape(h) for h in header) + " |",
        "|" + "|".join(":---" if i < len(TEXT_COLUMNS) - 1 else "---:" for i in range(len(header))) + "|",
    ]
    lines += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def markdown_page(summary: pd.DataFrame, tasks: list[str], cfg: DisplayConfig) -> str:
    metric = cfg.metric_names.get(cfg.metric, cfg.metric)
    return (
        f"# {md_escape(cfg.title)}\n\n"
        f"Metric: {md_escape(metric)}. {EXPLAIN} Built by `nmlbench leaderboard build`.\n\n"
        + markdown_table(summary, tasks, cfg)
    )
