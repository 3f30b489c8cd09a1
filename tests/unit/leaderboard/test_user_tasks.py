"""User tasks (task YAMLs) on a private board; the public board keeps registered tasks only."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from lb_fakes import SUITES, FakeCatalog, Model, make_submission

from nmlbench.cli import main
from nmlbench.errors import UserError
from nmlbench.leaderboard.board import BOARD_FILE, load_board
from nmlbench.leaderboard.build import build
from nmlbench.leaderboard.catalog import NmlbenchCatalog
from nmlbench.leaderboard.submit import submit

PATHS = {f"/home/me/tasks/{t}.yaml": t for t in SUITES["fake"]}
CATALOG = FakeCatalog(user_paths=PATHS)


def _key(name: str, salt: str = "") -> str:
    return hashlib.sha256(f"definition of {name}{salt}".encode()).hexdigest()


def _as_user_suite(sub: Path, suite: str = "my-suite", salt: str = "") -> Path:
    """Rewrite the fake records as records of task YAMLs in a user suite."""
    for path in sub.glob("*.json"):
        if path.name == "submission.json":
            continue
        rec = json.loads(path.read_text())
        name = rec["task"]["name"]
        rec["suite"] = suite
        rec["task"].update(origin=f"/home/me/tasks/{name}.yaml", builtin=False, key=_key(name, salt))
        path.write_text(json.dumps(rec))
    return sub


def _private(lb: Path) -> Path:
    lb.mkdir(parents=True, exist_ok=True)
    (lb / BOARD_FILE).write_text("user_tasks: true\n")
    return lb


def test_public_board_refuses_user_tasks_and_says_how_to_run_a_private_one(tmp_path: Path) -> None:
    sub = _as_user_suite(make_submission(tmp_path / "s"))
    res = submit(sub, tmp_path / "lb", CATALOG)
    assert not res.accepted
    text = "\n".join(res.reasons)
    assert "is a user task (/home/me/tasks/fake-a.yaml)" in text
    assert "registered tasks only" in text and "user_tasks: true" in text and BOARD_FILE in text


def test_private_board_accepts_a_user_suite_and_builds(tmp_path: Path) -> None:
    lb = _private(tmp_path / "lb")
    sub = _as_user_suite(make_submission(tmp_path / "s", models=(Model(rate=0.0), Model(rate=0.2))))
    res = submit(sub, lb, CATALOG)
    assert res.accepted, res.reasons
    build(lb, plots=False)
    board = (lb / "LEADERBOARD.md").read_text()
    assert "symmetric_label 20%" in board and "fake-a-ood" in board


def test_private_board_checks_a_user_suite_for_completeness(tmp_path: Path) -> None:
    sub = _as_user_suite(make_submission(tmp_path / "s", models=(Model(rate=0.0), Model(rate=0.2))))
    gone = next(sub.glob("tinynet.fake_sym20_s0__lp__fake-b__*.json"))
    (sub / json.loads(gone.read_text())["predictions"]["path"]).unlink()
    gone.unlink()
    res = submit(sub, _private(tmp_path / "lb"), CATALOG)
    assert not res.accepted
    assert any("missing task(s) fake-b of suite 'my-suite'" in r for r in res.reasons), res.reasons


def test_one_task_name_two_definitions_is_refused(tmp_path: Path) -> None:
    lb = _private(tmp_path / "lb")
    assert submit(_as_user_suite(make_submission(tmp_path / "a", name="A")), lb, CATALOG).accepted
    other = _as_user_suite(make_submission(tmp_path / "b", name="B", models=(Model(rate=0.3),)), salt="v2")
    res = submit(other, lb, CATALOG)
    assert not res.accepted
    assert any("two different tasks share the name" in r and "on the board (a)" in r for r in res.reasons)


def test_user_task_records_need_origin_and_key(tmp_path: Path) -> None:
    sub = _as_user_suite(make_submission(tmp_path / "s"))
    path = next(sub.glob("*fake-a__*.json"))
    rec = json.loads(path.read_text())
    del rec["task"]["key"]
    path.write_text(json.dumps(rec))
    res = submit(sub, _private(tmp_path / "lb"), CATALOG)
    assert not res.accepted and any("needs task.origin" in r for r in res.reasons)


def test_board_config_is_strict(tmp_path: Path) -> None:
    assert load_board(tmp_path).user_tasks is False
    (tmp_path / BOARD_FILE).write_text("user_task: true\n")
    with pytest.raises((UserError, ValueError), match="user_task"):
        load_board(tmp_path)


def test_build_over_own_results_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No submission step: `leaderboard build --results DIR`; outputs under the output root."""
    monkeypatch.setenv("NMLBENCH_ROOT", str(tmp_path / "out"))
    results = _as_user_suite(make_submission(tmp_path / "results" / "my-suite"))
    assert main(["leaderboard", "build", "--results", str(results), "--no-plots"]) == 0
    assert "fake-a-ood" in (tmp_path / "out" / "board" / "LEADERBOARD.md").read_text()
    assert main(["leaderboard", "build", "--results", str(tmp_path / "nope"), "--no-plots"]) == 2


def _npz_task(folder: Path, name: str, rng: np.random.Generator, n: int, spec: dict) -> Path:
    data = folder / f"{name}-test.npz"
    np.savez(data, images=rng.integers(0, 255, (n, 8, 8, 3), dtype=np.uint8), labels=np.arange(n) % 3)
    path = folder / f"{name}.yaml"
    files = (
        {"test": str(data)}
        if spec.get("domain") == "ood"
        else {s: str(data) for s in ("train", "val", "test")}
    )
    path.write_text(
        yaml.safe_dump({"version": 1, "reader": "npz", "num_classes": 3, **spec, "params": {"files": files}})
    )
    return path


def test_catalog_reads_user_task_definition_and_labels_from_the_yaml(tmp_path: Path) -> None:
    """Ground truth for user tasks comes from their YAML path, as for built-ins from their name."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "suite"
    folder.mkdir()
    id_task = _npz_task(folder, "mine", rng, 9, {})
    ood_task = _npz_task(folder, "mine-shift", rng, 6, {"domain": "ood", "train_task": "mine.yaml"})
    catalog = NmlbenchCatalog(tmp_path / "data")
    info = catalog.task(str(ood_task))
    assert (info.name, info.domain, info.train_task, info.num_classes) == ("mine-shift", "ood", "mine", 3)
    ids, labels = catalog.truth(str(id_task))
    assert len(ids) == 9 and labels.tolist() == (np.arange(9) % 3).tolist()
    assert catalog.task(str(tmp_path / "missing.yaml")) is None
