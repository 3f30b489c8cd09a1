"""`nmlbench run` end to end on a tiny stand-in for the mini upstream set, and the study table."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from nmlbench.cli import main
from nmlbench.study import StudyOptions, run_study
from nmlbench.study.summary import study_table

sys.path.insert(0, str(Path(__file__).parents[1] / "unit" / "pretrain"))
import fakes  # noqa: E402

TINY_PRETRAIN = ("optim.epochs=1", "optim.batch_size=32", "optim.warmup_steps=0", "log_every_steps=1")
TINY_EVAL = ("lp.epochs=2", "nmtune.epochs=2", "nmtune.views=1")


def test_study_end_to_end_resumes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import nmlbench.mini
    from nmlbench.study import run as study_run

    up = fakes.make_upstream()
    monkeypatch.setattr(nmlbench.mini, "load_upstream", lambda data_dir=None, seed=0, progress=False: up)
    shown: list[list[str]] = []

    class Watched(study_run.StudyProgress):
        def close(self) -> None:
            shown.append(self.lines())
            super().close()

    monkeypatch.setattr(study_run, "StudyProgress", Watched)
    opts = StudyOptions(rates=(0.0, 0.3), methods=("lp", "nmtune"), tasks=("mini-objects", "mini-objects-sketch"),
                        workers=1, pretrain_overrides=TINY_PRETRAIN, eval_overrides=TINY_EVAL, root=str(tmp_path))
    records, table = run_study(opts)
    # the progress shows the stages: 2 runs x 4 steps reported by pretraining, then 2 jobs x 2 methods
    assert shown[0][0].startswith("pretraining") and "8/8 steps" in shown[0][0] and "done in" in shown[0][0]
    assert shown[0][1].startswith("evaluation") and "4/4 fits" in shown[0][1] and "done in" in shown[0][1]
    # 2 checkpoints x 2 methods x (1 ID + 1 OOD task) x 1 seed
    assert len(records) == 8 and all(p.is_file() for p in records)
    recs = [json.loads(p.read_text()) for p in records]
    assert {r["model"]["noise"]["rate"] for r in recs} == {0.0, 0.3}
    assert all(r["model"]["manifest_sha256"] for r in recs if r["model"]["noise"]["rate"] > 0)
    assert "ΔOOD @30%" in table and table.count("\n") >= 4
    before = {p: p.stat().st_mtime_ns for p in records}
    again, _ = run_study(opts)  # everything exists: nothing is re-run
    assert sorted(again) == sorted(records) and all(p.stat().st_mtime_ns == before[p] for p in again)


def _record(method: str, rate: float, task: str, domain: str, seed: int, top1: float) -> dict:
    return {"method": {"name": method}, "model": {"noise": {"rate": rate}, "pretrain_seed": 0},
            "seed": seed, "task": {"name": task, "domain": domain}, "metrics": {"top1": top1}}


def test_study_table_means_and_deltas(tmp_path: Path) -> None:
    rows = [("lp", 0.0, "a", "id", 0, 50.0), ("lp", 0.0, "b", "ood", 0, 30.0),
            ("lp", 0.0, "a", "id", 1, 52.0), ("lp", 0.0, "b", "ood", 1, 32.0),
            ("lp", 0.3, "a", "id", 0, 48.0), ("lp", 0.3, "b", "ood", 0, 20.0),
            ("lp", 0.3, "a", "id", 1, 48.0), ("lp", 0.3, "b", "ood", 1, 22.0)]
    paths = []
    for i, r in enumerate(rows):
        p = tmp_path / f"{i}.json"
        p.write_text(json.dumps(_record(*r)))
        paths.append(p)
    table = study_table(paths)
    line = next(row for row in table.splitlines() if row.startswith("lp"))
    cells = [c.strip() for c in line.split("|")]
    assert cells[1:] == ["51.00±1.41", "31.00±1.41", "48.00±0.00", "21.00±1.41", "-10.00"]
    assert "2 seed pair(s)" in table


@pytest.mark.parametrize("args,message", [
    (["--methods", "lp,nmtnue"], "did you mean 'nmtune'"),
    (["--suite", "minii"], "unknown suite"),
    (["--preset", "mini-resnett"], "unknown pretraining preset"),
    (["--noise", "110%"], "outside [0, 1)"),
    (["--seeds", "a"], "comma-separated integers"),
])
def test_run_bad_input(args: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["run", "--root", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not any(tmp_path.iterdir())


def test_run_wandb_missing_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                       tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb -> ImportError
    assert main(["run", "--root", str(tmp_path), "--wandb", "p"]) == 2
    err = capsys.readouterr().err
    assert "pip install wandb" in err and err.count("\n") == 1
    assert not any(tmp_path.iterdir())
