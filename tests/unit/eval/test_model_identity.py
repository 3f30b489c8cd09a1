"""Results are filed under what the model is: weights (checkpoints) or library, arch, tag, pretrained
and image size (library models) — never under a name two models share.

Regressions: `pretrained` was not part of a result's key (a random-init result was reused for a
pretrained request) and records did not say whether weights were pretrained; two checkpoint folders
with one name filed their results under one key.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from fake_tasks import FAST

from nmlbench.errors import UserError
from nmlbench.eval.run import EvalOptions, evaluate

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from ckpt_files import write_checkpoint  # noqa: E402


def _opts(*extra: str) -> EvalOptions:
    return EvalOptions(tasks=("toy",), overrides=(*FAST, *extra))


def _records(paths: list[Path]) -> list[dict]:
    return [json.loads(p.read_text()) for p in paths]


def test_image_size_and_pretrained_enter_the_key_and_the_record(fake_tasks, tmp_path: Path) -> None:
    a = evaluate(["tinyresnet"], ["lp"], None, [0], tmp_path, _opts())
    b = evaluate(["tinyresnet"], ["lp"], None, [0], tmp_path, _opts("image_size=24"))
    assert a[0].name != b[0].name  # not reused across resolutions
    (ra,), (rb,) = _records(a), _records(b)
    assert ra["model"]["pretrained"] is False and ra["model"]["image_size"] == 32
    assert rb["model"]["image_size"] == 24 and ra["model"]["key"] != rb["model"]["key"]
    with pytest.raises(UserError, match="pretrained=false"):  # the zoo model has no library weights
        evaluate(["tinyresnet"], ["lp"], None, [0], tmp_path / "x", EvalOptions(tasks=("toy",)))
    assert not (tmp_path / "x").exists()


def test_two_checkpoints_with_one_folder_name_never_share_a_result(fake_tasks, tmp_path: Path) -> None:
    one = write_checkpoint(tmp_path / "a" / "run", seed=0)
    two = write_checkpoint(tmp_path / "b" / "run", seed=1)
    paths = evaluate([str(one), str(two)], ["lp"], None, [0], tmp_path / "out", _opts())
    assert len({p.name for p in paths}) == 2
    recs = _records(paths)
    assert {r["model"]["checkpoint_sha256"] for r in recs} == {
        json.loads((d / "checkpoint.json").read_text())["weights_sha256"] for d in (one, two)
    }
