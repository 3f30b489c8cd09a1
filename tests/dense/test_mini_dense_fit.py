"""A detection fit and a segmentation fit of a few steps on the built-in mini dense task itself (its COCO
files, read by the reader `evaluate` uses), with the tiny backbone; the predictions score with COCOeval."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_model import SMALL, tiny_backbone

from nmlbench.dense.metrics import dense_metrics
from nmlbench.dense.tuners import DenseData
from nmlbench.tasks import get_task, load_split
from nmlbench.tuning import TUNERS


@pytest.mark.parametrize(
    ("method", "kind"), [("det-frozen", "detection"), ("det-ft", "instance_segmentation")]
)
def test_few_step_fit_on_the_mini_dense_task(method: str, kind: str) -> None:
    spec = dataclasses.replace(get_task("mini-dense"), type=kind)  # the same files as boxes only / + masks
    masks = kind == "instance_segmentation"
    train = load_split(spec, "train").subset(np.arange(8))
    test = load_split(get_task("mini-dense-sketch"), "test").subset(np.arange(6))  # OOD, train categories
    assert train.masks == masks and test.classes == train.classes
    tuner = TUNERS.get(method)(dataclasses.replace(SMALL, steps=2))
    fitted = tuner.fit(DenseData(tiny_backbone(), train, spec.num_classes, masks), seed=0)
    results = fitted.predict(test)
    assert {r["image_id"] for r in results} <= set(test.image_ids.tolist())
    assert all(("segmentation" in r) == masks for r in results)
    metrics = dense_metrics(test.coco, results, masks)
    assert set(metrics) == ({"box_ap", "box_ap50", "box_ap75"} | ({"mask_ap", "mask_ap50", "mask_ap75"}
                                                                  if masks else set()))
