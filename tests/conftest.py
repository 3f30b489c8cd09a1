"""Test-wide settings: one torch thread, offline hubs, every artifact under pytest's tmp dirs."""
from __future__ import annotations

import os

import pytest

# Set before torch/datasets/huggingface_hub are imported by any test module.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _isolated_roots(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Outputs go to a per-test dir; the data cache (mini benchmark) is shared by the session."""
    monkeypatch.setenv("NMLBENCH_ROOT", str(tmp_path_factory.mktemp("out")))
    monkeypatch.setenv("NMLBENCH_DATA", str(_shared_data_dir(tmp_path_factory)))
    monkeypatch.setenv("HF_HOME", str(_shared_data_dir(tmp_path_factory) / "hf"))


_DATA_DIR: list = []


def _shared_data_dir(factory: pytest.TempPathFactory):
    if not _DATA_DIR:
        _DATA_DIR.append(factory.mktemp("data"))
    return _DATA_DIR[0]
