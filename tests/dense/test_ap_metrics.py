"""coco_ap / dense_metrics equal pycocotools' own COCOeval; coco_results writes valid COCO results."""

from __future__ import annotations

import contextlib
import copy
import io
import json

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from test_model import make_split

from nmlbench.dense.metrics import coco_ap, coco_results, dense_metrics


def _fixed_results(split) -> list[dict]:
    """Ground truth jittered (some dropped, some mislabelled) plus false positives: AP strictly in (0, 1)."""
    rng = np.random.default_rng(1)
    out = []
    for k, a in enumerate(split.coco.dataset["annotations"]):
        if k % 4 == 3:
            continue
        x, y, w, h = (v + rng.uniform(-2, 2) for v in a["bbox"])
        cat = a["category_id"] if k % 5 else split.cat_ids[1 - split.cat_ids.index(a["category_id"])]
        m = split.coco.annToMask(a)
        m = np.roll(m, int(rng.integers(-2, 3)), axis=1)
        rle = mask_utils.encode(np.asfortranarray(m))
        out.append(
            {
                "image_id": a["image_id"],
                "category_id": cat,
                "bbox": [x, y, w, h],
                "score": float(rng.uniform(0.2, 1)),
                "segmentation": {"size": rle["size"], "counts": rle["counts"].decode("ascii")},
            }
        )
    for image_id in split.image_ids[:3]:
        m = np.zeros((64, 64), np.uint8)
        m[5:20, 40:55] = 1
        rle = mask_utils.encode(np.asfortranarray(m))
        out.append(
            {
                "image_id": int(image_id),
                "category_id": split.cat_ids[0],
                "bbox": [40.0, 5.0, 15.0, 15.0],
                "score": 0.9,
                "segmentation": {"size": rle["size"], "counts": rle["counts"].decode("ascii")},
            }
        )
    return out


def _reference(gt: COCO, results: list[dict], iou_type: str) -> np.ndarray:
    dets = copy.deepcopy(results)
    if iou_type == "segm":  # as detectron2's evaluator: segm areas come from the masks
        for d in dets:
            d.pop("bbox")
    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(gt, gt.loadRes(dets), iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_coco_ap_equals_cocoeval(iou_type: str) -> None:
    split = make_split(12)
    results = _fixed_results(split)
    before = copy.deepcopy(results)
    got = coco_ap(split.coco, results, iou_type)
    stats = _reference(split.coco, results, iou_type)
    assert got == {k: round(float(stats[i]) * 100, 4) for i, k in enumerate(("ap", "ap50", "ap75"))}
    assert 0 < got["ap"] < got["ap50"] < 100
    assert results == before  # the caller's list is not modified


def test_empty_predictions_and_missing_ground_truth_read_zero() -> None:
    split = make_split(3)
    assert coco_ap(split.coco, [], "bbox") == {"ap": 0.0, "ap50": 0.0, "ap75": 0.0}
    assert dense_metrics(split.coco, [], masks=True) == {
        f"{t}_{k}": 0.0 for t in ("box", "mask") for k in ("ap", "ap50", "ap75")
    }
    empty = COCO()
    empty.dataset = {
        "images": split.coco.dataset["images"],
        "annotations": [],
        "categories": split.coco.dataset["categories"],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        empty.createIndex()
    res = [
        {"image_id": int(split.image_ids[0]), "category_id": 3, "bbox": [1.0, 1.0, 5.0, 5.0], "score": 0.5}
    ]
    assert coco_ap(empty, res, "bbox") == {"ap": 0.0, "ap50": 0.0, "ap75": 0.0}  # COCOeval's -1


def test_dense_metrics_keys() -> None:
    split = make_split(6)
    results = _fixed_results(split)
    assert list(dense_metrics(split.coco, results, masks=False)) == ["box_ap", "box_ap50", "box_ap75"]
    both = dense_metrics(split.coco, results, masks=True)
    assert list(both) == [f"{t}_{k}" for t in ("box", "mask") for k in ("ap", "ap50", "ap75")]
    assert both["box_ap"] == coco_ap(split.coco, results, "bbox")["ap"]


def test_coco_results_from_detector_outputs() -> None:
    masks = torch.zeros(2, 1, 64, 64)
    masks[0, 0, 10:20, 5:25] = 0.9
    masks[1, 0, 30:40, 30:40] = 0.4  # below the 0.5 threshold: an empty mask
    outputs = [
        {
            "boxes": torch.tensor([[5.0, 10.0, 25.0, 20.0], [30.0, 30.0, 40.123456, 40.0]]),
            "labels": torch.tensor([2, 1]),
            "scores": torch.tensor([0.3, 0.87654321]),
            "masks": masks,
        },
        {
            "boxes": torch.zeros(0, 4),
            "labels": torch.zeros(0, dtype=torch.long),
            "scores": torch.zeros(0),
            "masks": torch.zeros(0, 1, 64, 64),
        },
    ]
    res = coco_results(outputs, [11, 12], [3, 7])
    assert [r["category_id"] for r in res] == [3, 7]  # sorted by -score; label j -> cat_ids[j - 1]
    assert res[0]["bbox"] == [30.0, 30.0, 10.12, 10.0] and res[0]["score"] == 0.8765
    assert res[1]["bbox"] == [5.0, 10.0, 20.0, 10.0]
    assert all(isinstance(r["segmentation"]["counts"], str) for r in res)
    assert mask_utils.area(res[1]["segmentation"]) == 200 and mask_utils.area(res[0]["segmentation"]) == 0
    json.dumps(res)
    plain = coco_results([{k: v for k, v in outputs[0].items() if k != "masks"}], [11], [3, 7])
    assert all("segmentation" not in r for r in plain)
