"""nmlbench evaluate end to end on a fake task stage: records, cache reuse, resume, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest
from fake_tasks import FAST

from nmlbench.cli import main
from nmlbench.errors import UserError
from nmlbench.eval import EvalOptions, evaluate
from nmlbench.eval.metrics import compute_metrics
from nmlbench.models.load import Backbone
from nmlbench.tuning import ALL_METHODS

SCHEMA = Path(__file__).resolve().parents[3] / "leaderboard" / "schema" / "result.v1.json"


def _opts(*extra: str, **kw) -> EvalOptions:
    return EvalOptions(overrides=tuple(FAST) + extra, preset="reference", **kw)


@pytest.mark.parametrize("method", ALL_METHODS)
def test_every_method_beats_chance_and_writes_valid_records(fake_tasks, tmp_path: Path, method: str) -> None:
    paths = evaluate(["tinyresnet"], [method], "toys", [0], tmp_path, _opts())
    assert [p.parent.name for p in paths] == ["toys", "toys"]
    records = [json.loads(p.read_text()) for p in paths]
    id_rec, ood_rec = records
    assert id_rec["task"]["domain"] == "id" and ood_rec["task"] == {
        "name": "toy-ood",
        "version": 1,
        "domain": "ood",
        "train_task": "toy",
        "num_classes": 3,
        "key": ood_rec["task"]["key"],
        "origin": "builtin",
        "builtin": True,
    }
    assert id_rec["metrics"]["top1"] > 100 / 3 + 10  # chance is 33.3 %
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    for path, rec in zip(paths, records, strict=True):
        validator.validate(rec)
        preds = pd.read_parquet(path.parent / rec["predictions"]["path"])
        assert list(preds.columns) == ["sample_id", "label", "pred"] and len(preds) == 48
        assert compute_metrics(preds["label"].to_numpy(), preds["pred"].to_numpy()) == rec["metrics"]
        assert 0 < rec["method"]["trainable_params"] <= rec["method"]["total_params"]
        assert rec["selection"]["split"] == "val" and rec["cost"]["wall_time_s"] > 0


def test_black_box_methods_extract_features_once(fake_tasks, tmp_path: Path, monkeypatch) -> None:
    calls = []
    real = Backbone.features

    def counting(self, x):
        calls.append(len(x))
        return real(self, x)

    monkeypatch.setattr(Backbone, "features", counting)
    evaluate(["tinyresnet"], ["lp", "mlp", "nmtune"], "toys", [0, 1], tmp_path, _opts())
    # one pass per cached item: train/val/test/ood-test eval features + 2 augmented train views
    # per tuning seed (views are drawn from the seed; mlp and nmtune of one seed share them)
    assert sum(calls) == 96 + 48 + 48 + 48 + 2 * 2 * 96
    assert len(list((tmp_path / "feats").rglob("*.safetensors"))) == 4 + 2 * 2


def test_reference_protocol_runs_backbone_every_step(fake_tasks, tmp_path: Path, monkeypatch) -> None:
    calls = []
    real = Backbone.features
    monkeypatch.setattr(Backbone, "features", lambda self, x: calls.append(len(x)) or real(self, x))
    evaluate(
        ["tinyresnet"],
        ["nmtune"],
        None,
        [0],
        tmp_path,
        _opts("nmtune.views=0", "nmtune.epochs=2", tasks=("toy",)),
    )
    # val/test eval features + two fresh views per image per epoch (no eval features of train)
    assert sum(calls) == 48 + 48 + 2 * 2 * 96


def _counted_images(monkeypatch, method: str, root: Path, *overrides: str) -> int:
    calls = []
    real = Backbone.features
    monkeypatch.setattr(Backbone, "features", lambda self, x: calls.append(len(x)) or real(self, x))
    evaluate(["tinyresnet"], [method], None, [0], root, _opts(*overrides, tasks=("toy",)))
    return sum(calls)


def test_nmtune_at_one_view_extracts_what_lp_extracts(fake_tasks, tmp_path: Path, monkeypatch) -> None:
    lp = _counted_images(monkeypatch, "lp", tmp_path / "lp")
    assert lp == 96 + 48 + 48  # eval features of train, val, test
    for method in ("nmtune", "mlp"):
        k1 = _counted_images(monkeypatch, method, tmp_path / f"{method}1", f"{method}.views=1")
        assert k1 == lp  # one augmented view of train replaces the eval features of train
        k2 = _counted_images(monkeypatch, method, tmp_path / f"{method}2", f"{method}.views=2")
        assert k2 == lp + 96


def test_rerun_skips_finished_cells(fake_tasks, tmp_path: Path, monkeypatch) -> None:
    first = evaluate(["tinyresnet"], ["lp"], "toys", [0], tmp_path, _opts())
    stamps = [p.stat().st_mtime_ns for p in first]

    def refuse(*a, **k):
        raise AssertionError("a finished cell was recomputed")

    monkeypatch.setattr("nmlbench.eval.run.load_backbone", refuse)
    again = evaluate(["tinyresnet"], ["lp"], "toys", [0], tmp_path, _opts())
    assert again == first and [p.stat().st_mtime_ns for p in again] == stamps
    first[0].unlink()  # a missing record is recomputed, other cells stay
    monkeypatch.undo()
    from fake_tasks import install

    install(monkeypatch, {})
    assert evaluate(["tinyresnet"], ["lp"], "toys", [0], tmp_path, _opts())[0].is_file()


def test_same_seed_same_predictions(fake_tasks, tmp_path: Path) -> None:
    a = evaluate(["tinyresnet"], ["nmtune"], None, [3], tmp_path / "a", _opts(tasks=("toy",)))
    b = evaluate(["tinyresnet"], ["nmtune"], None, [3], tmp_path / "b", _opts(tasks=("toy",)))
    pa_, pb = (json.loads(p[0].read_text())["predictions"]["sha256"] for p in (a, b))
    assert pa_ == pb


def test_cli_runs_and_prints_table(fake_tasks, tmp_path: Path, capsys) -> None:
    argv = [
        "evaluate",
        "--model",
        "tinyresnet",
        "--method",
        "lp",
        "--suite",
        "toys",
        "--root",
        str(tmp_path),
        "--preset",
        "reference",
    ] + [a for s in FAST for a in ("--set", s)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "ID avg" in out and "OOD avg" in out and "lp" in out


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--method", "nmtunee", "--suite", "toys"], "did you mean 'nmtune'"),
        (["--method", "lp", "--suite", "toyz"], "unknown suite"),
        (["--method", "lp", "--task", "toy3"], "unknown task"),
        (["--method", "lp", "--suite", "toys", "--seeds", "a"], "--seeds"),
        (["--method", "lp", "--suite", "toys", "--set", "lp.epoch=3"], "did you mean 'epochs'"),
        (["--method", "lp", "--suite", "toys", "--preset", "tiny"], "unknown tuning preset"),
    ],
)
def test_bad_input_is_one_line_exit_2(fake_tasks, tmp_path: Path, capsys, argv, message) -> None:
    assert main(["evaluate", "--model", "tinyresnet", "--root", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_unknown_model_is_one_line(fake_tasks, tmp_path: Path, capsys) -> None:
    assert (
        main(
            [
                "evaluate",
                "--model",
                "tinyresnett",
                "--method",
                "lp",
                "--suite",
                "toys",
                "--root",
                str(tmp_path),
            ]
        )
        == 2
    )
    assert "did you mean" in capsys.readouterr().err


def test_label_count_mismatch_is_refused(fake_tasks, tmp_path: Path, monkeypatch) -> None:
    from fake_tasks import TASKS, FakeSpec

    monkeypatch.setitem(TASKS, "toy2", FakeSpec("toy2", num_classes=2))
    with pytest.raises(UserError, match="declares 2 classes"):
        evaluate(["tinyresnet"], ["lp"], None, [0], tmp_path, _opts(tasks=("toy2",)))


def test_image_method_without_images_is_refused() -> None:
    from nmlbench.eval.job import route
    from nmlbench.tuning import TUNERS
    from nmlbench.tuning.lora import FTConfig

    with pytest.raises(UserError, match="consumes images"):
        route(TUNERS.get("ft")(FTConfig()), None, have_images=False)


def test_help_has_example(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    out = capsys.readouterr().out
    assert (
        "examples:" in out
        and "nmlbench evaluate --model" in out
        and np.all([m in out for m in ("lp", "levi")])
    )


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the no-GPU message")
def test_cuda_without_gpu_is_one_line(fake_tasks, tmp_path: Path, capsys) -> None:
    argv = ["evaluate", "--model", "tinyresnet", "--method", "lp", "--suite", "toys", "--root", str(tmp_path)]
    assert main([*argv, "--set", "pretrained=false", "--set", "device=cuda"]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err
    assert main([*argv, "--set", "device=tpu"]) == 2
    assert "device must be" in capsys.readouterr().err


def test_grid_runs_through_the_submitit_launcher(fake_tasks, tmp_path: Path) -> None:
    paths = evaluate(["tinyresnet"], ["lp"], "toys", [0], tmp_path, _opts(launcher="debug"))
    assert len(paths) == 2 and all(p.is_file() for p in paths)
    assert (tmp_path / "jobs" / "evaluate").is_dir()  # submitit's folder: the job went through run_jobs


def test_class_mask_restricts_predictions() -> None:
    from nmlbench.eval.job import predict_labels

    logits = np.array([[5.0, 1.0, 2.0, 0.0], [0.0, 3.0, 1.0, 4.0]])
    assert predict_labels(logits, None).tolist() == [0, 3]
    assert predict_labels(logits, np.array([1, 2])).tolist() == [2, 1]


def test_paper_suite_plans_one_job_per_training_task(tmp_path: Path) -> None:
    pytest.importorskip("nmlbench.tasks")
    from nmlbench.eval.run import plan_jobs

    jobs = plan_jobs(["resnet50"], ["lp"], "paper", [0], str(tmp_path), EvalOptions())
    by_train = {j.train_task: j.report_tasks for j in jobs}
    assert len(jobs) == 16 and by_train["cifar10"] == ("cifar10",)
    assert by_train["domainnet-real"] == (
        "domainnet-real-sketch",
        "domainnet-real-painting",
        "domainnet-real-clipart",
    )
    assert by_train["domainnet-sketch"] == ("domainnet-sketch-real",)


def test_resolved_config_is_written_beside_records(fake_tasks, tmp_path: Path) -> None:
    import yaml

    evaluate(["tinyresnet"], ["lp"], "toys", [0], tmp_path, _opts("lp.lr=0.05"))
    [cfg_file] = list((tmp_path / "results" / "toys" / "configs").glob("*.yaml"))
    cfg = yaml.safe_load(cfg_file.read_text())
    assert cfg["lp"]["lr"] == 0.05 and cfg["nmtune"]["lambda_cov"] == 0.04


def test_config_file_edited_mid_grid_changes_nothing(fake_tasks, tmp_path: Path, monkeypatch) -> None:
    """The grid's settings are read once: editing --config (or a preset) while it runs neither changes
    the jobs still to come nor stops them (a key unknown to the new file once did)."""
    import nmlbench.eval.run as run

    config = tmp_path / "tuning.yaml"
    config.write_text("lp:\n  lr: 0.05\n")
    real = run.fit_and_record

    def edit_after_first_fit(*a, **k):
        out = real(*a, **k)
        config.write_text("lp:\n  lr: 0.5\n  not_a_setting: 1\n")
        return out

    monkeypatch.setattr(run, "fit_and_record", edit_after_first_fit)
    opts = _opts(tasks=("toy", "toy2"), config_path=str(config))
    paths = evaluate(["tinyresnet"], ["lp"], None, [0], tmp_path / "out", opts)
    records = [json.loads(p.read_text()) for p in paths]
    assert len(records) == 2 and {r["task"]["name"] for r in records} == {"toy", "toy2"}
    assert [r["method"]["config"]["lp"]["lr"] for r in records] == [0.05, 0.05]


def test_each_finished_cell_is_reported_to_the_fit_sink(fake_tasks, tmp_path: Path) -> None:
    """A study's evaluation progress counts (method, seed) cells, skipped finished ones included."""
    from nmlbench import tracking

    seen: list[tuple] = []
    tracking.set_fit_sink(lambda *msg: seen.append(msg))
    try:
        evaluate(["tinyresnet"], ["lp", "mlp"], "toys", [0, 1], tmp_path, _opts())
        evaluate(["tinyresnet"], ["lp", "mlp"], "toys", [0, 1], tmp_path, _opts())  # all skipped
    finally:
        tracking.set_fit_sink(None)
    assert [m[1:] for m in seen] == [(k, 4, 0) for k in (1, 2, 3, 4)] * 2
    assert {m[0] for m in seen} == {"tinyresnet | toy | lp,mlp"}
