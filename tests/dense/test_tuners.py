"""det-frozen / det-ft: registered, seeded, frozen vs trained backbone, COCO results end to end."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from pycocotools import mask as mask_utils
from test_model import SMALL, make_split, tiny_backbone

import nmlbench.dense.tuners  # noqa: F401  (registers det-frozen and det-ft)
from nmlbench.dense.metrics import dense_metrics
from nmlbench.dense.recipe import DetFrozenConfig, DetFTConfig
from nmlbench.dense.tuners import DenseData, _hflip, lr_factor
from nmlbench.errors import UserError
from nmlbench.models.load import load_backbone
from nmlbench.tuning.base import TUNERS


def _fit(method: str, masks: bool = False, seed: int = 0, steps: int = 3, backbone=None):
    tuner_cls = TUNERS.get(method)
    cfg = tuner_cls.Config(**dict(dataclasses.asdict(SMALL), steps=steps))
    backbone = backbone or tiny_backbone()
    data = DenseData(backbone, make_split(6, masks), num_classes=2, masks=masks)
    return tuner_cls(cfg).fit(data, seed), backbone


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_registered_with_their_configs() -> None:
    frozen, ft = TUNERS.get("det-frozen"), TUNERS.get("det-ft")
    assert (frozen.Config, frozen.config_key, frozen.consumes) == (DetFrozenConfig, "det_frozen", "dense")
    assert (ft.Config, ft.config_key, ft.consumes) == (DetFTConfig, "det_ft", "dense")
    vit = load_backbone("tinyvit", pretrained=False, seed=0)
    with pytest.raises(UserError, match="ViT"):
        frozen(DetFrozenConfig()).check_backbone(vit)


def test_frozen_keeps_backbone_ft_trains_it() -> None:
    backbone = tiny_backbone()
    before = _state(backbone.encoder)
    torch.manual_seed(0)
    fresh = nmlbench.dense.tuners.build_detector(backbone, 2, False, SMALL, train_backbone=False)
    fpn0 = _state(fresh.backbone.fpn)
    frozen, _ = _fit("det-frozen", backbone=backbone)
    after = _state(frozen.detector.backbone.body.model)
    assert all(torch.equal(before[f"model.{k}"], v) for k, v in after.items())
    assert all(torch.equal(before[k], v) for k, v in _state(backbone.encoder).items())
    assert any(not torch.equal(fpn0[k], v) for k, v in _state(frozen.detector.backbone.fpn).items())
    assert frozen.trainable_params < frozen.total_params
    ft, _ = _fit("det-ft", backbone=backbone)
    tuned = _state(ft.detector.backbone.body.model)
    assert any(not torch.equal(before[f"model.{k}"], v) for k, v in tuned.items() if f"model.{k}" in before)
    assert all(torch.equal(before[k], v) for k, v in _state(backbone.encoder).items())  # a copy trained
    assert ft.trainable_params > frozen.trainable_params
    assert ft.selection_block() == {"split": "none", "reported": "last", "last_epoch": 3}


def test_same_seed_same_weights_and_predictions() -> None:
    a, _ = _fit("det-ft", seed=5)
    b, _ = _fit("det-ft", seed=5)
    sa, sb = _state(a.detector), _state(b.detector)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    test = make_split(4, False, seed=9)
    assert a.predict(test) == b.predict(test)
    c, _ = _fit("det-ft", seed=6)
    assert any(not torch.equal(sa[k], v) for k, v in _state(c.detector).items())


@pytest.mark.parametrize("method,masks", [("det-frozen", False), ("det-ft", True)])
def test_fit_predict_end_to_end(method: str, masks: bool) -> None:
    fitted, _ = _fit(method, masks=masks, steps=4)
    test = make_split(4, masks, seed=3)
    results = fitted.predict(test)
    assert results, "an untrained detector still scores boxes above 0.05"
    keys = {"image_id", "category_id", "bbox", "score"} | ({"segmentation"} if masks else set())
    for r in results:
        assert set(r) == keys
        assert r["image_id"] in set(test.image_ids.tolist()) and r["category_id"] in test.cat_ids
        x, y, w, h = r["bbox"]
        assert (
            w >= 0
            and h >= 0
            and 0 <= x <= 64
            and 0 <= y <= 64
            and r["bbox"] == [round(v, 2) for v in r["bbox"]]
        )
        if masks:
            assert isinstance(r["segmentation"]["counts"], str) and r["segmentation"]["size"] == [64, 64]
            mask_utils.decode(r["segmentation"])
    order = [(r["image_id"], -r["score"]) for r in results]
    assert order == sorted(order)
    json.dumps(results)
    metrics = dense_metrics(test.coco, results, masks)
    assert len(metrics) == (6 if masks else 3) and all(0 <= v <= 100 for v in metrics.values())


def test_schedule_warmup_then_steps() -> None:
    cfg = DetFrozenConfig(warmup_steps=10, warmup_factor=0.1, lr_steps=(20, 30), lr_gamma=0.1)
    f = lr_factor(cfg)
    assert f(0) == pytest.approx(0.1) and f(5) == pytest.approx(0.55) and f(10) == 1.0
    assert f(19) == 1.0 and f(20) == pytest.approx(0.1) and f(30) == pytest.approx(0.01)


def test_hflip_mirrors_boxes_and_masks() -> None:
    img = torch.zeros(3, 8, 10)
    masks = torch.zeros(1, 8, 10, dtype=torch.uint8)
    masks[0, 2:4, 1:3] = 1
    t = {"boxes": torch.tensor([[1.0, 2.0, 3.0, 4.0]]), "labels": torch.tensor([1]), "masks": masks}
    img2, t2 = _hflip(img, t)
    assert t2["boxes"].tolist() == [[7.0, 2.0, 9.0, 4.0]]
    assert t2["masks"][0, 2:4, 7:9].all() and t2["masks"].sum() == 4
