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


# Tests that need a service (SLURM, Chromium) skip with a reason where it is absent; CI sets
# NMLBENCH_REQUIRE_SERVICES=1 after starting the services, and then such a skip is a failure.
_SERVICE_MARKERS = ("slurm", "browser", "gpu")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    outcome = yield
    report = outcome.get_result()
    required = os.environ.get("NMLBENCH_REQUIRE_SERVICES") == "1"
    needs = [m for m in _SERVICE_MARKERS if m != "gpu" and item.get_closest_marker(m)]
    if required and needs and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"skipped although NMLBENCH_REQUIRE_SERVICES=1 ({', '.join(needs)}): {report.longrepr}"
