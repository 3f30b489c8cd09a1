"""argparse's own complaints follow the bad-input contract: one line naming the flag and `--help`."""
from __future__ import annotations

import pytest

CASES = {
    "noise-invalid-choice": (["noise", "--dataset", "mini", "--type", "symm", "--rate", "10%"],
                             ["invalid choice: 'symm'", "nmlbench noise --help"]),
    "pretrain-unknown-flag": (["pretrain", "--nosie", "10%"], ["unrecognized arguments: --nosie"]),
    "evaluate-flag-without-value": (["evaluate", "--model"], ["--model", "expected one argument"]),
    "unknown-verb": (["evaluat"], ["invalid choice: 'evaluat'", "nmlbench --help"]),
    "leaderboard-unknown-subverb": (["leaderboard", "publish"], ["invalid choice: 'publish'"]),
    "spectrum-bad-centring": (["spectrum", "--model", "m", "--task", "t", "--centring", "median"],
                              ["--centring", "invalid choice"]),
}


@pytest.mark.parametrize("argv, words", CASES.values(), ids=CASES.keys())
def test_argument_errors_are_one_line(reject, argv, words) -> None:
    reject(argv, expect=words)
