"""Checks of a dense record's predictions: a COCO results JSON, re-scored with COCOeval.

The file is parsed as strict JSON (never unpickled), every detection's fields are checked against
the task's ground truth (image ids, category ids, finite boxes, RLE masks), and box/mask AP are
recomputed with `nmlbench.dense.metrics.dense_metrics`, the very function `evaluate` used.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

from nmlbench.leaderboard.board import task_ref
from nmlbench.leaderboard.records import CorruptFile, read_json

ENCODING = "nmlbench-coco-results-v1"  # bump if the canonical form below ever changes
_FIELDS = {"image_id", "category_id", "bbox", "score", "segmentation"}


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _detection_problem(d: Any, images: set[int], cats: set[int], masks: bool) -> str | None:
    """Why one detection is not a valid COCO result for this task, else None."""
    if not isinstance(d, dict) or not {"image_id", "category_id", "bbox", "score"} <= set(d):
        return "each entry needs image_id, category_id, bbox and score"
    if set(d) - _FIELDS:
        return f"unknown fields {sorted(set(d) - _FIELDS)}"
    if not isinstance(d["image_id"], int) or d["image_id"] not in images:
        return f"image_id {d['image_id']!r} is not an image of the test split"
    if not isinstance(d["category_id"], int) or d["category_id"] not in cats:
        return f"category_id {d['category_id']!r} is not a category of the task"
    box = d["bbox"]
    if not (isinstance(box, list) and len(box) == 4 and all(map(_finite, box)) and min(box[2:]) >= 0):
        return "bbox must be [x, y, w, h] with finite numbers and w, h >= 0"
    if not _finite(d["score"]):
        return "score must be a finite number"
    seg = d.get("segmentation")
    if masks:
        seg = seg if isinstance(seg, dict) else {}
        size = seg.get("size")
        if not (isinstance(seg.get("counts"), str) and isinstance(size, list)
                and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
            return "segmentation must be a COCO RLE {size: [h, w], counts: str}"
    return None


def read_results(path: Path, rel: str, reasons: list[str]) -> list[dict[str, Any]] | None:
    try:
        results = read_json(path, rel)
    except CorruptFile as e:
        reasons.append(str(e))
        return None
    if not isinstance(results, list):
        reasons.append(f"{rel}: a dense predictions file is a COCO results list (JSON array)")
        return None
    return results


def content_hash(task: str, results: list[dict[str, Any]]) -> str:
    """sha256 of (task, the detections in a canonical order): byte layout and entry order do not matter."""
    rows = sorted(json.dumps(d, sort_keys=True, separators=(",", ":")) for d in results)
    blob = json.dumps([ENCODING, task, rows], separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(blob.encode("ascii")).hexdigest()


def check_dense_predictions(
    rec: dict[str, Any], rel: str, path: Path, catalog: Any, findings: Any, tolerance: float
) -> None:
    """Valid detections on every test image of the task, and metrics that COCOeval reproduces."""
    from nmlbench.dense.metrics import dense_metrics

    reasons = findings.reasons
    results = read_results(path, rec["predictions"]["path"], reasons)
    if results is None:
        return
    gt = catalog.dense_truth(task_ref(rec["task"]))
    images, cats = set(gt.getImgIds()), set(gt.getCatIds())
    if rec["predictions"]["n"] != len(images):
        reasons.append(f"{rel}: predictions.n is {rec['predictions']['n']} but the task's test split "
                       f"has {len(images)} images; predict every test image")
        return
    masks = rec["task"].get("type") == "instance_segmentation"
    for i, d in enumerate(results):
        why = _detection_problem(d, images, cats, masks)
        if why:
            reasons.append(f"{rel}: detection {i} in {rec['predictions']['path']}: {why}")
            return
    metrics = dense_metrics(gt, results, masks)
    for name, value in metrics.items():
        claimed = rec["metrics"].get(name)
        if claimed is None or abs(value - claimed) > tolerance:
            reasons.append(f"{rel}: metrics.{name} claims {claimed} but COCOeval on the predictions "
                           f"gives {value:.4f}")
    flags = [] if results else ["no_detections"]
    if sorted(rec.get("flags") or []) != flags:
        claimed = sorted(rec.get("flags") or [])
        reasons.append(f"{rel}: flags claims {claimed} but the predictions give {flags}")
    # copies are judged like classification tables: many detections, the same content
    findings.content[rel] = (content_hash(rec["task"]["name"], results), flags, len(results))
