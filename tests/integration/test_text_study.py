"""`nmlbench run --modality text` end to end at the smallest size: noise on text labels, the tiny text
encoder pretrained on them, text tasks evaluated, the same study table as the vision study."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from nmlbench.cli import main
from nmlbench.study import StudyOptions, run_study

TINY_PRETRAIN = ("optim.epochs=1", "optim.batch_size=128", "optim.warmup_steps=0", "log_every_steps=5")
TINY_EVAL = ("lp.epochs=2", "nmtune.epochs=2", "nmtune.views=1")


def test_text_study_end_to_end(tmp_path: Path) -> None:
    opts = StudyOptions(rates=(0.0, 0.3), preset="mini-text", suite="mini-text", methods=("lp", "nmtune"),
                        tasks=("mini-text-topics", "mini-text-topics-wire"), workers=1,
                        pretrain_overrides=TINY_PRETRAIN, eval_overrides=TINY_EVAL, root=str(tmp_path))
    records, table = run_study(opts)
    assert len(records) == 2 * 2 * 2  # 2 checkpoints x 2 methods x (1 ID + 1 OOD task)
    recs = [json.loads(p.read_text()) for p in records]
    assert {r["task"]["modality"] for r in recs} == {"text"}
    assert {r["model"]["library"] for r in recs} == {"transformers"}
    assert {r["model"]["noise"]["rate"] for r in recs} == {0.0, 0.3}
    noisy = [r for r in recs if r["model"]["noise"]["rate"] > 0]
    assert all(r["model"]["manifest_sha256"] and r["model"]["data"] == "mini-text" for r in noisy)
    assert "ΔOOD @30%" in table and "suite mini-text" in table
    # the checkpoints are text checkpoints evaluate can load by folder, like image ones
    ckpt = Path(recs[0]["model"]["ref"])
    assert json.loads((ckpt / "checkpoint.json").read_text())["library"] == "transformers"


def test_run_modality_text_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--modality text picks the text preset, suite and the three feature methods."""
    from nmlbench.study import cli as study_cli

    seen = {}
    def fake(opts):
        seen["opts"] = opts
        return [], "table"

    monkeypatch.setattr(study_cli, "run_study", fake)
    assert main(["run", "--modality", "text", "--root", str(tmp_path)]) == 0
    opts = seen["opts"]
    assert (opts.preset, opts.suite, opts.methods) == ("mini-text", "mini-text", ("lp", "mlp", "nmtune"))
    assert main(["run", "--modality", "sound", "--root", str(tmp_path)]) == 2
