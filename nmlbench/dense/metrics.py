"""COCO results from torchvision detector outputs, and COCO AP/AP50/AP75 via pycocotools' COCOeval.

Results follow the COCO results format (https://cocodataset.org/#format-results): one dict per
detection with image_id, category_id, bbox [x, y, w, h] and score, plus an RLE segmentation (counts a
str, so the list is plain JSON) for instance segmentation.
"""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

MASK_THRESHOLD = 0.5  # Mask R-CNN's soft masks -> binary, as torchvision's and detectron2's evaluators


def coco_results(
    outputs: Sequence[dict[str, torch.Tensor]], image_ids: Sequence[int], cat_ids: Sequence[int]
) -> list[dict[str, Any]]:
    """torchvision eval outputs (boxes xyxy, labels 1..K, scores[, masks (N,1,H,W)]) -> COCO results.

    Label j maps to category id cat_ids[j - 1]; the list is sorted by (image_id, -score).
    """
    results: list[dict[str, Any]] = []
    for out, image_id in zip(outputs, image_ids, strict=True):
        boxes = out["boxes"].detach().cpu().double().numpy()
        labels = out["labels"].cpu().numpy()
        scores = out["scores"].detach().cpu().double().numpy()
        rles = _rles(out["masks"]) if "masks" in out else None
        for k in range(len(scores)):
            x1, y1, x2, y2 = boxes[k]
            r = {
                "image_id": int(image_id),
                "category_id": int(cat_ids[int(labels[k]) - 1]),
                "bbox": [
                    round(float(x1), 2),
                    round(float(y1), 2),
                    round(float(x2 - x1), 2),
                    round(float(y2 - y1), 2),
                ],
                "score": round(float(scores[k]), 4),
            }
            if rles is not None:
                r["segmentation"] = rles[k]
            results.append(r)
    results.sort(key=lambda r: (r["image_id"], -r["score"]))
    return results


def _rles(masks: torch.Tensor) -> list[dict[str, Any]]:
    """(N, 1, H, W) mask probabilities -> RLEs with str counts (JSON-serialisable)."""
    binary = (masks[:, 0] > MASK_THRESHOLD).cpu().numpy().astype(np.uint8)  # (N, H, W)
    if len(binary) == 0:
        return []
    rles = mask_utils.encode(np.asfortranarray(binary.transpose(1, 2, 0)))
    return [{"size": [int(s) for s in r["size"]], "counts": r["counts"].decode("ascii")} for r in rles]


def coco_ap(gt: COCO, results: list[dict[str, Any]], iou_type: str) -> dict[str, float]:
    """{"ap", "ap50", "ap75"} in percent from COCOeval (iou_type "bbox" or "segm"); no results -> zeros.

    COCOeval's -1 (no ground truth to score against) also reads 0.0, so records stay numeric.
    """
    if not results:  # loadRes cannot load an empty list
        return {"ap": 0.0, "ap50": 0.0, "ap75": 0.0}
    dets = copy.deepcopy(results)  # loadRes writes ids/areas into the dicts it loads
    if iou_type == "segm":
        # without a bbox loadRes takes each area from its mask, as COCO's segm evaluation should
        for d in dets:
            d.pop("bbox", None)
    with contextlib.redirect_stdout(io.StringIO()):  # loadRes/evaluate/summarize print progress
        ev = COCOeval(gt, gt.loadRes(dets), iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {k: round(max(float(ev.stats[i]), 0.0) * 100, 4) for i, k in enumerate(("ap", "ap50", "ap75"))}


def dense_metrics(gt: COCO, results: list[dict[str, Any]], masks: bool) -> dict[str, float]:
    """{"box_ap", "box_ap50", "box_ap75"} (+ "mask_ap", ... when masks), each in percent."""
    out = {f"box_{k}": v for k, v in coco_ap(gt, results, "bbox").items()}
    if masks:
        out.update({f"mask_{k}": v for k, v in coco_ap(gt, results, "segm").items()})
    return out
