"""read_coco on a tiny COCO-format set written here: targets exact, label mapping, subsets, bad input."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_utils

from nmlbench.dense.coco import BOX_TOLERANCE, encode_mask, read_coco
from nmlbench.errors import UserError
from nmlbench.tasks.readers_dense import load_dense_split

W, H = 20, 16
# sparse ids, names not in id order: labels follow ascending id (3 -> 1, 7 -> 2, 12 -> 3)
CATEGORIES = [{"id": 7, "name": "apple"}, {"id": 3, "name": "zebra"}, {"id": 12, "name": "kite"}]
POLY = [2.0, 3.0, 7.0, 3.0, 7.0, 8.0, 2.0, 8.0]


def _rle_mask() -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    m[4:12, 10:16] = 1
    m[4, 10] = 0  # not a rectangle: the mask must come back pixel for pixel
    return m


def _dataset() -> dict:
    crowd = mask_utils.frPyObjects([[0, 0, 4, 0, 4, 4, 0, 4]], H, W)[0]
    crowd_counts = mask_utils.decode(crowd)  # an uncompressed (list) RLE, as COCO's crowd entries are
    flat = crowd_counts.flatten(order="F")
    runs, cur, n = [], 0, 0
    for v in flat:
        if v != cur:
            runs.append(n)
            cur, n = v, 0
        n += 1
    runs.append(n)
    return {
        "images": [{"id": 11, "file_name": "a.png", "width": W, "height": H},
                   {"id": 5, "file_name": "b.png", "width": W, "height": H},
                   {"id": 8, "file_name": "c.png", "width": W, "height": H}],
        "annotations": [
            {"id": 1, "image_id": 11, "category_id": 7, "bbox": [2, 3, 5, 5], "area": 25.0, "iscrowd": 0,
             "segmentation": [POLY]},
            {"id": 2, "image_id": 11, "category_id": 3, "bbox": [10, 4, 6, 8], "area": 47.0, "iscrowd": 0,
             "segmentation": encode_mask(_rle_mask())},
            {"id": 3, "image_id": 11, "category_id": 12, "bbox": [0, 0, 4, 4], "area": 16.0, "iscrowd": 1,
             "segmentation": {"size": [H, W], "counts": runs}},
            {"id": 4, "image_id": 5, "category_id": 12, "bbox": [0.5, 1.0, 19.9, 15.0], "area": 9.0,
             "iscrowd": 0, "segmentation": [[0.5, 1, 20.4, 1, 20.4, 16, 0.5, 16]]},
        ],
        "categories": CATEGORIES,
    }


def _write(root: Path, data: dict | str | bytes, images: bool = True) -> tuple[Path, Path]:
    img_dir = root / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    if images:
        for i, name in enumerate(("a.png", "b.png", "c.png")):
            Image.fromarray(np.full((H, W, 3), 40 * i, np.uint8)).save(img_dir / name)
    ann = root / "instances.json"
    if isinstance(data, bytes):
        ann.write_bytes(data)
    else:
        ann.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return ann, img_dir


def test_targets_exact_and_sparse_ids_mapped(tmp_path: Path) -> None:
    ann, img = _write(tmp_path, _dataset())
    split = read_coco(ann, img, masks=True, task="tiny")
    assert split.classes == ["zebra", "apple", "kite"] and split.cat_ids == [3, 7, 12]
    assert split.image_ids.tolist() == [11, 5, 8] and split.ids.tolist() == ["11", "5", "8"]
    assert split.image_ids.dtype == np.int64 and len(split) == 3 and split.masks
    assert len(split.annotation_sha256) == 64
    image, t = split[0]
    assert image.size == (W, H) and image.mode == "RGB"
    # the crowd annotation (id 3) stays in the ground truth but not in the targets
    assert len(split.coco.getAnnIds(imgIds=[11])) == 3
    assert torch.equal(t["boxes"], torch.tensor([[2, 3, 7, 8], [10, 4, 16, 12]], dtype=torch.float32))
    assert t["labels"].tolist() == [2, 1] and t["labels"].dtype == torch.int64
    assert int(t["image_id"]) == 11 and t["image_id"].dtype == torch.int64
    assert t["masks"].dtype == torch.uint8 and t["masks"].shape == (2, H, W)
    poly = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects([POLY], H, W)))
    assert np.array_equal(t["masks"][0].numpy(), poly)
    assert np.array_equal(t["masks"][1].numpy(), _rle_mask())
    _, t2 = split[1]  # a box within BOX_TOLERANCE past the border is clipped onto it
    assert t2["boxes"].tolist() == [[0.5, 1.0, 20.0, 16.0]] and t2["labels"].tolist() == [3]
    _, t3 = split[2]  # an image without annotations
    assert t3["boxes"].shape == (0, 4) and t3["labels"].shape == (0,) and t3["masks"].shape == (0, H, W)


def test_boxes_only_and_defaults(tmp_path: Path) -> None:
    data = _dataset()
    for a in data["annotations"]:
        del a["segmentation"], a["area"], a["iscrowd"]  # a detection file without the optional fields
    ann, img = _write(tmp_path, data)
    split = read_coco(ann, img, masks=False, task="tiny")
    _, t = split[0]
    assert "masks" not in t and t["labels"].tolist() == [2, 1, 3]
    assert split.coco.anns[1]["iscrowd"] == 0 and split.coco.anns[1]["area"] == 25.0


def test_degenerate_box_kept_for_evaluation_only(tmp_path: Path) -> None:
    data = _dataset()
    data["annotations"][1]["bbox"] = [10, 4, 6, 0]  # as COCO train2017 has: height 0
    data["annotations"][0]["bbox"] = [2, 3, 0.5, 5]  # under a pixel wide
    split = read_coco(*_write(tmp_path, data), masks=True, task="tiny")
    _, t = split[0]
    assert t["boxes"].shape == (0, 4) and t["masks"].shape == (0, H, W)
    assert len(split.coco.getAnnIds(imgIds=[11])) == 3


def test_subset_restricts_ground_truth(tmp_path: Path) -> None:
    split = read_coco(*_write(tmp_path, _dataset()), masks=True, task="tiny")
    sub = split.subset(np.array([1, 0]))
    assert sub.image_ids.tolist() == [5, 11] and sub.ids.tolist() == ["5", "11"]
    assert sorted(sub.coco.getImgIds()) == [5, 11] and sorted(sub.coco.getAnnIds()) == [1, 2, 3, 4]
    one = split.subset([1])
    assert one.coco.getImgIds() == [5] and one.coco.getAnnIds() == [4] and one.classes == split.classes
    assert one[0][1]["labels"].tolist() == [3]


def test_to_label_space(tmp_path: Path) -> None:
    split = read_coco(*_write(tmp_path, _dataset()), masks=True, task="tiny")
    train = ["kite", "dog", "zebra", "apple"]
    out = split.to_label_space(train, [10, 20, 30, 40])
    assert out.classes == train and out.cat_ids == [10, 20, 30, 40]
    assert out.image_ids.tolist() == [11, 5, 8]
    assert out[0][1]["labels"].tolist() == [4, 3] and out[1][1]["labels"].tolist() == [1]
    assert {a["category_id"] for a in out.coco.dataset["annotations"]} == {10, 30, 40}
    assert sorted(out.coco.getCatIds()) == [10, 20, 30, 40]
    assert split.to_label_space(train).cat_ids == [1, 2, 3, 4]
    with pytest.raises(UserError, match=r"categories \['zebra'\] are not categories"):
        split.to_label_space(["kite", "apple"])


def _bad(**change):
    def make() -> dict:
        data = _dataset()
        for path, value in change.items():
            *keys, last = path.split("__")
            node = data
            for k in keys:
                node = node[int(k)] if k.isdigit() else node[k]
            node[int(last) if last.isdigit() else last] = value
        return data
    return make


def _dup_image() -> dict:
    data = _dataset()
    data["images"].append(copy.deepcopy(data["images"][0]))
    return data


def _dup_ann() -> dict:
    data = _dataset()
    data["annotations"][1]["id"] = 1
    return data


BAD = {
    "unknown category": (_bad(annotations__0__category_id=99), r"category_id 99 is not in categories"),
    "box outside": (_bad(annotations__1__bbox=[10, 4, W - 10 + BOX_TOLERANCE + 0.5, 8]),
                    r"outside its 20x16"),
    "box left of image": (_bad(annotations__1__bbox=[-2, 4, 6, 8]), r"outside its 20x16"),
    "negative width box": (_bad(annotations__1__bbox=[10, 4, -1, 8]), r"negative width or height"),
    "no images": (_bad(images=[]), r"has no images"),
    "no annotations": (_bad(annotations=[]), r"has no annotations"),
    "polygon 2 points": (_bad(annotations__0__segmentation=[[1, 1, 5, 5]]), r">= 3 points"),
    "polygon odd": (_bad(annotations__0__segmentation=[[1, 1, 5, 5, 3, 3, 2]]), r">= 3 points"),
    "image id unknown": (_bad(annotations__0__image_id=77), r"image_id 77 is not in images"),
    "duplicate image id": (_dup_image, r"image id 11 appears twice"),
    "duplicate annotation id": (_dup_ann, r"annotation id 1 appears twice"),
    "no segmentation": (_bad(annotations__1__segmentation=[]),
                        r"no segmentation but the task asks for masks"),
    "rle size": (_bad(annotations__1__segmentation={"size": [3, 3], "counts": "abc"}), r"RLE segmentation"),
    "not a dict": (lambda: [1, 2], r"expected a JSON object"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line(tmp_path: Path, case: str) -> None:
    make, pattern = BAD[case]
    ann, img = _write(tmp_path, make())
    with pytest.raises(UserError, match=pattern) as e:
        read_coco(ann, img, masks=True, task="tiny")
    assert "\n" not in str(e.value) and str(ann) in str(e.value)


@pytest.mark.parametrize("content,pattern", [(b"", r"empty \(0 bytes\)"), (b"{not json", r"instances.json"),
                                             (b"\xff\xfe", r"instances.json")])
def test_bad_file_is_one_line(tmp_path: Path, content: bytes, pattern: str) -> None:
    ann, img = _write(tmp_path, content)
    with pytest.raises(UserError, match=pattern) as e:
        read_coco(ann, img, masks=False, task="tiny")
    assert "\n" not in str(e.value)


def test_missing_files(tmp_path: Path) -> None:
    ann, img = _write(tmp_path, _dataset())
    (img / "b.png").unlink()
    with pytest.raises(UserError, match=r"image 5: file .*b.png does not exist") as e:
        read_coco(ann, img, masks=True, task="tiny")
    assert "\n" not in str(e.value)
    with pytest.raises(UserError, match=r"no annotation file at"):
        read_coco(tmp_path / "nope.json", img, masks=True, task="tiny")
    with pytest.raises(UserError, match=r"image folder .* does not exist"):
        read_coco(ann, tmp_path / "nowhere", masks=True, task="tiny")


def _task(tmp_path: Path, **extra: str) -> Path:
    lines = ["version: 1", "type: instance_segmentation", "reader: coco", "num_classes: 3",
             "splits: [train, test]", "params:", "  images: data/{split}", "  annotations: data/{split}.json",
             "  split_map: {train: tr, test: te}"] + [f"{k}: {v}" for k, v in extra.items()]
    path = tmp_path / "tiny.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_coco_reader_task(tmp_path: Path) -> None:
    task = _task(tmp_path)
    with pytest.raises(UserError, match=r"no data at .*data/te.json"):
        load_dense_split(str(task), "test", tmp_path / "root")
    ann, img = _write(tmp_path / "data" / "x", _dataset())
    ann.rename(tmp_path / "data" / "te.json")
    img.rename(tmp_path / "data" / "te")
    split = load_dense_split(str(task), "test", tmp_path / "root")
    assert len(split) == 3 and split.classes == ["zebra", "apple", "kite"]
    with pytest.raises(UserError, match=r"has splits \['train', 'test'\], not 'val'"):
        load_dense_split(str(task), "val", tmp_path / "root")
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    (tmp_path / "data").rename(wrong / "data")
    bad = _task(wrong)
    bad.write_text(bad.read_text().replace("num_classes: 3", "num_classes: 4"))
    with pytest.raises(UserError, match=r"says 4 categories but split 'test' has 3"):
        load_dense_split(str(bad), "test", tmp_path / "root")
