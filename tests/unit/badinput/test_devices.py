"""A device that cannot be used is one line before any job starts (no progress bar, nothing written)."""
from __future__ import annotations

import pytest
import torch

EVAL = ["evaluate", "--model", "tinyresnet", "--set", "pretrained=false", "--suite", "mini",
        "--task", "mini-colours", "--method", "lp"]

CASES = {
    "device-cuda-abc": ("cuda:abc", ["device must be auto, cpu, cuda or cuda:N"]),
    "device-gpu": ("gpu", ["device must be auto, cpu, cuda or cuda:N"]),
    "device-cpu-0": ("cpu:0", ["device must be auto, cpu, cuda or cuda:N"]),
}


@pytest.mark.parametrize("device, words", CASES.values(), ids=CASES.keys())
def test_a_device_name_that_is_not_one(reject, device, words) -> None:
    reject([*EVAL, "--set", f"device={device}"], expect=words)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible")
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_an_absent_gpu_is_refused_before_the_first_job(reject, device) -> None:
    reject([*EVAL, "--set", f"device={device}"], expect=["no CUDA GPU is visible", "device=cpu"])
