"""det-lora: peft LoRA adapters in the backbone's convolutions train with the detector; the pre-trained
base weights stay exactly as they were, and the adapters are all the backbone trains."""
from __future__ import annotations

import pytest
import torch
from test_tuners import _fit

from nmlbench.dense.recipe import DetLoRAConfig
from nmlbench.errors import UserError
from nmlbench.eval.run import expand_methods
from nmlbench.models import load_backbone
from nmlbench.tuning import TUNERS


def test_adapters_train_and_base_weights_stay() -> None:
    fitted, backbone = _fit("det-lora", masks=True, steps=3)
    body = fitted.detector.backbone.body.model
    trained = {n for n, p in body.named_parameters() if p.requires_grad}
    assert trained and all("lora_" in n for n in trained)
    # every base weight of the copy equals the pre-trained backbone's (peft keeps it as base_layer)
    base = {n.replace(".base_layer", ""): p for n, p in body.named_parameters() if "lora_" not in n}
    original = dict(backbone.encoder.model.named_parameters())
    assert base and all(torch.equal(p, original[n]) for n, p in base.items())
    # lora_B starts at zero: after training some adapter is non-zero, so the backbone's output moved
    assert any(p.abs().sum() > 0 for n, p in body.named_parameters() if "lora_B" in n)
    ft, _ = _fit("det-ft", masks=True, steps=1)
    frozen, _ = _fit("det-frozen", masks=True, steps=1)
    assert frozen.trainable_params < fitted.trainable_params < ft.trainable_params


def test_registered_and_in_all_for_dense_suites() -> None:
    tuner = TUNERS.get("det-lora")
    assert (tuner.Config, tuner.config_key, tuner.consumes) == (DetLoRAConfig, "det_lora", "dense")
    assert expand_methods(["all"], "mini-dense", ()) == ["det-frozen", "det-ft", "det-lora"]
    with pytest.raises(UserError, match="ViT"):
        tuner(DetLoRAConfig()).check_backbone(load_backbone("tinyvit", pretrained=False, seed=0))
