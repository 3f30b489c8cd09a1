"""One (model, dense train task) job: load the COCO splits once, fit a detector, write AP records.

The dense counterpart of nmlbench/eval/job.py: the same record layout (model, method, task, seed,
selection, predictions, cost, env), with COCO box/mask AP as metrics and the COCO results JSON as
the predictions file, so `leaderboard submit` can recompute every AP with COCOeval.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import torch

from nmlbench import tracking
from nmlbench.errors import UserError
from nmlbench.eval.config import EvalConfig, method_config_dict
from nmlbench.io import atomic_path, sha256_file
from nmlbench.results.io import write_record

log = logging.getLogger(__name__)


class DenseTaskData:
    """The train task's train split and the test split of every reported task (DenseSplits)."""

    def __init__(self, job: Any, backbone: Any, api: Any) -> None:
        self.job, self.backbone = job, backbone
        self.train_spec, self.train, self.report = load_dense_task_data(job, api)

    @property
    def masks(self) -> bool:
        return self.train_spec.type == "instance_segmentation"


def load_dense_task_data(job: Any, api: Any) -> tuple[Any, Any, list[tuple[Any, Any]]]:
    """(train spec, train split, [(reported spec, its test split)]); every file read and checked.

    No val split: the field's protocol trains on train2017 and reports the final model on val2017
    (docs/dense.md), so nothing is selected on held-out data.
    """
    opts = job.options
    train_spec = api.get_task(job.train_task)
    train = api.load_split(train_spec, "train", data_root=opts.data_root, download=opts.download)
    report = []
    for ref in job.report_tasks:
        spec = api.get_task(ref)
        # a detection test of a segmentation-trained detector scores its box branch (COCO -> COCO-O)
        if spec.type not in (train_spec.type, "detection"):
            raise UserError(
                f"task {spec.name!r} is a {spec.type} task but its train_task {train_spec.name!r} is "
                f"{train_spec.type}, which predicts no masks; make it a detection task"
            )
        report.append((spec, api.load_split(spec, "test", data_root=opts.data_root, download=opts.download)))
    return train_spec, train, report


def write_dense_predictions(record_file: Path, results: list[dict[str, Any]]) -> dict[str, Any]:
    """predictions/<run_id>.json beside the record: the COCO results list COCOeval reads, as written
    by `json.dumps(sort_keys=True)` so the same predictions always give the same bytes."""
    rel = f"predictions/{record_file.stem}.json"
    dest = record_file.parent / rel
    with atomic_path(dest) as tmp:
        tmp.write_text(json.dumps(results, sort_keys=True, separators=(",", ":")) + "\n", encoding="utf-8")
    return {"path": rel, "sha256": sha256_file(dest)}


def dense_flags(results: list[dict[str, Any]]) -> list[str]:
    """'no_detections': the model predicted nothing on the whole split (AP 0 for a reason)."""
    return [] if results else ["no_detections"]


def fit_and_record_dense(
    tuner: Any, method: str, seed: int, data: DenseTaskData, paths: list[Path], cfg: EvalConfig
) -> list[Path]:
    """Fit one detector on the train task, then predict, score and write one record per reported task."""
    from nmlbench.dense.metrics import dense_metrics
    from nmlbench.dense.tuners import DenseData
    from nmlbench.eval.job import build_record

    start = time.perf_counter()
    device = data.backbone.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    state = fit_state_path(data.job.root, paths[0])
    inputs = DenseData(data.backbone, data.train, data.train_spec.num_classes, data.masks, str(device), state)
    with tracking.cell(f"{paths[0].parent.name}/{paths[0].stem}"):
        fitted = tuner.fit(inputs, seed)
    method_block = {
        "name": method,
        "config": method_config_dict(cfg, tuner.config_key, tuner.consumes),
        "trainable_params": fitted.trainable_params,
        "total_params": fitted.total_params,
    }
    for (spec, split), path in zip(data.report, paths, strict=True):
        masks = spec.type == "instance_segmentation"
        with torch.no_grad():
            results = fitted.predict(split)
        if not masks:  # a detection task is scored, and stored, as boxes only
            results = [{k: v for k, v in r.items() if k != "segmentation"} for r in results]
        predictions = write_dense_predictions(path, results)
        record = build_record(
            path,
            data,
            seed,
            method_block,
            spec,
            start,
            metrics=dense_metrics(split.coco, results, masks),
            flags=dense_flags(results),
            selection=fitted.selection_block(),
            predictions={**predictions, "n": len(split)},
        )
        write_record(path, record)
        log.info("%s %s %s s%d: box AP %.2f", data.backbone.name, method, spec.name, seed,
                 record["metrics"]["box_ap"])
    state.unlink(missing_ok=True)  # only now: a kill while records are written still resumes the fit
    return paths


def fit_state_path(root: str | Path, first_record: Path) -> Path:
    """Where a cell's detector fit keeps its resumable state (nmlbench.dense.resume) until it is recorded:
    named after the cell's first record, so the same command finds it again after a kill."""
    return Path(root) / "work" / "dense" / f"{first_record.stem}.pt"
