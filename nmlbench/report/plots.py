"""The figures (seaborn/matplotlib, PNG + SVG): spectra, SVE/LSVR vs noise, accuracy vs noise, deltas.

Every function takes the tables from `aggregate` (or spectrum rows) and returns a Figure;
`save` writes it twice with fixed metadata, so the same inputs give the same files.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never open a window (CI, SLURM nodes)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from nmlbench.errors import UserError  # noqa: E402
from nmlbench.io import atomic_path  # noqa: E402
from nmlbench.leaderboard.text import clean_text  # noqa: E402

plt.rcParams["svg.hashsalt"] = "nmlbench"  # deterministic element ids in SVG output
FORMATS = ("png", "svg")
# Names in figures come from submissions: matplotlib would parse `$...$` as mathtext (and fail
# on `$\frac{1}{$`) or hand text to LaTeX. Every figure is drawn with both off, so text is text.
LITERAL_TEXT = {"text.parse_math": False, "text.usetex": False}
LABEL_COLUMNS = ("data", "model", "model_name", "method", "recipe", "noise_kind", "task")


def save(fig: plt.Figure, stem: Path, formats: Iterable[str] = FORMATS) -> list[Path]:
    """Write `stem.png` / `stem.svg` atomically; no date or version stamps, so reruns are identical."""
    out = []
    for ext in formats:
        dest = stem.with_suffix(f".{ext}")
        meta = {"Date": None} if ext == "svg" else {"Software": None}
        with atomic_path(dest) as tmp:
            fig.savefig(tmp, format=ext, dpi=120, bbox_inches="tight", metadata=meta)
        out.append(dest)
    plt.close(fig)
    return out


def _pct(rate: pd.Series) -> pd.Series:
    return (rate * 100).round(6)


def _checkpoint_label(df: pd.DataFrame) -> pd.Series:
    """The architecture, prefixed with the upstream data where a figure holds more than one."""
    data = df["data"] if "data" in df else pd.Series("", index=df.index)
    if data.nunique() > 1:
        return data.replace("", "?") + "/" + df["model"].astype(str)
    return df["model"].astype(str)


def spectra_figure(spectra: pd.DataFrame, top: int = 256) -> plt.Figure:
    """Singular values (log scale) by index, one line per noise rate, one panel per model."""
    spectra = spectra.assign(model=_checkpoint_label(spectra))
    models = sorted(spectra["model"].unique())
    fig, axes = plt.subplots(1, len(models), figsize=(max(7.0, 5 * len(models)), 3.8), squeeze=False)
    palette = sns.color_palette("viridis", n_colors=max(spectra["noise_rate"].nunique(), 2))
    rates = sorted(spectra["noise_rate"].unique())
    for ax, model in zip(axes[0], models, strict=True):
        sub = spectra[spectra.model == model]
        for rate in rates:
            group = sub[sub.noise_rate == rate]
            if group.empty:
                continue
            # Stop at the numerical rank: row centring leaves one ~0 value that would flatten the log axis.
            k = min(top, int(group["rank"].min()), min(len(v) for v in group.singular_values))
            mean = np.mean([np.asarray(v[:k]) for v in group.singular_values], axis=0)
            ax.plot(
                np.arange(1, k + 1),
                np.maximum(mean, 1e-12),
                color=palette[rates.index(rate)],
                label=f"{rate * 100:g}%",
            )
        ax.set_yscale("log")
        ax.set(title=str(model), xlabel="index i", ylabel="singular value σᵢ")
        ax.legend(title="noise rate", fontsize=8)
    fig.suptitle("Feature spectra per pretraining noise rate (mean over tasks and seeds)")
    fig.tight_layout()
    return fig


def spectrum_metrics_figure(spectra: pd.DataFrame) -> plt.Figure:
    """SVE and LSVR (-log σ₁/Σσ) against noise rate, one line per model, band = sd over tasks/seeds."""
    data = spectra.assign(noise_pct=_pct(spectra["noise_rate"]), model=_checkpoint_label(spectra))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, col, label in ((axes[0], "sve", "SVE"), (axes[1], "lsvr_neglog", "LSVR = −log(σ₁/Σσ)")):
        sns.lineplot(data=data, x="noise_pct", y=col, hue="model", marker="o", errorbar="sd", ax=ax)
        ax.set(xlabel="pretraining noise rate (%)", ylabel=label, title=f"{label} vs noise")
    axes[0].get_legend().remove()
    sns.move_legend(axes[1], "upper left", bbox_to_anchor=(1.02, 1))
    fig.tight_layout()
    return fig


def accuracy_figure(cells: pd.DataFrame, metric_name: str = "Top-1 (%)") -> plt.Figure:
    """ID and OOD average accuracy against noise rate, one line per method (style: model)."""
    data = cells.dropna(subset=["noise_rate"])
    data = data.assign(noise_pct=_pct(data["noise_rate"]), model=_checkpoint_label(data))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=False)
    style = "model" if data["model"].nunique() > 1 else None
    for ax, col, title in (
        (axes[0], "id_avg", "in-distribution"),
        (axes[1], "ood_avg", "out-of-distribution"),
    ):
        if data[col].notna().any():
            sns.lineplot(
                data=data, x="noise_pct", y=col, hue="method", style=style, marker="o", errorbar="sd", ax=ax
            )
        ax.set(xlabel="pretraining noise rate (%)", ylabel=f"{title} avg {metric_name}", title=title)
    if axes[0].get_legend() is not None:  # one legend, outside the data
        axes[0].get_legend().remove()
    if axes[1].get_legend() is not None:
        sns.move_legend(axes[1], "upper left", bbox_to_anchor=(1.02, 1))
    fig.tight_layout()
    return fig


def delta_heatmap_figure(summary: pd.DataFrame, tasks: list[str]) -> plt.Figure:
    """Per-task mean delta vs the clean checkpoint, rows = model / noise / method (noisy rows only)."""
    from nmlbench.report.table import model_labels, noise_label

    noisy = summary[summary.noise_rate > 0]
    noisy = noisy.assign(model=model_labels(noisy))
    noisy = noisy.assign(ckpt_label=_checkpoint_label(noisy))
    noisy = noisy.sort_values(["ckpt_label", "noise_rate", "recipe", "method"], kind="mergesort")
    if noisy.empty:
        raise UserError("no noisy (rate > 0) rows to compare with a clean checkpoint; add a noise sweep")
    labels = [
        f"{r.ckpt_label} · {noise_label(r.noise_kind, r.noise_rate, r.recipe)} · {r.method}"
        for r in noisy.itertuples()
    ]
    mat = pd.DataFrame(noisy[[f"{t}_delta_mean" for t in tasks]].to_numpy(), index=labels, columns=tasks)
    lim = float(np.nanmax(np.abs(mat.to_numpy()))) if np.isfinite(mat.to_numpy()).any() else 1.0
    fig, ax = plt.subplots(figsize=(1.4 * len(tasks) + 4, 0.45 * len(labels) + 1.6))
    sns.heatmap(
        mat,
        annot=True,
        fmt="+.1f",
        cmap="RdBu",
        center=0.0,
        vmin=-lim,
        vmax=lim,
        cbar_kws={"label": "Δ vs clean (points)"},
        ax=ax,
    )
    ax.set(xlabel="task", ylabel="", title="Per-task change vs the clean (0 %) checkpoint")
    fig.tight_layout()
    return fig


FORMATS_READ = ("nmlbench-result", "nmlbench-spectrum")


def _names_our_format(path: Path) -> bool:
    try:
        text = path.read_bytes().decode("utf-8", "replace")
    except OSError:
        return True  # unreadable: say so rather than guess
    return any(f'"{f}"' in text for f in FORMATS_READ)


def _spectrum_row(rec: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    noise = rec["model"].get("noise") or {}
    return {
        "data": rec["model"].get("data") or "",
        "model": rec["model"]["arch"],
        "model_name": rec["model"]["name"],
        "noise_rate": float(noise.get("rate", np.nan)),
        "task": rec["task"]["name"],
        "centring": spec["centring"],
        "sve": spec["sve"],
        "lsvr_neglog": spec["lsvr_neglog"],
        "lsvr_ratio": spec["lsvr_ratio"],
        "rank": spec["rank"],
        "singular_values": spec.get("singular_values") or [],
    }


def load_spectra(paths: Iterable[str | Path]) -> pd.DataFrame:
    """Spectrum rows from result records with a `spectrum` block and from `nmlbench spectrum` records.

    Every file is read strictly (a damaged one raises a UserError naming it); a result record's
    spectrum is checked against its schema, since the figures trust its fields.
    """
    from nmlbench.leaderboard.records import CorruptFile, read_json
    from nmlbench.leaderboard.schema import schema_errors

    rows: list[dict[str, Any]] = []
    for path in map(Path, paths):
        try:
            rec = read_json(path)
        except CorruptFile:
            if _names_our_format(path):
                raise
            continue  # other JSON in a spectrum folder (configs, logs) is not ours to judge
        if not isinstance(rec, dict) or rec.get("format") not in FORMATS_READ or not rec.get("spectrum"):
            continue
        spec = rec["spectrum"]
        is_result = rec["format"] == "nmlbench-result"
        errors = schema_errors(rec, "result") if is_result else schema_errors(spec, "spectrum")
        try:
            if errors:
                raise ValueError(errors[0])
            rows.append(_spectrum_row(rec, spec))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise CorruptFile(
                f"{path}: not a usable {rec['format']} record ({e}); re-run the command that wrote it"
            ) from None
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    # The same model/task spectrum is attached to every method's record: keep one copy.
    return df.drop_duplicates(["model_name", "task", "centring"]).reset_index(drop=True)


def make_all(
    cells: pd.DataFrame,
    summary: pd.DataFrame,
    tasks: list[str],
    spectra: pd.DataFrame,
    out_dir: Path,
    metric_name: str = "Top-1 (%)",
) -> dict[str, list[Path]]:
    """Every figure the data supports, as {name: [png, svg]}; skipped ones are simply absent.

    Text is drawn literally (no mathtext, no LaTeX) and cleaned of control and bidi characters.
    """
    sns.set_theme(style="whitegrid", context="notebook")
    cells, summary, spectra = (_clean_labels(t) for t in (cells, summary, spectra))
    with plt.rc_context(LITERAL_TEXT):
        return _make_all(cells, summary, tasks, spectra, out_dir, metric_name)


def _clean_labels(df: pd.DataFrame) -> pd.DataFrame:
    cols = [c for c in LABEL_COLUMNS if c in df.columns]
    return df.assign(**{c: df[c].map(lambda v: clean_text(v) if isinstance(v, str) else v) for c in cols})


def _make_all(
    cells: pd.DataFrame,
    summary: pd.DataFrame,
    tasks: list[str],
    spectra: pd.DataFrame,
    out_dir: Path,
    metric_name: str,
) -> dict[str, list[Path]]:
    figs: dict[str, list[Path]] = {}
    if cells.noise_rate.notna().any():  # models nmlbench did not pretrain have no noise rate to plot against
        figs["accuracy_vs_noise"] = save(accuracy_figure(cells, metric_name), out_dir / "accuracy_vs_noise")
    if (summary.noise_rate > 0).any() and (summary.noise_rate == 0).any():
        figs["delta_heatmap"] = save(delta_heatmap_figure(summary, tasks), out_dir / "delta_heatmap")
    spectra = spectra.dropna(subset=["noise_rate"]) if not spectra.empty else spectra
    if not spectra.empty:
        figs["spectrum_vs_noise"] = save(spectrum_metrics_figure(spectra), out_dir / "spectrum_vs_noise")
        with_values = spectra[spectra.singular_values.map(len) > 0]
        if not with_values.empty:
            figs["spectra"] = save(spectra_figure(with_values), out_dir / "spectra")
    return figs
