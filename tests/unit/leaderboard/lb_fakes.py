"""A tiny fake suite and a generator of valid result records + predictions for it.

Shared by the leaderboard, report and browser tests (their conftest puts this folder on sys.path).
Metrics here are computed with a confusion matrix, independently of the checker's own functions.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from nmlbench.leaderboard.catalog import TaskInfo

TASKS = {
    "fake-a": TaskInfo("fake-a", 1, 4, "id", None),
    "fake-b": TaskInfo("fake-b", 2, 3, "id", None),
    "fake-a-ood": TaskInfo("fake-a-ood", 1, 4, "ood", "fake-a"),
}
SIZES = {"fake-a": 40, "fake-b": 30, "fake-a-ood": 24}
SUITES = {"fake": ["fake-a", "fake-b", "fake-a-ood"]}


class FakeCatalog:
    """TaskCatalog over TASKS/SUITES with fixed, seeded test labels.

    `user_paths`: task YAML path -> fake task name, standing in for user tasks read from files.
    """

    def __init__(self, user_paths: dict[str, str] | None = None) -> None:
        self.user_paths = dict(user_paths or {})

    def task(self, ref: str) -> TaskInfo | None:
        return TASKS.get(self.user_paths.get(ref, ref) if ref.endswith(".yaml") else ref)

    def suite_tasks(self, name: str) -> list[str] | None:
        return SUITES.get(name)

    def truth(self, ref: str) -> tuple[np.ndarray, np.ndarray]:
        name = self.user_paths.get(ref, ref)
        n, k = SIZES[name], TASKS[name].num_classes
        ids = np.array([f"{name}/{i:05d}" for i in range(n)])
        labels = np.arange(n, dtype=np.int64) % k
        return ids, labels


def confusion_metrics(labels: np.ndarray, preds: np.ndarray, k: int) -> tuple[float, float]:
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (labels, preds), 1)
    tp = np.diag(cm).astype(float)
    support, predicted = cm.sum(1), cm.sum(0)
    present = (support + predicted) > 0
    f1 = np.where(present, 2 * tp / np.maximum(support + predicted, 1), 0.0)
    return float(tp.sum() / cm.sum() * 100), float(f1[present].mean() * 100)


@dataclass(frozen=True)
class Model:
    """A fake nmlbench checkpoint; `legacy` leaves out the identity fields older records lack."""

    arch: str = "tinynet"
    rate: float = 0.0
    pretrain_seed: int = 0
    kind: str = "symmetric_label"
    data: str = "fake"
    recipe: str = ""  # '' -> sym<rate>; the pretrain_key hashes it, so it separates recipes
    variant: str = ""  # another pretraining setting (e.g. epochs): new pretrain_key, name suffix
    legacy: bool = False

    @property
    def recipe_name(self) -> str:
        return self.recipe or f"sym{round(self.rate * 100)}"

    @property
    def name(self) -> str:
        return f"{self.arch}.{self.data}_{self.recipe_name}_s{self.pretrain_seed}{self.variant}"

    @property
    def pretrain_key(self) -> str:  # seed-free, like nmlbench.pretrain.train.pretrain_key
        ident = f"{self.arch}|{self.data}|{self.kind}|{self.rate}|{self.recipe}|{self.variant}"
        return hashlib.sha256(ident.encode()).hexdigest()[:16]

    @property
    def key(self) -> str:
        return hashlib.sha256(f"weights|{self.name}".encode()).hexdigest()[:16]


def _accuracy(model: Model, method: str, task: str, seed: int) -> float:
    """A made-up but structured accuracy: noise hurts, OOD is harder, methods differ, seeds jitter."""
    base = {"lp": 0.70, "nmtune": 0.78}.get(method, 0.6) - 0.4 * model.rate
    base -= 0.15 if TASKS[task].domain == "ood" else 0.0
    jitter = (hashlib.sha256(f"{model.name}{method}{task}{seed}".encode()).digest()[0] / 255 - 0.5) * 0.1
    return float(np.clip(base + jitter, 0.05, 1.0))


def fake_spectrum(model: Model, task: str) -> dict:
    """Spectrum of synthetic features whose decay steepens with the noise rate."""
    from nmlbench.spectrum.metrics import analyse

    key = hashlib.sha256(f"{model.name}|{task}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(key[:8], "little"))
    scale = np.arange(1, 33, dtype=float) ** -(0.5 + 2 * model.rate)
    return analyse(rng.normal(size=(120, 32)) * scale, "row").to_record()


def make_record(
    out: Path,
    model: Model,
    method: str,
    task: str,
    seed: int,
    suite: str = "fake",
    spectrum: bool = False,
    preds: np.ndarray | float | None = None,
) -> dict:
    """Write predictions/<run_id>.parquet and <run_id>.json under `out`; return the record.

    `preds`: the predictions themselves, or an exact accuracy (the first round(acc * n) samples
    right, the others wrong), or None for seeded made-up ones.
    """
    ids, labels = FakeCatalog().truth(task)
    k = TASKS[task].num_classes
    key = hashlib.sha256(f"{model.name}|{method}|{task}|{seed}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(key[:8], "little"))  # hash() is salted per process
    if preds is None:
        right = rng.random(len(labels)) < _accuracy(model, method, task, seed)
        preds = np.where(right, labels, (labels + 1 + rng.integers(0, k - 1, len(labels))) % k)
    elif np.ndim(preds) == 0:
        right = np.arange(len(labels)) < round(float(preds) * len(labels))
        preds = np.where(right, labels, (labels + 1) % k)
    preds = np.asarray(preds, dtype=np.int64)
    run_id = f"{model.name}__{method}__{task}__s{seed}__abcd1234"
    ppath = out / "predictions" / f"{run_id}.parquet"
    ppath.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.table(
            {
                "sample_id": pa.array(ids, pa.string()),
                "label": pa.array(labels, pa.int64()),
                "pred": pa.array(preds, pa.int64()),
            }
        ),
        ppath,
    )
    t1, f1 = confusion_metrics(labels, preds, k)
    info = TASKS[task]
    rec = {
        "format": "nmlbench-result",
        "schema_version": 1,
        "run_id": run_id,
        "created": "2026-11-23T04:00:00Z",
        "suite": suite,
        "seed": seed,
        "model": {
            "ref": f"nmlbench-out/ckpt/{model.name}",
            "name": model.name,
            "library": "timm",
            "arch": model.arch,
            "checkpoint_sha256": hashlib.sha256(model.name.encode()).hexdigest(),
            "noise": {
                "kind": model.kind,
                "rate": model.rate,
                "seed": 0,
                "recipe": model.recipe_name,
            },
            "manifest_sha256": hashlib.sha256(b"m" + model.name.encode()).hexdigest(),
            "pretrain_seed": model.pretrain_seed,
            **(
                {}
                if model.legacy
                else {"key": model.key, "data": model.data, "pretrain_key": model.pretrain_key}
            ),
        },
        "method": {"name": method, "config": {"lr": 0.001}, "trainable_params": 10, "total_params": 100},
        "task": {
            "name": task,
            "version": info.version,
            "domain": info.domain,
            "train_task": info.train_task,
            "num_classes": k,
        },
        "metrics": {"top1": round(t1, 4), "macro_f1": round(f1, 4)},
        "selection": {"split": "val", "best_epoch": 3, "val_top1": 50.0},
        "predictions": {
            "path": f"predictions/{run_id}.parquet",
            "sha256": hashlib.sha256(ppath.read_bytes()).hexdigest(),
            "n": int(len(ids)),
        },
        "cost": {"wall_time_s": 1.5, "peak_memory_mb": 100.0, "device": "cpu"},
        "env": {
            "nmlbench": "0.1.0",
            "python": "3.11.7",
            "torch": "2.14.1",
            "git_sha": None,
            "slurm_job_id": None,
        },
    }
    if spectrum:
        rec["spectrum"] = fake_spectrum(model, task)
    (out / f"{run_id}.json").write_text(json.dumps(rec, indent=2), encoding="utf-8")
    return rec


def make_submission(
    out: Path,
    name: str = "Tiny baseline",
    author: str = "A. Tester",
    models: tuple[Model, ...] = (Model(),),
    methods: tuple[str, ...] = ("lp",),
    seeds: tuple[int, ...] = (0,),
    spectrum: bool = False,
) -> Path:
    """A complete, valid submission folder for the fake suite."""
    out.mkdir(parents=True, exist_ok=True)
    meta = {"format": "nmlbench-submission", "schema_version": 1, "name": name, "author": author}
    (out / "submission.json").write_text(json.dumps(meta), encoding="utf-8")
    for model in models:
        for method in methods:
            for seed in seeds:
                for task in SUITES["fake"]:
                    make_record(out, model, method, task, seed, spectrum=spectrum)
    return out


def study_models(
    rates: tuple[float, ...] = (0.0, 0.1, 0.3),
    pretrain_seeds: tuple[int, ...] = (0, 1),
    arch: str = "tinynet",
) -> tuple[Model, ...]:
    return tuple(Model(arch, r, s) for r in rates for s in pretrain_seeds)
