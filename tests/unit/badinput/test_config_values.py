"""Bad config values: NaN, infinities, out-of-range numbers and unknown names are one line, exit 2.

Values reach the configs four ways: a YAML file, a file it includes, `--set KEY=VALUE` and plain
command-line numbers (`--seeds`, `--workers`, ...). Every way goes through the ranges stated on the
config dataclasses' fields (nmlbench.config.bounded) or the same checks in nmlbench.cliargs.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

EVAL = ["evaluate", "--model", "tinyresnet", "--suite", "mini", "--method", "lp", "--set", "pretrained=false"]
SPECTRUM = ["spectrum", "--model", "tinyresnet", "--task", "mini-objects", "--random-init"]
NOISE = ["noise", "--dataset", "mini", "--type", "sym", "--rate", "10%"]


def _data() -> Path:
    return Path(os.environ["NMLBENCH_DATA"])


# (argv, words the one line must contain)
CASES = {
    # --set values: NaN, infinity however written, ranges, integers given as fractions
    "pretrain-lr-nan": (["pretrain", "--set", "optim.lr=nan"], ["optim: lr", "finite", "> 0"]),
    "pretrain-lr-yaml-inf": (["pretrain", "--set", "optim.lr=.inf"], ["lr", "finite"]),
    "pretrain-lr-1e400": (["pretrain", "--set", "optim.lr=1e400"], ["lr", "finite"]),
    "pretrain-epochs-nan": (["pretrain", "--set", "optim.epochs=.nan"], ["epochs", "integer >= 1"]),
    "pretrain-epochs-1e400": (["pretrain", "--set", "optim.epochs=1e400"], ["epochs", "integer"]),
    "pretrain-epochs-fraction": (["pretrain", "--set", "optim.epochs=2.5"], ["epochs", "integer"]),
    "pretrain-threads-negative": (["pretrain", "--set", "threads=-1"], ["threads", ">= 1"]),
    "pretrain-workers-negative": (["pretrain", "--set", "data.num_workers=-2"], ["num_workers", ">= 0"]),
    "pretrain-momentum-range": (["pretrain", "--set", "optim.momentum=1.5"], ["momentum", "[0, 1)"]),
    "pretrain-noise-rate-250%": (["pretrain", "--set", "noise.rate=250%"], ["noise: rate", "[0, 1)"]),
    "pretrain-seed-too-big": (["pretrain", "--set", "seed=4294967296"], ["seed", "4294967295"]),
    "pretrain-unknown-optimizer": (["pretrain", "--set", "optim.opt=adamww"],
                                   ["not a timm optimizer", "did you mean 'adamw'", "known:"]),
    "pretrain-name-null": (["pretrain", "--set", "name_suffix=null"], ["name_suffix", "string", "null"]),
    "pretrain-cli-seed-negative": (["pretrain", "--seed", "-1"], ["--seed", "[0, 4294967295]"]),
    "evaluate-lp-lr-nan": ([*EVAL, "--set", "lp.lr=nan"], ["lp: lr", "finite"]),
    "evaluate-dropout-range": ([*EVAL, "--set", "lora.dropout=1"], ["dropout", "[0, 1)"]),
    "evaluate-batch-size-inf": ([*EVAL, "--set", "features.batch_size=inf"], ["batch_size", "integer"]),
    "evaluate-tap-fraction": ([*EVAL, "--set", "levi.tap_fractions=0.5,nan"], ["tap_fractions[1]", "finite"]),
    "evaluate-unknown-solver": ([*EVAL, "--set", "lp.solver=sgd"], ["lp: solver", "'adamw', 'lbfgs'"]),
    "evaluate-seeds-negative": ([*EVAL, "--seeds", "0,-1"], ["--seeds", "[0, 4294967295]"]),
    "evaluate-threads-nan": ([*EVAL, "--threads", "nan"], ["--threads", "integer >= 1"]),
    "run-seeds-negative": (["run", "--seeds", "-1"], ["--seeds", "out of range"]),
    "run-workers-negative": (["run", "--workers", "-1"], ["--workers", ">= 0"]),
    "run-pretrain-seeds-text": (["run", "--pretrain-seeds", "a,b"], ["--pretrain-seeds", "integer"]),
    "run-pretrain-seeds-repeated": (["run", "--pretrain-seeds", "1,1"], ["--pretrain-seeds", "repeats a value"]),
    "run-seeds-repeated": (["run", "--modality", "dense", "--seeds", "0,0"], ["--seeds", "repeats a value"]),
    "evaluate-seeds-repeated": ([*EVAL, "--seeds", "2,1,2"], ["--seeds", "'2,1,2' repeats a value"]),
    "run-set-lr-nan": (["run", "--set", "optim.lr=nan"], ["lr", "finite"]),
    "run-eval-set-lr-nan": (["run", "--eval-set", "nmtune.lr=nan"], ["nmtune: lr", "finite"]),
    "spectrum-batch-size-zero": ([*SPECTRUM, "--batch-size", "0"], ["--batch-size", ">= 1"]),
    "spectrum-image-size-1e400": ([*SPECTRUM, "--image-size", "1e400"], ["--image-size", "integer"]),
    "noise-seed-negative": ([*NOISE, "--seed", "-3"], ["--seed", "out of range"]),
    "noise-set-seed-nan": ([*NOISE, "--set", "seed=nan"], ["seed", "integer"]),
}


@pytest.mark.parametrize("argv, expect", CASES.values(), ids=CASES.keys())
def test_bad_value(reject, argv, expect):
    reject(argv, expect=expect, watch=[_data()])


# YAML files: values written in the file, through `include:`, and broken includes
YAML_CASES = {
    "pretrain-yaml-nan": ("pretrain", "optim:\n  lr: .nan\n", {}, ["lr", "finite"]),
    "pretrain-yaml-1e400-int": ("pretrain", "optim:\n  batch_size: 1e400\n", {}, ["batch_size", "integer"]),
    "pretrain-include-negative": (
        "pretrain", "include: base.yaml\n", {"base.yaml": "optim:\n  weight_decay: -1\n"},
        ["weight_decay", ">= 0"]),
    "pretrain-include-broken-yaml": (
        "pretrain", "include: base.yaml\n", {"base.yaml": "optim: {lr: [1e-3\n"},
        ["base.yaml", "not valid yaml"]),
    "pretrain-include-not-a-name": ("pretrain", "include: 5\n", {}, ["include", "file name"]),
    "pretrain-include-list-null": ("pretrain", "include: [null]\n", {}, ["include", "file name"]),
    "evaluate-yaml-inf": ("evaluate", "nmtune:\n  epochs: .inf\n", {}, ["nmtune: epochs", "integer"]),
    "evaluate-include-nan": (
        "evaluate", "include: lp.yaml\n", {"lp.yaml": "lp:\n  weight_decay: .nan\n"},
        ["lp: weight_decay", "finite"]),
    "noise-recipe-seed-1e400": ("noise", "kind: symmetric_label\nrate: 0.1\nseed: 1e400\n", {},
                                ["seed", "integer"]),
    "task-num-classes-inf": ("tasks", "version: 1\nreader: npz\nnum_classes: .inf\n", {},
                             ["num_classes", "integer >= 2"]),
    "task-derived-seed-negative": (
        "tasks", "version: 1\nreader: npz\nnum_classes: 3\n"
        "derived_splits: {val: {from: train, fraction: 0.1, seed: -1}}\n", {},
        ["derived_splits.val.seed", "out of range"]),
    "task-derived-fraction-nan": (
        "tasks", "version: 1\nreader: npz\nnum_classes: 3\n"
        "derived_splits: {val: {from: train, fraction: .nan}}\n", {},
        ["derived_splits.val.fraction", "finite"]),
    "noise-recipe-rate-nan": ("noise", "kind: symmetric_label\nrate: .nan\n", {}, ["rate", "[0, 1)"]),
}


@pytest.mark.parametrize("verb, text, extra, expect", YAML_CASES.values(), ids=YAML_CASES.keys())
def test_bad_yaml_value(reject, tmp_path, verb, text, extra, expect):
    folder = tmp_path / "cfg"
    folder.mkdir()
    (folder / "c.yaml").write_text(text, encoding="utf-8")
    for name, content in extra.items():
        (folder / name).write_text(content, encoding="utf-8")
    argv = {
        "pretrain": ["pretrain", "--config", str(folder / "c.yaml")],
        "evaluate": [*EVAL, "--config", str(folder / "c.yaml")],
        "noise": ["noise", "--dataset", "mini", "--recipe", str(folder / "c.yaml")],
        "tasks": ["tasks", "show", str(folder / "c.yaml")],
    }[verb]
    reject(argv, expect=expect, watch=[folder, _data()])
