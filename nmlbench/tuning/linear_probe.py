"""`lp`: a linear head on frozen eval-transform features.

AdamW [ref], or full-batch L-BFGS logistic regression with a weight-decay sweep [ours].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from nmlbench.config import bounded
from nmlbench.tuning.base import (
    TUNERS,
    FeatureData,
    Fitted,
    Tuner,
    check_head_init,
    count_params,
    linear_head,
    top1,
)
from nmlbench.tuning.loop import (
    Schedule,
    Selection,
    SelectionName,
    check_selection,
    param_groups,
    run_training,
)


@dataclass(frozen=True)
class LPConfig:
    """Defaults are the reference's linear probe; `solver: lbfgs` is the CLIP-paper protocol [ours]."""

    # "adamw" [ref] | "lbfgs" (full batch, weight decay swept on val) [ours]
    solver: Literal["adamw", "lbfgs"] = "adamw"
    lr: float = bounded(1e-2, gt=0)
    weight_decay: float = bounded(1e-4, ge=0)
    batch_size: int = bounded(64, ge=2)
    epochs: int = bounded(30, ge=1)
    # "last" [ref]: the reference reports its final epoch (adamw only)
    selection: SelectionName = "best_val"
    init: str = "kaiming_uniform"  # head init: Kaiming-uniform weight, zero bias [ref]; "torch": nn.Linear's
    # L2 on W, per sample
    lbfgs_weight_decays: tuple[float, ...] = bounded((1e-6, 1e-5, 1e-4, 1e-3, 1e-2), ge=0)
    lbfgs_max_iter: int = bounded(100, ge=1)

    def __post_init__(self) -> None:
        if self.solver not in ("adamw", "lbfgs"):
            raise ValueError(f"lp.solver must be 'adamw' or 'lbfgs', got {self.solver!r}")
        if self.epochs < 1 or self.batch_size < 2:
            raise ValueError("lp.epochs must be >= 1 and lp.batch_size >= 2")
        check_head_init(self.init)
        check_selection(self.selection)


@TUNERS.register("lp")
class LinearProbe(Tuner):
    """Linear classifier on cached frozen features; the backbone never runs during training."""

    consumes = "features"
    Config = LPConfig
    config_key = "lp"

    def fit(self, data: FeatureData, seed: int) -> Fitted:
        torch.manual_seed(seed)
        dev = torch.device(data.device)
        head = linear_head(data.train.shape[1], data.num_classes, self.cfg.init).to(dev)
        data = data.on_device()
        if self.cfg.solver == "lbfgs":
            selection = self._fit_lbfgs(head, data)
        else:
            selection = self._fit_adamw(head, data, seed)
        head.eval()
        trainable, total = count_params(head)
        return Fitted(lambda x: head(x.to(dev)).detach().cpu().numpy(), trainable, total, selection)

    def _fit_adamw(self, head: nn.Linear, data: FeatureData, seed: int) -> Selection:
        cfg = self.cfg
        gen = torch.Generator().manual_seed(seed)

        def step(idx: torch.Tensor) -> torch.Tensor:
            idx = idx.to(data.train.device)
            return F.cross_entropy(head(data.train[idx]), data.train_labels[idx])

        groups = param_groups([(head.parameters(), cfg.lr, cfg.weight_decay)])
        return run_training(
            [head],
            groups,
            len(data.train),
            Schedule(cfg.epochs, cfg.batch_size, cfg.selection),
            step,
            lambda: top1(head(data.val), data.val_labels),
            gen,
            desc="lp",
        )

    def _fit_lbfgs(self, head: nn.Linear, data: FeatureData) -> Selection:
        """Full-batch L-BFGS per weight decay; keep the one with the best val top-1 (index = 'epoch').

        The sweep is a selection on val by design, so `selection` does not apply here.
        """
        init = {k: v.clone() for k, v in head.state_dict().items()}
        best: tuple[float, int, dict | None] = (-1.0, 0, None)
        for i, wd in enumerate(self.cfg.lbfgs_weight_decays):
            head.load_state_dict(init)
            opt = torch.optim.LBFGS(
                head.parameters(), max_iter=self.cfg.lbfgs_max_iter, line_search_fn="strong_wolfe"
            )

            def closure(opt: torch.optim.LBFGS = opt, wd: float = wd) -> torch.Tensor:
                opt.zero_grad()
                loss = F.cross_entropy(head(data.train), data.train_labels) + wd * head.weight.pow(2).sum()
                loss.backward()
                return loss

            opt.step(closure)
            with torch.no_grad():
                val = top1(head(data.val), data.val_labels)
            if val > best[0]:
                best = (val, i + 1, {k: v.clone() for k, v in head.state_dict().items()})
        head.load_state_dict(best[2])
        return Selection(best[1], best[0], len(self.cfg.lbfgs_weight_decays), val, "best_val")
