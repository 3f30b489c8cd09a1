"""Spectrum records: features of a task's test split from a frozen model -> metrics JSON.

Features come from the evaluation stage's cache (`nmlbench.features.FeatureStore`), so a model
already evaluated on a task is not run again. Records are written atomically and skipped when
present; `attach` copies them into matching result records so the leaderboard can show them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nmlbench.config import bounded
from nmlbench.errors import UserError
from nmlbench.io import write_json
from nmlbench.paths import output_root
from nmlbench.results.io import InvalidRecord, check_record, write_record
from nmlbench.spectrum.metrics import DEFAULT_TOP_K, analyse

FORMAT = "nmlbench-spectrum"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class SpectrumOptions:
    """What to compute and where; the metric definitions are fixed (docs/spectrum.md)."""

    centring: str = "row"  # row: the reference's per-row mean; column: per-feature mean
    l2_normalise: bool = True  # the reference L2-normalises rows before centring
    top_k: tuple[int, ...] = bounded(DEFAULT_TOP_K, ge=1)  # numbers of leading singular values
    batch_size: int = bounded(256, ge=1)  # feature extraction only
    pretrained: bool = True  # library names: load the library's weights (False: seeded random init)
    # evaluation resolution; None: the model's own (docs/models.md)
    image_size: int | None = bounded(None, ge=1)
    data_root: str | None = None
    root: str | None = None  # output root ($NMLBENCH_ROOT)


@dataclass(frozen=True)
class Features:
    """An (N, D) feature matrix with the provenance a record needs."""

    x: np.ndarray
    model: dict[str, Any]  # the `model` block of a result record
    task: dict[str, Any]  # {"name", "version", "split"}


def _test_split(task: str, opts: SpectrumOptions) -> tuple[Any, Any, Any]:
    from nmlbench.tasks import get_task, load_split, resolve_train_task

    spec = get_task(task)
    split = load_split(spec, "test", data_root=opts.data_root, download=False)
    train = resolve_train_task(spec) if spec.domain == "ood" else None
    return spec, split, train


def check_tasks(tasks: Sequence[str], opts: SpectrumOptions) -> list[str]:
    """Every task resolved and its test split read before anything is written; returns unique refs."""
    refs: dict[str, str] = {}
    for task in tasks:
        spec, _, _ = _test_split(task, opts)
        refs.setdefault(spec.key, spec.ref)
    return list(refs.values())


def extract_test_features(model_ref: str, task: str, opts: SpectrumOptions) -> Features:
    """Features of `task`'s test split from the frozen backbone `model_ref` (cached on disk)."""
    from nmlbench.features.extract import FeatureConfig, FeatureStore, split_ref
    from nmlbench.models.load import load_backbone

    spec, split, train = _test_split(task, opts)
    backbone = load_backbone(model_ref, pretrained=opts.pretrained, image_size=opts.image_size)
    store = FeatureStore(backbone, FeatureConfig(batch_size=opts.batch_size), root=opts.root)
    x = store.eval_features(split, split_ref(spec.label, spec.version, "test", split))
    return Features(
        x.numpy(),
        dict(backbone.provenance),
        {**spec.record_block(train), "split": "test"},
    )


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+=@-]+", "_", text).strip("_") or "x"


def record_path(model: dict[str, Any], task: dict[str, Any], centring: str, root: str | None = None) -> Path:
    """spectrum/<model name>-<model key>/<task name>-<task key>__<centring>.json, always under the root:
    two models (or two tasks) sharing a short name never share a file."""
    model_dir = _safe(f"{model['name']}-{str(model.get('key') or '')[:8]}".rstrip("-"))
    task_stem = _safe(f"{task['name']}-{str(task.get('key') or '')[:8]}".rstrip("-"))
    return output_root(root) / "spectrum" / model_dir / f"{task_stem}__{centring}.json"


def make_record(feats: Features, opts: SpectrumOptions) -> dict[str, Any]:
    m = analyse(feats.x, opts.centring, opts.l2_normalise, opts.top_k)
    return {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "model": feats.model,
        "task": feats.task,
        "spectrum": m.to_record(),
    }


def run_spectrum(
    models: Sequence[str],
    tasks: Sequence[str],
    opts: SpectrumOptions,
    features: Callable[[str, str, SpectrumOptions], Features] = extract_test_features,
    progress: Callable[[Any], Any] = iter,
) -> list[Path]:
    """One record per (model, task); existing records are kept (resumable), new ones written atomically."""
    written = []
    for model_ref, task in progress([(m, t) for m in models for t in tasks]):
        feats = features(model_ref, task, opts)
        path = record_path(feats.model, feats.task, opts.centring, opts.root)
        if not path.exists():
            rec = make_record(feats, opts)
            check_record(rec["spectrum"], "spectrum")
            write_json(path, rec)
        written.append(path)
    return written


def _same(a: dict[str, Any], b: dict[str, Any], keys: tuple[str, ...]) -> bool:
    """Same model / task: by the first identity both blocks carry, the name only as a last resort."""
    for k in keys:
        if a.get(k) and b.get(k):
            return a[k] == b[k]
    return a.get("name") == b.get("name")


def attach(spectrum_records: Sequence[Path], results_dir: str | Path) -> list[Path]:
    """Copy each spectrum into every result record of the same model and task; return the updated files."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise UserError(f"{results_dir} is not a folder of result records; pass results/<suite>")
    spectra = [json.loads(Path(p).read_text(encoding="utf-8")) for p in spectrum_records]
    changed: list[tuple[Path, dict[str, Any]]] = []
    for path in sorted(results_dir.glob("*.json")):
        rec = json.loads(path.read_text(encoding="utf-8"))
        if rec.get("format") != "nmlbench-result":
            continue
        for spec in spectra:
            if _same(spec["task"], rec["task"], ("key",)) and _same(
                spec["model"], rec["model"], ("key", "checkpoint_sha256")
            ):
                if rec.get("spectrum") != spec["spectrum"]:
                    rec["spectrum"] = spec["spectrum"]
                    try:  # every updated record is checked before the first one is written
                        check_record(rec, "result")
                    except InvalidRecord as e:
                        raise UserError(f"{path}: {e}; re-run `nmlbench evaluate` for this cell") from None
                    changed.append((path, rec))
                break
    updated = []
    for path, rec in changed:
        write_record(path, rec)
        updated.append(path)
    return updated
