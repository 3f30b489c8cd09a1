"""The mini dense task: built once and cached, deterministic bytes, tight boxes, OOD re-mapping."""
from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pytest
from pycocotools.cocoeval import COCOeval

from nmlbench.dense import scenes
from nmlbench.errors import UserError
from nmlbench.mini.render import SHAPES
from nmlbench.tasks.readers_dense import load_dense_split


def _files(folder: Path) -> dict[str, bytes]:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in files}


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    sizes = {"train": 12, "test": 6}
    a = scenes.ensure_mini_dense(tmp_path / "a", "real", 3, sizes)
    b = scenes.ensure_mini_dense(tmp_path / "b", "real", 3, sizes)
    fa, fb = _files(a), _files(b)
    assert len(fa) == 12 + 6 + 2 and fa == fb
    c = scenes.ensure_mini_dense(tmp_path / "c", "real", 4, sizes)
    assert _files(c)["annotations/instances_train.json"] != fa["annotations/instances_train.json"]
    s1 = scenes.ensure_mini_dense(tmp_path / "a", "sketch", 3, {"test": 5})
    s2 = scenes.ensure_mini_dense(tmp_path / "b", "sketch", 3, {"test": 5})
    assert _files(s1) == _files(s2)


def test_render_split_masks_visible_parts() -> None:
    images, instances = scenes.render_split("real", 24, 0, "train")
    assert images.shape == (24, 64, 64, 3) and images.dtype == np.uint8
    for objs in instances:
        assert len(objs) <= scenes.MAX_OBJECTS
        union = np.zeros((64, 64), int)
        for o in objs:
            assert o["mask"].sum() >= scenes.MIN_VISIBLE_PX and 1 <= o["category_id"] <= len(SHAPES)
            union += o["mask"]
        assert union.max() <= 1  # visible parts never overlap: later objects hide earlier ones


def test_reader_builds_once_and_reads_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    train = load_dense_split("mini-dense", "train", tmp_path)
    test = load_dense_split("mini-dense", "test", tmp_path)
    assert (len(train), len(test)) == (512, 256) and train.masks
    assert train.classes == list(SHAPES) and train.cat_ids == list(range(1, 11))
    folder = scenes.dense_dir(tmp_path, "real", 0)
    stamp = {p: p.stat().st_mtime_ns for p in folder.rglob("*")}

    def boom(*a, **k):
        raise AssertionError("rebuilt")

    monkeypatch.setattr(scenes, "write_split", boom)
    again = load_dense_split("mini-dense", "train", tmp_path)
    assert again.annotation_sha256 == train.annotation_sha256
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*")} == stamp
    n_obj = 0
    for i in range(0, len(train), 16):
        image, t = train[i]
        assert image.size == (64, 64)
        for box, m in zip(t["boxes"], t["masks"], strict=True):
            ys, xs = np.nonzero(m.numpy())
            assert box.tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]  # tight
            n_obj += 1
        assert 1 <= int(t["labels"].min()) and int(t["labels"].max()) <= 10
    assert n_obj >= 32


def test_ood_sketch_in_train_categories(tmp_path: Path) -> None:
    sketch = load_dense_split("mini-dense-sketch", "test", tmp_path)
    assert len(sketch) == 256 and sketch.classes == list(SHAPES) and sketch.cat_ids == list(range(1, 11))
    assert sorted(sketch.coco.getCatIds()) == list(range(1, 11))
    image, t = sketch[0]
    assert image.size == (64, 64) and len(t["boxes"]) == len(t["masks"]) >= 1
    with pytest.raises(UserError, match=r"has splits \['test'\], not 'train'"):
        load_dense_split("mini-dense-sketch", "train", tmp_path)


def test_ground_truth_scores_perfectly(tmp_path: Path) -> None:
    """Our RLE (counts as str) and boxes go through COCOeval: the ground truth as results scores 100."""
    split = load_dense_split("mini-dense-sketch", "test", tmp_path).subset(np.arange(20))
    results = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0,
                "segmentation": a["segmentation"]} for a in split.coco.dataset["annotations"]]
    for iou in ("bbox", "segm"):
        with contextlib.redirect_stdout(io.StringIO()):
            ev = COCOeval(split.coco, split.coco.loadRes(results), iou)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        assert ev.stats[0] == pytest.approx(1.0)
