"""The `reference` preset is the reference protocol: each choice named, and re-derived from a tiny run.

Choices (METHODS.md §3): fresh views every step for NMTune and MLP, both views through the MLP as one
2B batch (one BatchNorm), a Kaiming-uniform LP head with zero bias, and the last epoch reported
with the best-val epoch recorded beside it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

import nmlbench.tuning.linear_probe as linear_probe
import nmlbench.tuning.nmtune as nmtune
from nmlbench.eval.config import PRESET_DIR, load_eval_config
from nmlbench.features import FeatureStore, FreshViews, split_ref
from nmlbench.models import load_backbone
from nmlbench.tuning import TUNERS, FeatureData
from nmlbench.tuning.base import top1

SMALL = ("nmtune.epochs=3", "nmtune.batch_size=8", "mlp.epochs=3", "mlp.batch_size=8", "lp.epochs=3")
TUNED = ("lp", "mlp", "nmtune", "nmtune_lora", "lora", "ft", "levi", "levi_lora")


class Split:
    def __init__(self, n: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.labels = rng.integers(0, 2, n)
        self.ids = np.array([f"s{seed}-{i}" for i in range(n)])
        self.images = [
            Image.fromarray((rng.integers(0, 80, (32, 32, 3)) + 150 * (y == 1)).astype(np.uint8))
            for y in self.labels
        ]

    def __getitem__(self, i: int):
        return self.images[i], int(self.labels[i])


def test_each_reference_choice_is_named_in_the_preset() -> None:
    raw = yaml.safe_load((PRESET_DIR / "reference.yaml").read_text(encoding="utf-8"))
    for method in ("mlp", "nmtune"):
        assert {k: raw[method][k] for k in ("views", "bn_views", "selection")} == {
            "views": 0,
            "bn_views": "joint",
            "selection": "last",
        }
    assert raw["lp"] == {"init": "kaiming_uniform", "selection": "last"}
    assert all(raw[m]["selection"] == "last" for m in TUNED)
    for method in ("lora", "nmtune_lora"):  # peft LoraConfig(r=8) as the reference calls it
        assert (raw[method]["rank"], raw[method]["alpha"], raw[method]["dropout"]) == (8, 8.0, 0.0)
    assert all(raw[m]["init"] == "kaiming_uniform" for m in ("lp", "lora", "nmtune_lora", "ft"))


@pytest.fixture
def setup():
    torch.manual_seed(0)
    cfg = load_eval_config("reference", overrides=SMALL)
    bb = load_backbone("tinyresnet", pretrained=False)
    store = FeatureStore(bb, cfg.features)
    train, val = Split(24, 0), Split(12, 1)
    val_feats = store.eval_features(val, split_ref("t", 1, "val", val))
    return cfg, bb, store, train, val, val_feats


def _capture(monkeypatch, module) -> dict:
    """Wrap `module.run_training`: the initial state and each epoch's val top-1 of the fit."""
    seen: dict = {"val": []}
    real = module.run_training

    def wrapped(modules, groups, n_train, sched, step, evaluate, gen, **kw):
        seen["init"] = {k: v.clone() for k, v in modules[0].state_dict().items()}

        def evaluate_and_log() -> float:
            seen["val"].append(evaluate())
            return seen["val"][-1]

        return real(modules, groups, n_train, sched, step, evaluate_and_log, gen, **kw)

    monkeypatch.setattr(module, "run_training", wrapped)
    return seen


@pytest.mark.parametrize("method", ["nmtune", "mlp"])
def test_fresh_views_joint_batchnorm_and_last_epoch(setup, monkeypatch, method: str) -> None:
    cfg, bb, store, train, val, val_feats = setup
    tuner = TUNERS.get(method)(getattr(cfg, method))
    views = store.view_source(train, split_ref("t", 1, "train", train), tuner.views_needed())
    assert isinstance(views, FreshViews)  # views: 0
    rows: list[tuple[int, int]] = []  # (rows embedded, backbone calls so far) per training step
    real_embed = nmtune.NMTuneNet.embed

    def embed(self, f):
        if self.training:
            rows.append((len(f), bb.calls))
        return real_embed(self, f)

    monkeypatch.setattr(nmtune.NMTuneNet, "embed", embed)
    seen = _capture(monkeypatch, nmtune)
    data = FeatureData(None, torch.as_tensor(train.labels), val_feats, torch.as_tensor(val.labels), 2, views)
    calls = bb.calls
    fitted = tuner.fit(data, seed=0)
    steps = 3 * math.ceil(24 / 8)
    # fresh views: one backbone call (both views of the batch) per step, every epoch
    assert [c for _, c in rows] == list(range(calls + 1, calls + steps + 1))
    # BatchNorm over both views together: one (2B, D) batch through the MLP per step
    assert [r for r, _ in rows] == [16] * steps
    # last epoch reported, best-val epoch recorded beside it
    vals = seen["val"]
    block = fitted.selection_block()
    assert block["reported"] == "last" and block["last_epoch"] == 3 and block["last_val_top1"] == vals[-1]
    assert block["best_epoch"] == int(np.argmax(vals)) + 1 and block["val_top1"] == max(vals)
    logits = torch.as_tensor(fitted.predict(val_feats))
    assert top1(logits, torch.as_tensor(val.labels)) == vals[-1]  # the predictor holds the last epoch


def _assert_kaiming_zero_bias(state: dict) -> None:
    w, b = state["weight"], state["bias"]
    d = w.shape[1]
    # kaiming_uniform_(a=0) draws from ±sqrt(6/D); nn.Linear's default from ±1/sqrt(D), bias too
    assert torch.all(b == 0) and w.abs().max() <= math.sqrt(6 / d) and w.abs().max() > 1.5 / math.sqrt(d)


def test_lora_head_is_kaiming_uniform_with_zero_bias(monkeypatch) -> None:
    import nmlbench.tuning.lora as lora

    cfg = load_eval_config("reference", overrides=("nmtune_lora.epochs=1", "nmtune_lora.batch_size=8"))
    seen: dict = {}
    real = lora.run_training

    def wrapped(modules, *args, **kw):
        seen["head"] = {k: v.clone() for k, v in modules[1].state_dict().items()}
        return real(modules, *args, **kw)

    monkeypatch.setattr(lora, "run_training", wrapped)
    bb = load_backbone("tinyvit", pretrained=False)
    from nmlbench.tuning import ImageData

    fitted = TUNERS.get("nmtune-lora")(cfg.nmtune_lora).fit(ImageData(bb, Split(16, 0), Split(8, 1), 2), 0)
    _assert_kaiming_zero_bias(seen["head"])
    assert fitted.selection.reported == "last"


def test_lp_head_is_kaiming_uniform_with_zero_bias(setup, monkeypatch) -> None:
    cfg, bb, store, train, val, val_feats = setup
    train_feats = store.eval_features(train, split_ref("t", 1, "train", train))
    seen = _capture(monkeypatch, linear_probe)
    data = FeatureData(train_feats, torch.as_tensor(train.labels), val_feats, torch.as_tensor(val.labels), 2)
    fitted = TUNERS.get("lp")(cfg.lp).fit(data, seed=0)
    _assert_kaiming_zero_bias(seen["init"])
    assert fitted.selection.reported == "last" and fitted.selection.last_epoch == 3
