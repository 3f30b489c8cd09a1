"""det-frozen and det-ft: torchvision Faster/Mask R-CNN with an FPN on a nmlbench backbone.

    fitted = TUNERS.get("det-frozen")(DetFrozenConfig()).fit(DenseData(bb, train, K, masks=True), seed=0)
    results = fitted.predict(test)        # COCO results JSON (a list of dicts)

Training follows detectron2's recipe [ours, METHODS.md "Dense transfer"]: SGD with momentum, linear
warm-up then step decay, random horizontal flips, batches drawn with a generator seeded by `seed`
(same seed -> same weights on the CPU). Neither method selects on a validation split: the field's
protocol reports the final model, so `predict` holds the last step.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torchvision.transforms.functional as TF
from torch import nn
from tqdm.auto import tqdm

from nmlbench.dense.metrics import coco_results
from nmlbench.dense.model import build_detector, check_dense_backbone
from nmlbench.dense.recipe import DetConfig, DetFrozenConfig, DetFTConfig, DetLoRAConfig
from nmlbench.dense.resume import FitState, fingerprint
from nmlbench.errors import UserError
from nmlbench.tuning.base import TUNERS, Tuner, count_params

log = logging.getLogger(__name__)


@dataclass
class DenseData:
    """What a dense tuner gets: the backbone and the train split (a nmlbench.dense.coco.DenseSplit)."""

    backbone: Any
    train: Any
    num_classes: int
    masks: bool
    device: str = "cpu"
    # where the fit keeps its resumable state (nmlbench.dense.resume); None = it saves none
    state_path: Path | None = None


@dataclass
class DenseFitted:
    """A trained detector's predictor plus what the result record reports about it."""

    predict: Callable[[Any], list[dict]]  # DenseSplit -> COCO results, sorted by (image_id, -score)
    trainable_params: int
    total_params: int
    steps: int
    detector: nn.Module | None = None  # the trained detector itself (tests, inspection)

    def selection_block(self) -> dict[str, Any]:
        """No selection: the last step is reported, as the field's protocol does."""
        return {"split": "none", "reported": "last", "last_epoch": int(self.steps)}


def lr_factor(cfg: DetConfig) -> Callable[[int], float]:
    """Step -> lr multiplier: linear warm-up from warmup_factor, then x lr_gamma at each of lr_steps."""

    def factor(step: int) -> float:
        warm = 1.0
        if step < cfg.warmup_steps:
            a = step / cfg.warmup_steps
            warm = cfg.warmup_factor * (1 - a) + a
        return warm * cfg.lr_gamma ** bisect.bisect_right(cfg.lr_steps, step)

    return factor


class TrainBatches:
    """Images and targets of a split at given indices, each flipped with probability `hflip`."""

    def __init__(self, split: Any, masks: bool, hflip: float, device: torch.device) -> None:
        self.split, self.masks, self.hflip, self.device = split, masks, hflip, device

    def __call__(self, idx: torch.Tensor, gen: torch.Generator) -> tuple[list, list]:
        flips = torch.rand(len(idx), generator=gen) < self.hflip
        images, targets = [], []
        for i, flip in zip(idx.tolist(), flips.tolist(), strict=True):
            pil, target = self.split[i]
            img = TF.to_tensor(pil)
            t = {"boxes": target["boxes"].float(), "labels": target["labels"].long()}
            if self.masks:
                t["masks"] = target["masks"]
            if flip:
                img, t = _hflip(img, t)
            images.append(img.to(self.device))
            targets.append({k: v.to(self.device) for k, v in t.items()})
        return images, targets


def _hflip(img: torch.Tensor, t: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Mirror an image (C,H,W) with its xyxy boxes and masks."""
    w = img.shape[-1]
    boxes = t["boxes"].clone()
    boxes[:, [0, 2]] = w - t["boxes"][:, [2, 0]]
    out = dict(t, boxes=boxes)
    if "masks" in t:
        out["masks"] = t["masks"].flip(-1)
    return img.flip(-1), out


class IndexStream:
    """Batches of indices from seeded permutations, one after another (an infinite shuffled sampler).

    The indices of a permutation not yet handed out are part of a fit's saved state (`state`/`load`):
    with the generator's state they make a resumed fit draw the batches an uninterrupted one draws.
    """

    def __init__(self, n: int, batch_size: int, gen: torch.Generator) -> None:
        self.n, self.batch_size, self.gen = n, batch_size, gen
        self.buf: list[int] = []

    def __call__(self) -> torch.Tensor:
        while len(self.buf) < self.batch_size:
            self.buf.extend(torch.randperm(self.n, generator=self.gen).tolist())
        out = self.buf[: self.batch_size]
        del self.buf[: self.batch_size]
        return torch.tensor(out)

    def state(self) -> list[int]:
        return list(self.buf)

    def load(self, pending: list[int]) -> None:
        self.buf = list(pending)


class _Detection(Tuner):
    """Shared fit/predict of det-frozen and det-ft; `train_backbone` tells them apart."""

    consumes = "dense"  # type: ignore[assignment]  # routed by eval/run.py to the dense job
    train_backbone = False

    def check_backbone(self, backbone: Any) -> None:
        check_dense_backbone(backbone)

    def fit(self, data: DenseData, seed: int) -> DenseFitted:
        cfg, device = self.cfg, torch.device(data.device)
        if len(data.train) == 0:
            raise UserError("the dense train split has no images; check the task's annotations")
        torch.manual_seed(seed)  # new layers' init and the RPN/RoI samplers draw from the global RNG
        gen = torch.Generator().manual_seed(seed)
        model = build_detector(data.backbone, data.num_classes, data.masks, cfg, self.train_backbone)
        opt = torch.optim.SGD(
            self._groups(model), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor(cfg))
        batches = TrainBatches(data.train, data.masks, cfg.hflip, device)
        next_idx = IndexStream(len(data.train), cfg.batch_size, gen)
        state = FitState(data.state_path, fingerprint(self.config_key, cfg, seed, data), model, opt, sched,
                         gen, next_idx, device)
        start = state.restore()  # after every part is built: restoring overwrites what building drew
        model.train()
        bar = tqdm(range(start, cfg.steps), desc=self.config_key, leave=False, initial=start,
                   total=cfg.steps)
        for step in bar:
            losses = model(*batches(next_idx(), gen))
            loss = sum(losses.values())
            if not torch.isfinite(loss):
                raise UserError(
                    f"{self.config_key}: the loss became {float(loss)} at step {step + 1}; lower lr "
                    f"(now {cfg.lr}) or raise warmup_steps"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
                self._log(bar, step + 1, loss, losses)
            # never after the last step: the finished fit is written as records, not as a state
            if cfg.checkpoint_every and (step + 1) % cfg.checkpoint_every == 0 and step + 1 < cfg.steps:
                state.save(step + 1)
        model.eval()
        trainable, total = count_params(model)
        return DenseFitted(
            lambda split: predict(model, split, cfg.eval_batch_size, device),
            trainable,
            total,
            cfg.steps,
            model,
        )

    def _log(self, bar: Any, done: int, loss: torch.Tensor, losses: dict[str, torch.Tensor]) -> None:
        shown = {k.removeprefix("loss_"): round(float(v.detach()), 4) for k, v in losses.items()}
        bar.set_postfix(loss=round(float(loss.detach()), 4))
        log.info("%s step %d/%d loss %.4f %s", self.config_key, done, self.cfg.steps, float(loss.detach()),
                 shown)

    def _groups(self, model: nn.Module) -> list[dict]:
        """SGD groups: the backbone at lr_backbone (det-ft), everything else at lr; frozen ones left out."""
        body = set(map(id, model.backbone.body.parameters()))
        own = [p for p in model.parameters() if p.requires_grad and id(p) not in body]
        groups = [{"params": own, "lr": self.cfg.lr}]
        trained = [p for p in model.backbone.body.parameters() if p.requires_grad]
        if trained:  # det-ft: the whole backbone; det-lora: its adapters
            lr = self.cfg.lr if self.cfg.lr_backbone is None else self.cfg.lr_backbone
            groups.append({"params": trained, "lr": lr})
        return groups


@torch.no_grad()
def predict(model: nn.Module, split: Any, batch_size: int, device: torch.device) -> list[dict]:
    """COCO results of `model` on every image of `split` (category ids = split.cat_ids)."""
    model.eval()
    results: list[dict] = []
    for start in range(0, len(split), batch_size):
        idx = range(start, min(start + batch_size, len(split)))
        images = [TF.to_tensor(split[i][0]).to(device) for i in idx]
        outputs = model(images)
        results.extend(coco_results(outputs, [int(split.image_ids[i]) for i in idx], split.cat_ids))
    results.sort(key=lambda r: (r["image_id"], -r["score"]))
    return results


@TUNERS.register("det-frozen")
class DetFrozen(_Detection):
    """The pre-trained backbone stays fixed; the FPN, RPN and box (and mask) heads train."""

    Config = DetFrozenConfig
    config_key = "det_frozen"
    train_backbone = False


@TUNERS.register("det-ft")
class DetFT(_Detection):
    """The whole detector trains, backbone included (its BatchNorm frozen)."""

    Config = DetFTConfig
    config_key = "det_ft"
    train_backbone = True


@TUNERS.register("det-lora")
class DetLoRA(_Detection):
    """LoRA adapters in the backbone's convolutions train with the detector; the base weights stay."""

    Config = DetLoRAConfig
    config_key = "det_lora"
    train_backbone = False  # the base weights; build_detector adds the adapters for a DetLoRAConfig
