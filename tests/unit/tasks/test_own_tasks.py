"""A researcher's own task and suite YAMLs: found from any folder, identified by what they are.

Regression tests for: jobs keyed by the file stem and looked up again as built-in names; suite entries
resolved from the current directory; `Suite.tasks` returning an OOD task's raw train_task; spectrum
records written beside the user's YAML; bad task input writing a config before failing.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from nmlbench.cli import main
from nmlbench.tasks import get_suite, get_task

FAST = ["--set", "pretrained=false", "--set", "lp.epochs=2", "--set", "features.batch_size=64"]


def _npz(colour_images, path: Path, labels: np.ndarray, classes=("x", "y", "z")) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, images=colour_images(labels), labels=labels, classes=np.array(classes))


def _yaml(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return path


def _project(colour_images, base: Path, shift_labels=(2, 1, 0, 2)) -> Path:
    """base/tasks/{train.yaml, shifted.yaml, *.npz} and base/suite.yaml naming them relatively."""
    _npz(colour_images, base / "tasks" / "train.npz", np.arange(30) % 3)
    _npz(colour_images, base / "tasks" / "test.npz", np.arange(12) % 3)
    _npz(colour_images, base / "tasks" / "shifted.npz", np.array(shift_labels), classes=("z", "y", "x"))
    _yaml(base / "tasks" / "train.yaml", {
        "version": 1, "reader": "npz", "num_classes": 3,
        "params": {"files": {"train": "train.npz", "test": "test.npz"}},
        "derived_splits": {"val": {"from": "train", "fraction": 0.2}}})
    _yaml(base / "tasks" / "shifted.yaml", {
        "version": 1, "reader": "npz", "num_classes": 3, "domain": "ood", "train_task": "train.yaml",
        "params": {"files": {"test": "shifted.npz"}}})
    return _yaml(base / "suite.yaml", {"version": 1, "id_tasks": ["tasks/train.yaml"],
                                       "ood_tasks": ["tasks/shifted.yaml"]})


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")} if root.exists() else set()


def test_suite_yaml_resolves_beside_itself_and_evaluates_from_any_folder(
    colour_images, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    suite = _project(colour_images, tmp_path / "proj")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    s = get_suite(str(suite))
    train, shifted = get_task(s.id_tasks[0]), get_task(s.ood_tasks[0])
    assert Path(s.id_tasks[0]) == (tmp_path / "proj" / "tasks" / "train.yaml").resolve()
    assert s.tasks == (train.ref, shifted.ref)  # the train task as a usable ref, not "train.yaml"
    root = tmp_path / "out"
    rc = main(["evaluate", "--model", "tinyresnet", "--method", "lp", "--suite", str(suite),
               "--root", str(root), *FAST])
    assert rc == 0
    records = [json.loads(p.read_text()) for p in (root / "results").glob("*/*.json")]
    assert sorted(r["task"]["name"] for r in records) == ["shifted", "train"]
    assert {r["suite"] for r in records} == {s.label} and s.label.startswith("suite-")
    by_name = {r["task"]["name"]: r for r in records}
    assert by_name["shifted"]["task"]["train_task"] == "train"
    assert by_name["train"]["task"]["key"] == train.key and by_name["train"]["task"]["origin"] == train.origin
    assert not _files(elsewhere)  # nothing lands in the current folder


def test_two_train_yaml_in_two_folders_never_share_a_result(colour_images, tmp_path: Path) -> None:
    a = _project(colour_images, tmp_path / "a")
    b = _project(colour_images, tmp_path / "b", shift_labels=(0, 0, 1, 1))
    ta, tb = get_task(tmp_path / "a/tasks/train.yaml"), get_task(tmp_path / "b/tasks/train.yaml")
    assert ta.name == tb.name and ta.key != tb.key and ta.label != tb.label
    root = tmp_path / "out"
    for suite in (a, b):
        assert main(["evaluate", "--model", "tinyresnet", "--method", "lp", "--task",
                     str(suite.parent / "tasks" / "train.yaml"), "--root", str(root), *FAST]) == 0
    keys = {json.loads(p.read_text())["task"]["key"] for p in (root / "results/custom").glob("*.json")}
    assert keys == {ta.key, tb.key}


def test_task_key_follows_what_changes_numbers(colour_images, tmp_path: Path) -> None:
    _project(colour_images, tmp_path)
    path = tmp_path / "tasks" / "train.yaml"
    before = get_task(path).key
    data = yaml.safe_load(path.read_text())
    _yaml(path, {**data, "description": "words only"})
    assert get_task(path).key == before  # descriptions change no number
    _yaml(path, {**data, "derived_splits": {"val": {"from": "train", "fraction": 0.3}}})
    assert get_task(path).key != before
    with pytest.raises(Exception, match="set by nmlbench"):
        get_task(_yaml(tmp_path / "forged.yaml", {**data, "key": "0" * 64}))


def test_spectrum_of_a_task_path_lands_under_the_root_once_per_model(
    colour_images, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _project(colour_images, tmp_path / "proj")
    task = tmp_path / "proj" / "tasks" / "train.yaml"
    root = tmp_path / "out"
    monkeypatch.setenv("NMLBENCH_ROOT", str(root))
    for model in ("tinyresnet", "tinyvit"):
        assert main(["spectrum", "--model", model, "--task", str(task), "--random-init"]) == 0
    made = sorted(p.relative_to(root).as_posix() for p in (root / "spectrum").rglob("*.json"))
    assert len(made) == 2 and made[0].split("/")[2] == made[1].split("/")[2]  # one task file per model
    assert {json.loads((root / m).read_text())["model"]["name"] for m in made} == {"tinyresnet", "tinyvit"}
    assert not list((tmp_path / "proj").rglob("*.json"))  # nothing beside the user's YAML


@pytest.mark.parametrize("case", ["labels_out_of_range", "missing_file", "no_train_task", "listed_twice",
                                  "wrong_list", "bad_name", "ambiguous_model", "unreachable_weights"])
def test_bad_own_task_input_is_one_line_exit_2_and_writes_nothing(
    colour_images, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    model, fast = "tinyresnet", FAST
    suite = _project(colour_images, tmp_path / "proj")
    tasks = tmp_path / "proj" / "tasks"
    data = yaml.safe_load(suite.read_text())
    if case == "labels_out_of_range":
        _npz(colour_images, tasks / "shifted.npz", np.array([0, 1, 7]), classes=("x", "y", "z"))
    elif case == "missing_file":
        (tasks / "test.npz").unlink()
    elif case == "no_train_task":
        shifted = yaml.safe_load((tasks / "shifted.yaml").read_text())
        _yaml(tasks / "shifted.yaml", {**shifted, "train_task": "absent.yaml"})
    elif case == "listed_twice":
        _yaml(suite, {**data, "id_tasks": ["tasks/train.yaml", "./tasks/../tasks/train.yaml"]})
    elif case == "wrong_list":
        _yaml(suite, {**data, "id_tasks": ["tasks/train.yaml", "tasks/shifted.yaml"], "ood_tasks": []})
    elif case == "bad_name":
        _yaml(suite, {**data, "name": "my suite!"})
    elif case == "ambiguous_model":
        model = "convnext_tiny"  # timm and open_clip both know it
    elif case == "unreachable_weights":
        model, fast = "resnet18", FAST[2:]  # pretrained weights asked for, none downloadable here
    root = tmp_path / "out"
    rc = main(["evaluate", "--model", model, "--method", "lp", "--suite", str(suite),
               "--root", str(root), *fast])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("nmlbench: error:") and "Traceback" not in err[0]
    assert not _files(root)


def test_a_task_yaml_that_is_not_utf8_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bin.yaml"
    bad.write_bytes(b"version: 1\nreader: npz\nnum_classes: 3\nparams: {files: {train: \xff.npz}}\n")
    root = tmp_path / "out"
    rc = main(["evaluate", "--model", "tinyresnet", "--method", "lp", "--task", str(bad), "--root", str(root),
               *FAST])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "not UTF-8" in err[0] and not _files(root)
