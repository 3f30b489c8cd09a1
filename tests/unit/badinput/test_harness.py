"""The harness itself must be able to fail: a good command and a writing command are caught."""
from __future__ import annotations

import pytest


def test_passes_on_a_real_bad_input(reject):
    reject(["noise", "--dataset", "mini", "--type", "sym", "--rate", "250%"], expect="rate")


def test_fails_when_the_exit_code_is_not_2(reject):
    with pytest.raises(AssertionError, match="exit 0"):
        reject(["tasks", "list"], expect="anything")
