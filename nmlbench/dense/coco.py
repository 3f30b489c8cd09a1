"""COCO-format dense splits: an instances json checked in full, then served as (image, target) pairs.

Every problem of an annotation file is found before anything is returned, and each is one UserError
naming the file, the offending entry and the fix, so a bad file costs nothing downstream. Ground truth
stays a `pycocotools.coco.COCO` (what COCOeval scores against); training targets leave out crowd and
degenerate boxes, as torchvision's detection references do.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from nmlbench.errors import UserError
from nmlbench.readers.base import decoding

# COCO's own files overshoot their images by rounding (boxes end up to ~0.5 px past the border), so a
# box may leave its image by this many pixels before it is an error.
BOX_TOLERANCE = 1.0
_FIX = "fix or remove the entry"


def _make_coco(dataset: dict[str, Any]) -> COCO:
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):  # createIndex prints progress lines
        coco.createIndex()
    return coco


class DenseSplit:
    """One split of a dense task. split[i] -> (PIL RGB image, target dict)."""

    def __init__(self, coco: COCO, images: Path, *, masks: bool, annotation_sha256: str, task: str,
                 image_ids: Sequence[int] | None = None) -> None:
        self.coco = coco  # ground truth of exactly this split's images (COCOeval's gt)
        self.image_dir = Path(images)
        self.masks = bool(masks)
        self.annotation_sha256 = annotation_sha256
        self.task = task
        cats = sorted(coco.dataset["categories"], key=lambda c: int(c["id"]))
        self.cat_ids = [int(c["id"]) for c in cats]  # label j (detector label j + 1) -> COCO category id
        self.classes = [str(c["name"]) for c in cats]
        self._label = {cid: j + 1 for j, cid in enumerate(self.cat_ids)}
        order = [img["id"] for img in coco.dataset["images"]] if image_ids is None else image_ids
        self.image_ids = np.asarray(order, dtype=np.int64)
        self.ids = np.array([str(i) for i in self.image_ids])

    def __len__(self) -> int:
        return len(self.image_ids)

    def __getitem__(self, i: int) -> tuple[Image.Image, dict[str, torch.Tensor]]:
        image_id = int(self.image_ids[i])
        info = self.coco.imgs[image_id]
        path = self.image_dir / info["file_name"]
        with decoding(f"image {path}", "replace the file or remove its entry from the annotations"):
            with Image.open(path) as img:
                image = img.convert("RGB")
        # Crowd regions and sub-pixel boxes are for evaluation only (COCOeval ignores matches on crowds).
        anns = [a for a in self.coco.imgToAnns.get(image_id, [])
                if not a.get("iscrowd", 0) and a["bbox"][2] >= 1 and a["bbox"][3] >= 1]
        w, h = image.size
        boxes = torch.tensor([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2],
                               a["bbox"][1] + a["bbox"][3]] for a in anns], dtype=torch.float32)
        boxes = boxes.reshape(-1, 4)
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w)  # within BOX_TOLERANCE of the border: clip onto it
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h)
        target = {"boxes": boxes,
                  "labels": torch.tensor([self._label[a["category_id"]] for a in anns], dtype=torch.int64),
                  "image_id": torch.tensor(image_id, dtype=torch.int64)}
        if self.masks:
            m = np.stack([self.coco.annToMask(a) for a in anns]) if anns else np.zeros((0, h, w), np.uint8)
            target["masks"] = torch.from_numpy(m.astype(np.uint8))
        return image, target

    def _with(self, dataset: dict[str, Any], image_ids: Sequence[int]) -> DenseSplit:
        return DenseSplit(_make_coco(dataset), self.image_dir, masks=self.masks,
                          annotation_sha256=self.annotation_sha256, task=self.task, image_ids=image_ids)

    def subset(self, index: Any) -> DenseSplit:
        """The images at `index`, in that order; the ground truth is restricted to them."""
        ids = [int(x) for x in self.image_ids[np.asarray(index, dtype=np.int64)]]
        keep = set(ids)
        d = self.coco.dataset
        dataset = {**d, "images": [self.coco.imgs[i] for i in ids],
                   "annotations": [a for a in d["annotations"] if a["image_id"] in keep]}
        return self._with(dataset, ids)

    def to_label_space(self, classes: Sequence[str], cat_ids: Sequence[int] | None = None) -> DenseSplit:
        """Same images, categories re-mapped by name onto a train task's `classes` (ids `cat_ids`,
        default 1..K), so label j means the train task's class j. A category not there is an error."""
        classes = [str(c) for c in classes]
        ids = list(range(1, len(classes) + 1)) if cat_ids is None else [int(c) for c in cat_ids]
        index = {c: ids[j] for j, c in enumerate(classes)}
        missing = [c for c in self.classes if c not in index]
        if missing:
            raise UserError(f"task {self.task!r}: categories {missing[:3]} are not categories of its "
                            "train task; an OOD task must use its train task's category names")
        new = {cid: index[name] for cid, name in zip(self.cat_ids, self.classes, strict=True)}
        d = self.coco.dataset
        dataset = {**d, "categories": [{"id": ids[j], "name": c} for j, c in enumerate(classes)],
                   "annotations": [{**a, "category_id": new[a["category_id"]]} for a in d["annotations"]]}
        return self._with(dataset, [int(i) for i in self.image_ids])


def read_coco(annotations: Path, images: Path, *, masks: bool, task: str) -> DenseSplit:
    """Read and check a COCO instances file and its image folder (every check before returning)."""
    annotations, images = Path(annotations), Path(images)
    if not annotations.is_file():
        raise UserError(f"task {task!r}: no annotation file at {annotations}; put the COCO instances "
                        "json there or fix the task's params.annotations")
    raw = annotations.read_bytes()
    if not raw.strip():
        raise UserError(f"{annotations}: the annotation file is empty ({len(raw)} bytes); download or write "
                        "it again")
    with decoding(f"annotation file {annotations}", "write it again as COCO instances JSON"):
        data = json.loads(raw)
    _check_top(data, annotations)
    sizes = _check_images(data["images"], images, annotations)
    cats = _check_categories(data["categories"], annotations)
    _check_annotations(data["annotations"], sizes, cats, masks, annotations)
    return DenseSplit(_make_coco(data), images, masks=masks,
                      annotation_sha256=hashlib.sha256(raw).hexdigest(), task=task)


def _check_top(data: Any, where: Path) -> None:
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a JSON object with images, annotations and categories; "
                        "write a COCO instances file")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise UserError(f"{where}: no {key!r} list; a COCO instances file needs images, annotations "
                            "and categories")
    for key in ("images", "annotations", "categories"):
        if not data[key]:
            raise UserError(f"{where}: has no {key}; the annotation file is empty, write it again")
        bad = next((e for e in data[key] if not isinstance(e, dict) or not _is_int(e.get("id"))), None)
        if bad is not None:
            raise UserError(f"{where}: an entry of {key!r} has no integer 'id' ({str(bad)[:80]}); {_FIX}")


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _duplicate(entries: list[dict[str, Any]]) -> int | None:
    seen: set[int] = set()
    for e in entries:
        if e["id"] in seen:
            return int(e["id"])
        seen.add(e["id"])
    return None


def _check_images(entries: list[dict[str, Any]], folder: Path, where: Path) -> dict[int, tuple[int, int]]:
    """Image id -> (width, height); every listed image must exist in `folder`."""
    dup = _duplicate(entries)
    if dup is not None:
        raise UserError(f"{where}: image id {dup} appears twice; give every image its own id")
    if not folder.is_dir():
        raise UserError(f"{where}: image folder {folder} does not exist; put the images there or fix "
                        "the task's params.images")
    present = {p.name for p in folder.iterdir()}  # one listing, not one stat per image
    sizes = {}
    for img in entries:
        name, w, h = img.get("file_name"), img.get("width"), img.get("height")
        if not isinstance(name, str) or not _is_int(w) or not _is_int(h) or w <= 0 or h <= 0:
            raise UserError(f"{where}: image {img['id']} needs file_name, and width and height > 0; {_FIX}")
        missing = not (folder / name).is_file() if "/" in name else name not in present
        if missing:
            raise UserError(f"{where}: image {img['id']}: file {folder / name} does not exist; "
                            "put it there or remove the image from the annotations")
        sizes[img["id"]] = (w, h)
    return sizes


def _check_categories(entries: list[dict[str, Any]], where: Path) -> set[int]:
    dup = _duplicate(entries)
    if dup is not None:
        raise UserError(f"{where}: category id {dup} appears twice; give every category its own id")
    names = [c.get("name") for c in entries]
    if not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
        raise UserError(f"{where}: every category needs a unique, non-empty name; fix the categories")
    return {c["id"] for c in entries}


def _check_annotations(anns: list[dict[str, Any]], sizes: dict[int, tuple[int, int]], cats: set[int],
                       masks: bool, where: Path) -> None:
    dup = _duplicate(anns)
    if dup is not None:
        raise UserError(f"{where}: annotation id {dup} appears twice; give every annotation its own id")
    for a in anns:
        at = f"{where}: annotation {a['id']}"
        if a.get("image_id") not in sizes:
            raise UserError(f"{at}: image_id {a.get('image_id')!r} is not in images; {_FIX}")
        if a.get("category_id") not in cats:
            raise UserError(f"{at}: category_id {a.get('category_id')!r} is not in categories "
                            f"(ids {sorted(cats)[:10]}...); {_FIX} or add the category")
        _check_box(a, sizes[a["image_id"]], at)
        seg = a.get("segmentation")
        if masks and not seg:
            raise UserError(f"{at}: has no segmentation but the task asks for masks; add masks or make "
                            "the task type 'detection'")
        if seg:
            _check_segmentation(seg, sizes[a["image_id"]], at)
        a.setdefault("iscrowd", 0)  # COCOeval reads both; user files often leave them out
        if "area" not in a:
            a["area"] = float(a["bbox"][2] * a["bbox"][3])


def _check_box(a: dict[str, Any], size: tuple[int, int], at: str) -> None:
    box = a.get("bbox")
    if (not isinstance(box, list) or len(box) != 4
            or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in box)):
        raise UserError(f"{at}: bbox must be [x, y, width, height] numbers, got {str(box)[:60]}; {_FIX}")
    x, y, w, h = box
    # A zero width or height is degenerate, not wrong: COCO's own instances_train2017.json has two
    # (annotations of images 200365 and 550395); they are left out of training targets like w < 1.
    if w < 0 or h < 0:
        raise UserError(f"{at}: bbox {box} has a negative width or height; {_FIX}")
    W, H = size
    t = BOX_TOLERANCE
    if x < -t or y < -t or x + w > W + t or y + h > H + t:
        raise UserError(f"{at}: bbox {box} lies outside its {W}x{H} image (tolerance {t} px); {_FIX}")


def _check_segmentation(seg: Any, size: tuple[int, int], at: str) -> None:
    W, H = size
    if isinstance(seg, dict):  # RLE: counts (str compressed, or list of runs) and size [h, w]
        if list(seg.get("size", [])) != [H, W] or not isinstance(seg.get("counts"), (str, list)):
            raise UserError(f"{at}: RLE segmentation needs counts and size [{H}, {W}] (its image's "
                            f"height, width), got size {seg.get('size')}; {_FIX}")
        if isinstance(seg["counts"], list) and sum(seg["counts"]) != H * W:
            raise UserError(f"{at}: uncompressed RLE counts sum to {sum(seg['counts'])}, not {H}x{W}; {_FIX}")
        return
    if not isinstance(seg, list):
        raise UserError(f"{at}: segmentation must be polygons (a list) or RLE (a dict); {_FIX}")
    for poly in seg:
        if (not isinstance(poly, list) or len(poly) < 6 or len(poly) % 2
                or not all(isinstance(v, (int, float)) for v in poly)):
            n = len(poly) if isinstance(poly, list) else 0
            raise UserError(f"{at}: a polygon needs >= 3 points as an even list of >= 6 numbers, got "
                            f"{n} numbers; {_FIX}")


def encode_mask(mask: np.ndarray) -> dict[str, Any]:
    """A binary (H, W) mask as COCO compressed RLE with `counts` a str (JSON-ready)."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}
