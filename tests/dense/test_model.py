"""build_detector: torchvision Faster/Mask R-CNN on an FPN over tinyresnet; ViTs and text refused.

`FakeSplit`/`make_split` (imported by the other dense tests) stand in for nmlbench.dense.coco.DenseSplit
with exactly its interface: a tiny COCO built in memory of 64x64 images of coloured rectangles and discs,
with exact boxes and masks.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from nmlbench.dense.model import build_detector
from nmlbench.dense.recipe import DetConfig
from nmlbench.errors import UserError
from nmlbench.models.load import load_backbone

SIZE = 64
CATEGORIES = [{"id": 3, "name": "rect"}, {"id": 7, "name": "disc"}]  # ids not 1..K on purpose
SMALL = DetConfig(
    min_size=SIZE,
    max_size=SIZE,
    fpn_channels=16,
    anchor_sizes=(8, 16, 24, 32, 48),
    warmup_steps=2,
    lr=0.01,
    steps=3,
    batch_size=2,
    eval_batch_size=4,
    log_every=1,
    detections_per_img=20,
    roi_batch_size=64,
    box_head_dim=32,
)


def _scene(rng: np.random.Generator) -> tuple[np.ndarray, list[tuple[int, np.ndarray]]]:
    """A 64x64 image of 1-3 non-overlapping shapes and their (category id, mask) pairs."""
    img = (rng.uniform(0.3, 0.5) * 255 + rng.normal(0, 8, (SIZE, SIZE, 3))).clip(0, 255)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    objects, taken = [], np.zeros((SIZE, SIZE), bool)
    for _ in range(int(rng.integers(1, 4))):
        s = int(rng.integers(10, 22))
        x0, y0 = (int(v) for v in rng.integers(1, SIZE - s - 1, 2))
        cat = CATEGORIES[int(rng.integers(2))]["id"]
        if cat == 3:
            m = (xx >= x0) & (xx < x0 + s) & (yy >= y0) & (yy < y0 + s)
        else:
            m = (xx - x0 - s / 2 + 0.5) ** 2 + (yy - y0 - s / 2 + 0.5) ** 2 <= (s / 2) ** 2
        if (m & taken).any():
            continue
        taken |= m
        img[m] = (230, 60, 40) if cat == 3 else (40, 90, 230)
        objects.append((cat, m.astype(np.uint8)))
    return img.astype(np.uint8), objects


class FakeSplit:
    """Stand-in for DenseSplit: coco, classes, cat_ids, image_ids, ids, masks, annotation_sha256."""

    def __init__(self, n: int, masks: bool, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        images, anns, self.pixels = [], [], []
        for i in range(n):
            img, objects = _scene(rng)
            image_id = 100 + i
            self.pixels.append(img)
            images.append({"id": image_id, "width": SIZE, "height": SIZE, "file_name": f"{image_id}.png"})
            for cat, m in objects:
                rle = mask_utils.encode(np.asfortranarray(m))
                anns.append(
                    {
                        "id": len(anns) + 1,
                        "image_id": image_id,
                        "category_id": cat,
                        "iscrowd": 0,
                        "bbox": [float(v) for v in mask_utils.toBbox(rle)],
                        "area": float(m.sum()),
                        "segmentation": {"size": [SIZE, SIZE], "counts": rle["counts"].decode("ascii")},
                    }
                )
        self.coco = COCO()
        self.coco.dataset = {"images": images, "annotations": anns, "categories": CATEGORIES}
        with contextlib.redirect_stdout(io.StringIO()):
            self.coco.createIndex()
        self.classes = [c["name"] for c in CATEGORIES]
        self.cat_ids = [c["id"] for c in CATEGORIES]
        self.image_ids = np.array([im["id"] for im in images], dtype=np.int64)
        self.ids = np.array([str(i) for i in self.image_ids])
        self.masks = masks
        self.annotation_sha256 = "0" * 64

    def __len__(self) -> int:
        return len(self.image_ids)

    def __getitem__(self, i: int) -> tuple[Image.Image, dict[str, torch.Tensor]]:
        image_id = int(self.image_ids[i])
        anns = self.coco.imgToAnns[image_id]
        label = {c: j + 1 for j, c in enumerate(self.cat_ids)}
        x, y, w, h = (torch.tensor([a["bbox"][k] for a in anns], dtype=torch.float32) for k in range(4))
        target = {
            "boxes": torch.stack([x, y, x + w, y + h], 1).reshape(-1, 4),
            "labels": torch.tensor([label[a["category_id"]] for a in anns], dtype=torch.int64),
            "image_id": torch.tensor(image_id, dtype=torch.int64),
        }
        if self.masks:
            ms = [self.coco.annToMask(a) for a in anns]
            target["masks"] = (
                torch.from_numpy(np.stack(ms)) if ms else torch.zeros(0, SIZE, SIZE, dtype=torch.uint8)
            )
        return Image.fromarray(self.pixels[i]), target


def make_split(n: int = 6, masks: bool = True, seed: int = 0) -> FakeSplit:
    return FakeSplit(n, masks, seed)


def tiny_backbone():
    return load_backbone("tinyresnet", pretrained=False, seed=0)


@pytest.mark.parametrize("masks", [False, True])
def test_build_detector_train_losses_and_eval_outputs(masks: bool) -> None:
    torch.manual_seed(0)
    split = make_split(2, masks)
    model = build_detector(tiny_backbone(), len(split.classes), masks, SMALL, train_backbone=False)
    assert type(model).__name__ == ("MaskRCNN" if masks else "FasterRCNN")
    assert model.roi_heads.box_predictor.cls_score.out_features == 3  # 2 categories + background
    assert model.backbone.out_channels == 16
    assert model.roi_heads.box_head.fc7.out_features == 32  # box_head_dim
    assert model.roi_heads.fg_bg_sampler.batch_size_per_image == 64  # roi_batch_size
    if masks:  # the mask head is as wide as the FPN
        assert model.roi_heads.mask_head[0][0].out_channels == 16
        assert model.roi_heads.mask_predictor.mask_fcn_logits.out_channels == 3
    assert (model.transform.min_size, model.transform.max_size) == ((SIZE,), SIZE)
    images = [torch.from_numpy(p).permute(2, 0, 1).float() / 255 for p in split.pixels]
    targets = [{k: v for k, v in split[i][1].items() if k != "image_id"} for i in range(2)]
    model.train()
    losses = model(images, targets)
    want = {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}
    assert set(losses) == want | ({"loss_mask"} if masks else set())
    assert all(torch.isfinite(v) for v in losses.values())
    assert not model.backbone.body.training  # frozen body stays in eval mode
    model.eval()
    with torch.no_grad():
        out = model(images)
    assert len(out) == 2
    for o in out:
        assert set(o) == {"boxes", "labels", "scores"} | ({"masks"} if masks else set())
        assert o["boxes"].shape[1:] == (4,)
        if masks:
            assert o["masks"].shape[1:] == (1, SIZE, SIZE)


def test_pyramid_levels_follow_the_stages() -> None:
    model = build_detector(tiny_backbone(), 2, False, SMALL, train_backbone=True)
    with torch.no_grad():
        feats = model.backbone(torch.zeros(1, 3, SIZE, SIZE))
    # tinyresnet has no max-pool: strides 2/4/8/16 for layer1..4, then the extra pooled level
    assert [f.shape[-1] for f in feats.values()] == [32, 16, 8, 4, 2]
    assert list(feats) == ["0", "1", "2", "3", "pool"]
    assert model.backbone.body.trainable


def test_vit_refused_with_one_line() -> None:
    vit = load_backbone("tinyvit", pretrained=False, seed=0)
    with pytest.raises(UserError) as e:
        build_detector(vit, 2, False, SMALL, train_backbone=False)
    assert "ViT" in str(e.value) and "\n" not in str(e.value)


def test_text_backbone_refused() -> None:
    class Text:
        modality, name = "text", "tinytext"

    with pytest.raises(UserError, match="text model"):
        build_detector(Text(), 2, False, SMALL, train_backbone=False)
