"""SLURM tests need a running cluster: skipped, with the reason, when `sinfo` does not answer.

CI starts one with `.ci/slurm-up.sh` and runs `pytest -m slurm tests/slurm` with NMLBENCH_REQUIRE_SERVICES=1,
which turns the skip into a failure so the tests cannot pass by not running.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


def _sinfo_answers() -> str | None:
    if not shutil.which("sinfo"):
        return "sinfo is not installed (start a cluster with `bash .ci/slurm-up.sh`)"
    try:
        res = subprocess.run(["sinfo", "-h"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 20 s"
    if res.returncode != 0:
        return f"sinfo failed: {res.stderr.strip()[:200]} (is SLURM_CONF exported?)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _sinfo_answers()
    if reason is None:
        return
    if os.environ.get("NMLBENCH_REQUIRE_SERVICES") == "1":
        raise pytest.UsageError(f"NMLBENCH_REQUIRE_SERVICES=1 but no SLURM cluster: {reason}")
    for item in items:
        if "slurm" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=f"no SLURM cluster: {reason}"))
