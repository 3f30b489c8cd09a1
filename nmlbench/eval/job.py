"""One (model, train task) job: load splits once, route each tuner to its inputs, write records."""

from __future__ import annotations

import datetime as _dt
import logging
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nmlbench import tracking
from nmlbench.errors import UserError
from nmlbench.eval.config import EvalConfig, method_config_dict
from nmlbench.eval.metrics import compute_metrics, prediction_flags
from nmlbench.features.extract import FeatureStore, split_ref
from nmlbench.provenance import git_sha, slurm_job_id, versions
from nmlbench.results.io import FORMAT, SCHEMA_VERSION, write_predictions, write_record
from nmlbench.tuning.base import FeatureData, ImageData, Tuner

log = logging.getLogger(__name__)


class TaskData:
    """The train task's train/val splits and the test split of every reported task, loaded once."""

    def __init__(self, job: Any, backbone: Any, cfg: EvalConfig, api: Any) -> None:
        self.job, self.backbone, self.cfg = job, backbone, cfg
        self.store = FeatureStore(backbone, cfg.features, job.root)
        self.train_spec, self.train, self.val, self.report = load_task_data(job, api)
        self._eval_feats: dict[tuple[str, str], torch.Tensor] = {}

    def eval_features(self, spec: Any, split_name: str, split: Any) -> torch.Tensor:
        key = (spec.key, split_name)
        if key not in self._eval_feats:
            self._eval_feats[key] = self.store.eval_features(
                split, split_ref(spec.label, spec.version, split_name, split)
            )
        return self._eval_feats[key]

    def feature_inputs(self, tuner: Tuner) -> FeatureData:
        spec = self.train_spec
        k = tuner.views_needed()
        views = None
        if k is not None:
            views = self.store.view_source(
                self.train, split_ref(spec.label, spec.version, "train", self.train), k
            )
        # view-trained tuners (MLP, NMTune) never read eval-transform train features: skipping
        # them makes NMTune at K=1 extract exactly what LP does (one pass over train, val, test)
        train = self.eval_features(spec, "train", self.train) if tuner.uses_train_features else None
        return FeatureData(
            train,
            _labels(self.train),
            self.eval_features(spec, "val", self.val),
            _labels(self.val),
            spec.num_classes,
            views,
            str(self.backbone.device),
        )

    def image_inputs(self) -> ImageData:
        return ImageData(
            self.backbone,
            self.train,
            self.val,
            self.train_spec.num_classes,
            self.backbone.train_transform(self.cfg.features.augment),
            str(self.backbone.device),
        )


def load_task_data(job: Any, api: Any) -> tuple[Any, Any, Any, list[tuple[Any, Any]]]:
    """(train spec, train split, val split, [(reported spec, its test split)]), labels checked."""
    opts = job.options
    train_spec = api.get_task(job.train_task)
    if getattr(train_spec, "dense", False):  # COCO splits: train + reported tests, no val (dense/job.py)
        from nmlbench.dense.job import load_dense_task_data

        spec, train, report = load_dense_task_data(job, api)
        return spec, train, None, report

    def load(spec: Any, split: str) -> Any:
        data = api.load_split(spec, split, data_root=opts.data_root, download=opts.download)
        _check_labels(spec, split, data)
        return data

    train, val = load(train_spec, "train"), load(train_spec, "val")
    report = []
    for ref in job.report_tasks:
        spec = api.get_task(ref)
        if spec.num_classes != train_spec.num_classes:
            raise UserError(
                f"OOD task {spec.name!r} has {spec.num_classes} classes but its train_task "
                f"{train_spec.name!r} has {train_spec.num_classes}; fix the task definition"
            )
        report.append((spec, load(spec, "test")))
    return train_spec, train, val, report


def open_task_data(job: Any, backbone: Any, cfg: EvalConfig) -> Any:
    """TaskData, or DenseTaskData for a detection / instance segmentation train task."""
    from nmlbench.eval.run import tasks_api

    api = tasks_api()
    if getattr(api.get_task(job.train_task), "dense", False):
        from nmlbench.dense.job import DenseTaskData

        return DenseTaskData(job, backbone, api)
    return TaskData(job, backbone, cfg, api)


def route(tuner: Tuner, data: TaskData | None, have_images: bool = True) -> FeatureData | ImageData:
    """Give a tuner the inputs it declares it consumes; never decided by the tuner's name."""
    if tuner.consumes == "features":
        return data.feature_inputs(tuner)
    if tuner.consumes == "images":
        if not have_images:
            raise UserError(
                f"method {type(tuner).__name__} consumes images but only cached features are "
                "available; give a model checkpoint/name so the images can go through it"
            )
        return data.image_inputs()
    raise ValueError(f"tuner {type(tuner).__name__} declares consumes={tuner.consumes!r}")


def fit_and_record(
    tuner: Tuner, method: str, seed: int, data: TaskData, paths: list[Path], cfg: EvalConfig
) -> list[Path]:
    """Fit once on the train task, then predict and write one record per reported task."""
    start = time.perf_counter()
    device = data.backbone.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with tracking.cell(f"{paths[0].parent.name}/{paths[0].stem}"):  # curves named by the first record
        fitted = tuner.fit(route(tuner, data), seed)
    frozen = 0 if tuner.consumes == "images" else sum(p.numel() for p in data.backbone.encoder.parameters())
    method_block = {
        "name": method,
        "config": method_config_dict(
            cfg, tuner.config_key, tuner.consumes, getattr(data.backbone, "modality", "image")
        ),
        "trainable_params": fitted.trainable_params,
        "total_params": fitted.total_params + frozen,
    }
    selection = fitted.selection_block()  # what was reported (best-val or last epoch) and both scores
    for (spec, split), path in zip(data.report, paths, strict=True):
        with torch.no_grad():
            inputs = data.eval_features(spec, "test", split) if tuner.consumes == "features" else split
            logits = np.asarray(fitted.predict(inputs))
        preds = predict_labels(logits, getattr(split, "class_subset", None))
        labels = _labels(split).numpy()
        record = build_record(
            path,
            data,
            seed,
            method_block,
            spec,
            start,
            metrics=compute_metrics(labels, preds),
            flags=prediction_flags(labels, preds),
            selection=selection,
            predictions=write_predictions(path, split.ids, labels, preds),
        )
        write_record(path, record)
        log.info(
            "%s %s %s s%d: top1 %.2f", data.backbone.name, method, spec.name, seed, record["metrics"]["top1"]
        )
    return paths


def build_record(
    path: Path, data: Any, seed: int, method_block: dict[str, Any], spec: Any, start: float, **outcome: Any
) -> dict[str, Any]:
    """A result record: what ran (model, method, task, seed), its `outcome` (metrics, flags, selection,
    predictions: classification and dense records differ only there), its cost and environment."""
    device = data.backbone.device
    return {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "run_id": path.stem,
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "suite": data.job.suite,
        "seed": seed,
        "model": _model_block(data.backbone),
        "method": method_block,
        "task": spec.record_block(data.train_spec),
        **outcome,
        "cost": {
            "wall_time_s": round(time.perf_counter() - start, 3),
            "peak_memory_mb": _peak_mb(device),
            "device": str(device),
        },
        "env": environment(),
    }


def predict_labels(logits: np.ndarray, class_subset: np.ndarray | None) -> np.ndarray:
    """Argmax over all classes, or only over an OOD task's class mask (ImageNet-R/-A: 200 of 1000)."""
    if class_subset is None:
        return logits.argmax(1)
    subset = np.asarray(class_subset, dtype=np.int64)
    return subset[logits[:, subset].argmax(1)]


def _model_block(backbone: Any) -> dict[str, Any]:
    prov = dict(backbone.provenance)
    noise = prov.get("noise")
    if noise:  # the record keeps the four identifying fields of the checkpoint's noise block
        prov["noise"] = {k: noise.get(k) for k in ("kind", "rate", "seed", "recipe")}
    return {
        k: prov.get(k)
        for k in (
            "ref",
            "name",
            "library",
            "arch",
            "checkpoint_sha256",
            "noise",
            "manifest_sha256",
            "pretrain_seed",
            "key",
            "pretrained",
            "tag",
            "image_size",
            "data",
            "pretrain_key",
            "max_length",
            "pooling",
        )
        if k in prov or k not in ("max_length", "pooling")
    }


def _labels(split: Any) -> torch.Tensor:
    return torch.as_tensor(np.asarray(split.labels), dtype=torch.long)


def _check_labels(spec: Any, split_name: str, split: Any) -> None:
    labels = np.asarray(split.labels)
    if len(labels) == 0:
        raise UserError(
            f"task {spec.name!r} split {split_name!r} is empty; check its files under the data root"
        )
    if labels.min() < 0 or labels.max() >= spec.num_classes:
        raise UserError(
            f"task {spec.name!r} declares {spec.num_classes} classes but its {split_name} files hold "
            f"label {int(labels.max())}; fix num_classes in the task definition or the files"
        )


def _peak_mb(device: torch.device) -> float:
    """GPU: peak CUDA allocation during this fit; CPU: peak RSS of the process so far (KiB on Linux)."""
    if device.type == "cuda":
        return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def environment() -> dict[str, Any]:
    """Library versions, git sha of the nmlbench source (if a git checkout) and the SLURM job id."""
    return {**versions(), "git_sha": git_sha(), "slurm_job_id": slurm_job_id()}
