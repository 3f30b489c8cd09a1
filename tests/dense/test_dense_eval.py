"""Dense tasks through the whole pipeline: evaluate -> records + COCO results -> submit (AP recomputed)
-> leaderboard tables with AP apart from classification; and the bad inputs the issue names."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cocotask import write_annotations, write_ood_task, write_split, write_task
from harness import reject as _reject

from nmlbench.cli import main
from nmlbench.leaderboard.board import BoardConfig
from nmlbench.leaderboard.submit import submit
from nmlbench.results.io import read_record

# a CPU-sized detector: 64 px images kept at 64 px, 2 steps per fit
FAST = ["--set", "det_frozen.steps=2", "--set", "det_ft.steps=2", "--set", "det_frozen.batch_size=2",
        "--set", "det_ft.batch_size=2", "--set", "det_frozen.min_size=64", "--set", "det_frozen.max_size=64",
        "--set", "det_ft.min_size=64", "--set", "det_ft.max_size=64", "--set", "det_frozen.fpn_channels=16",
        "--set", "det_ft.fpn_channels=16", "--set", "det_frozen.warmup_steps=1",
        "--set", "det_ft.warmup_steps=1",
        "--set", "pretrained=false"]


def _evaluate(task: Path, root: Path, method: str = "det-frozen,det-ft") -> list[Path]:
    argv = ["evaluate", "--model", "tinyresnet", "--method", method, "--task", str(task), "--root", str(root),
            *FAST]
    assert main(argv) == 0
    return sorted((root / "results" / "custom").glob("*.json"))


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[Path]]:
    base = tmp_path_factory.mktemp("dense")
    task = write_task(base / "data")
    return task, base / "out", _evaluate(task, base / "out")


def test_evaluate_writes_ap_records_and_coco_results(evaluated) -> None:
    from pycocotools.coco import COCO

    from nmlbench.dense.metrics import dense_metrics

    task, root, records = evaluated
    assert len(records) == 2
    gt = COCO(str(task.parent / "annotations" / "instances_test.json"))
    for path in records:
        rec = read_record(path)
        assert rec["task"]["type"] == "instance_segmentation"
        assert rec["method"]["name"] in ("det-frozen", "det-ft")
        assert set(rec["metrics"]) == {"box_ap", "box_ap50", "box_ap75", "mask_ap", "mask_ap50", "mask_ap75"}
        assert rec["selection"] == {"split": "none", "reported": "last", "last_epoch": 2}
        assert rec["predictions"]["path"].endswith(".json") and rec["predictions"]["n"] == 4
        results = json.loads((path.parent / rec["predictions"]["path"]).read_text())
        assert isinstance(results, list)
        # the stored predictions score exactly what the record claims
        assert dense_metrics(gt, results, masks=True) == rec["metrics"]
    again = _evaluate(task, root)  # finished cells are skipped, records unchanged
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in records]


def _submission(root: Path, tmp_path: Path) -> Path:
    """The evaluated records staged as a submission folder."""
    sub = tmp_path / "sub"
    shutil.copytree(root / "results" / "custom", sub)
    (sub / "submission.json").write_text(
        '{"format": "nmlbench-submission", "schema_version": 1, "name": "dense", "author": "me"}')
    return sub


def test_submission_recomputes_ap_and_catches_edits(evaluated, tmp_path: Path) -> None:
    _, root, records = evaluated
    sub = _submission(root, tmp_path)
    board = BoardConfig(user_tasks=True)
    ok = submit(sub, tmp_path / "lb", board=board, accept=False)
    assert ok.accepted, ok.reasons
    rec_path = sub / records[0].name
    rec = json.loads(rec_path.read_text())
    rec["metrics"]["box_ap"] = round(min(100.0, rec["metrics"]["box_ap"] + 5.0), 4)
    rec_path.write_text(json.dumps(rec))
    bad = submit(sub, tmp_path / "lb", board=board, accept=False)
    assert not bad.accepted and any("metrics.box_ap claims" in r for r in bad.reasons), bad.reasons


def test_submission_refuses_detections_of_unknown_categories(evaluated, tmp_path: Path) -> None:
    _, root, records = evaluated
    sub = _submission(root, tmp_path)
    rec = json.loads(records[0].read_text())
    pred = sub / rec["predictions"]["path"]
    pred.write_text(json.dumps([{"image_id": 100, "category_id": 99, "bbox": [1, 1, 5, 5], "score": 0.9,
                                 "segmentation": {"size": [64, 64], "counts": "PPYo1"}}]))
    rec["predictions"]["sha256"] = __import__("hashlib").sha256(pred.read_bytes()).hexdigest()
    (sub / records[0].name).write_text(json.dumps(rec))
    bad = submit(sub, tmp_path / "lb", board=BoardConfig(user_tasks=True), accept=False)
    assert any("category_id 99" in r for r in bad.reasons), bad.reasons


def test_leaderboard_keeps_ap_apart_from_classification(evaluated, tmp_path: Path) -> None:
    from nmlbench.leaderboard.build import build

    _, root, _ = evaluated
    files = build(tmp_path / "lb", out_dir=tmp_path / "board", results=[root / "results" / "custom"])
    names = {p.name for p in files}
    assert {"leaderboard-box_ap.csv", "leaderboard-mask_ap.csv", "index.html"} <= names
    assert "leaderboard.csv" not in names  # no classification records: no classification table
    md = (tmp_path / "board" / "LEADERBOARD.md").read_text()
    assert "Dense transfer: box AP" in md and "Dense transfer: mask AP" in md
    page = (tmp_path / "board" / "index.html").read_text()
    assert 'id="dense-box_ap"' in page and 'id="board"' not in page


def test_classification_methods_are_refused_on_dense_tasks(evaluated, capsys) -> None:
    task, _, _ = evaluated
    line = _reject(["evaluate", "--model", "tinyresnet", "--method", "lp", "--task", str(task)], capsys,
                   expect=["lp", "det-frozen"])
    assert "instance_segmentation" in line
    _reject(["evaluate", "--model", "tinyresnet", "--method", "det-ft", "--task", "mini-objects"], capsys,
            expect=["det-ft", "classification"])


def _bad_task(tmp_path: Path, edit) -> Path:
    task = write_task(tmp_path / "data", n_train=2, n_test=2)
    data = json.loads((tmp_path / "data" / "annotations" / "instances_train.json").read_text())
    write_annotations(tmp_path / "data", "train", edit(data))
    return task


def _unknown_category(d):
    d["annotations"][0]["category_id"] = 5
    return d


def _box_outside(d):
    d["annotations"][1]["bbox"] = [50, 50, 30, 10]  # x + w = 80 > 64
    return d


def _short_polygon(d):
    d["annotations"][0]["segmentation"] = [[1, 1, 10, 1]]
    return d


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (_unknown_category, ["category", "5"]),
        (_box_outside, ["box", "outside"]),
        (lambda d: "", ["empty"]),
        (lambda d: {"images": [], "annotations": [], "categories": d["categories"]}, ["no images"]),
        (_short_polygon, ["polygon", "3 points"]),
    ],
    ids=["unknown-category", "box-outside-image", "empty-file", "no-images", "polygon-under-3-points"],
)
def test_bad_coco_files_are_one_line_and_write_nothing(tmp_path: Path, capsys, edit, words) -> None:
    task = _bad_task(tmp_path, edit)
    _reject(["evaluate", "--model", "tinyresnet", "--method", "det-frozen", "--task", str(task), *FAST],
            capsys, expect=words, watch=[tmp_path / "data"])


def test_a_second_split_file_is_checked_too(tmp_path: Path, capsys) -> None:
    task = write_task(tmp_path / "data", n_train=2, n_test=2)
    data = write_split(tmp_path / "data", "test", 2)
    data["annotations"][0]["category_id"] = 11
    write_annotations(tmp_path / "data", "test", data)
    _reject(["evaluate", "--model", "tinyresnet", "--method", "det-frozen", "--task", str(task), *FAST],
            capsys, expect=["category", "11"], watch=[tmp_path / "data"])


def test_dense_records_leave_classification_tables_unchanged(evaluated, tmp_path: Path) -> None:
    from lb_fakes import make_submission, study_models

    from nmlbench.leaderboard.build import build

    _, root, _ = evaluated
    cls = make_submission(tmp_path / "cls", models=study_models((0.0, 0.3), (0,)), methods=("lp",))
    alone = build(tmp_path / "lb", out_dir=tmp_path / "alone", results=[cls], plots=False)
    both = build(tmp_path / "lb", out_dir=tmp_path / "both", results=[cls, root / "results" / "custom"],
                 plots=False)
    csv = "leaderboard.csv"
    assert (tmp_path / "alone" / csv).read_bytes() == (tmp_path / "both" / csv).read_bytes()
    md_alone = (tmp_path / "alone" / "LEADERBOARD.md").read_text()
    md_both = (tmp_path / "both" / "LEADERBOARD.md").read_text()
    assert md_both.startswith(md_alone) and "## Dense transfer: box AP" in md_both[len(md_alone):]
    added = {p.name for p in both} - {p.name for p in alone}
    assert added == {"leaderboard-box_ap.csv", "leaderboard-mask_ap.csv"}


def test_a_detection_shift_scores_the_box_branch_of_a_mask_rcnn(tmp_path: Path, capsys) -> None:
    """COCO -> COCO-O: segmentation-trained heads, box-only OOD annotations: box AP, boxes stored."""
    task = write_task(tmp_path / "data", n_train=2, n_test=2)
    ood = write_ood_task(tmp_path / "data", task, "detection")
    argv = ["evaluate", "--model", "tinyresnet", "--method", "det-frozen", "--task", f"{task},{ood}",
            "--root", str(tmp_path / "out"), *FAST]
    assert main(argv) == 0
    recs = {read_record(p)["task"]["name"]: (p, read_record(p)) for p in (tmp_path / "out").rglob("*.json")
            if p.parent.name == "custom"}
    path, rec = recs["shift-detection"]
    assert set(rec["metrics"]) == {"box_ap", "box_ap50", "box_ap75"} and rec["task"]["type"] == "detection"
    stored = json.loads((path.parent / rec["predictions"]["path"]).read_text())
    assert all("segmentation" not in r for r in stored)
    assert "mask_ap" in recs["shapes"][1]["metrics"]
    boxes = write_task(tmp_path / "boxes", kind="detection", n_train=2, n_test=2)
    bad = write_ood_task(tmp_path / "boxes", boxes, "instance_segmentation")
    argv = ["evaluate", "--model", "tinyresnet", "--method", "det-frozen", "--task", f"{boxes},{bad}", *FAST]
    _reject(argv, capsys, expect=["predicts no masks"])
