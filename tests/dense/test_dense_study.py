"""`nmlbench run` on a dense suite: noise -> pretrain -> every det-* method -> box / mask AP tables."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from cocotask import write_ood_task, write_task

from nmlbench.cli import main
from nmlbench.study import StudyOptions, run_study

sys.path.insert(0, str(Path(__file__).parents[1] / "unit" / "pretrain"))
import fakes  # noqa: E402

TINY_PRETRAIN = ("optim.epochs=1", "optim.batch_size=32", "optim.warmup_steps=0", "log_every_steps=1")
# every det method: 2 steps of 2 scenes at 64 px, a 16-channel FPN
TINY_DET = tuple(
    f"{m}.{kv}"
    for m in ("det_frozen", "det_ft", "det_lora")
    for kv in ("steps=2", "batch_size=2", "min_size=64", "max_size=64", "fpn_channels=16", "warmup_steps=1")
)


@pytest.fixture
def dense_suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import nmlbench.mini

    up = fakes.make_upstream()
    monkeypatch.setattr(nmlbench.mini, "load_upstream", lambda data_dir=None, seed=0, progress=False: up)
    task = write_task(tmp_path / "data")
    ood = write_ood_task(tmp_path / "data", task, "detection")
    suite = tmp_path / "data" / "shapes-suite.yaml"
    suite.write_text(f"version: 1\nid_tasks: [{task.name}]\nood_tasks: [{ood.name}]\n", encoding="utf-8")
    return suite


def test_dense_study_end_to_end_resumes(dense_suite: Path, tmp_path: Path) -> None:
    opts = StudyOptions(rates=(0.0, 0.3), suite=str(dense_suite), workers=1, pretrain_overrides=TINY_PRETRAIN,
                        eval_overrides=TINY_DET, root=str(tmp_path / "out"))
    records, table = run_study(opts)
    recs = [json.loads(p.read_text()) for p in records]
    # 2 checkpoints x the 3 dense methods ('all' on a dense suite) x (1 ID + 1 OOD task)
    assert len(recs) == 12
    assert {r["method"]["name"] for r in recs} == {"det-frozen", "det-ft", "det-lora"}
    assert {r["model"]["noise"]["rate"] for r in recs} == {0.0, 0.3}
    ood = [r for r in recs if r["task"]["domain"] == "ood"]
    assert all(set(r["metrics"]) == {"box_ap", "box_ap50", "box_ap75"} for r in ood)
    # one table per headline metric, AP never mixed with top-1; the mask table has no OOD task
    header, box, mask = table.split("\n\n")
    assert header.startswith("nmlbench study: suite")
    assert "(box AP, task average" in box and "ΔOOD @30%" in box and "det-lora" in box
    assert "(mask AP, task average" in mask and "top-1" not in table
    mask_rows = [line.split(" | ") for line in mask.splitlines()[2:5]]
    assert all(row[2].strip() == "-" and row[-1].strip() == "-" for row in mask_rows)  # OOD @0%, ΔOOD
    before = {p: p.stat().st_mtime_ns for p in records}
    # the same study through the CLI: everything exists, nothing is re-run; the summary lands under the root
    argv = ["run", "--suite", str(dense_suite), "--noise", "0,30%", "--workers", "1", "--root", opts.root]
    argv += [a for kv in TINY_PRETRAIN for a in ("--set", kv)]
    argv += [a for kv in TINY_DET for a in ("--eval-set", kv)]
    assert main(argv) == 0
    assert all(p.stat().st_mtime_ns == before[p] for p in records)
    [summary] = (tmp_path / "out" / "study").glob("*-summary.txt")
    assert summary.name.startswith("shapes-suite-")
    assert summary.read_text().split("\n\n")[1:] == [box, mask + "\n"]


def test_classification_method_on_a_dense_suite_is_refused_before_pretraining(
    dense_suite: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["run", "--suite", str(dense_suite), "--methods", "lp", "--root", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "method 'lp' is for classification tasks" in err and "det-frozen" in err
    assert not out.exists() or not any(out.rglob("*.safetensors"))


def test_a_vit_preset_on_a_dense_suite_is_refused_before_pretraining(
    dense_suite: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Detection needs a CNN pyramid: checked on a random init of the preset's architecture, so the
    study stops in one line instead of after pretraining three ViTs."""
    out = tmp_path / "out"
    assert main(["run", "--suite", str(dense_suite), "--preset", "mini-vit", "--root", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "is a ViT" in err and "use a CNN" in err
    assert not out.exists() or not [p for p in out.rglob("*") if p.is_file()]


def test_dense_methods_are_planned_as_separate_jobs(dense_suite: Path, tmp_path: Path) -> None:
    """A dense task's methods share nothing, so each is its own job: with 3 checkpoints x 3 methods on
    2 workers the last of 3 three-fit jobs no longer runs alone for three fits."""
    from nmlbench.eval import EvalOptions
    from nmlbench.eval.run import plan_jobs

    jobs = plan_jobs(["tinyresnet"], ["det-frozen", "det-ft"], str(dense_suite), [0, 1], str(tmp_path),
                     EvalOptions(overrides=("pretrained=false",)))
    assert [j.methods for j in jobs] == [("det-frozen",), ("det-ft",)]
    assert all(len(j.report_tasks) == 2 and j.seeds == (0, 1) for j in jobs)
