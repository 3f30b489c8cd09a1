"""One training loop for every tuner: AdamW, per-step cosine to 0, best-val or last-epoch selection.

Per-epoch train loss, val top-1 and learning rate go to TensorBoard / W&B when asked for
(`nmlbench evaluate --tensorboard`), one run per evaluation cell (nmlbench.tracking.cell).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from peft.tuners.tuners_utils import BaseTunerLayer
from torch import nn
from tqdm.auto import tqdm

from nmlbench import tracking


@dataclass(frozen=True)
class Schedule:
    """Optimisation settings shared by the tuners' configs."""

    epochs: int
    batch_size: int
    selection: str = "best_val"  # "best_val": epoch with the best ID-val top-1; "last": final epoch

    def __post_init__(self) -> None:
        check_selection(self.selection)


SELECTIONS = ("best_val", "last")
# The type of the tuners' `selection` field: the config loader refuses other names in one line.
SelectionName = Literal["best_val", "last"]


def check_selection(selection: str) -> None:
    """For the tuners' config checks: the two ways to pick the reported epoch."""
    if selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {', '.join(SELECTIONS)}, got {selection!r}")


@dataclass(frozen=True)
class Selection:
    """Which epoch a fit reports, with the best-val and the last epoch recorded side by side."""

    best_epoch: int  # 1-based epoch with the best ID-val top-1 (first one on ties)
    best_val_top1: float
    last_epoch: int
    last_val_top1: float
    reported: str  # "best_val" or "last": whose weights the predictor holds


def param_groups(groups: Iterable[tuple[Iterable[nn.Parameter], float, float]]) -> list[dict]:
    """[(params, lr, weight_decay)] -> AdamW groups, dropping frozen parameters."""
    out = []
    for params, lr, wd in groups:
        trainable = [p for p in params if p.requires_grad]
        if trainable:
            out.append({"params": trainable, "lr": lr, "weight_decay": wd})
    return out


def run_training(
    modules: list[nn.Module],
    groups: list[dict],
    n_train: int,
    sched: Schedule,
    step: Callable[[torch.Tensor], torch.Tensor],
    evaluate: Callable[[], float],
    gen: torch.Generator,
    desc: str = "tune",
    frozen: nn.Module | None = None,
) -> Selection:
    """Train `modules` with `step(batch_indices) -> loss`; return the best-val and last epochs.

    With `selection="best_val"` the best state (by `evaluate()` after each epoch) is restored at
    the end, so the caller's modules hold it; `selection="last"` keeps the final epoch [ref].
    `frozen` (a module inside `modules` whose pre-trained weights are not tuned) trains with its
    pre-trained layers in eval mode (BatchNorm statistics stay the pre-trained ones) and its LoRA
    adapters, with their dropout, in train mode.
    """
    opt = torch.optim.AdamW(groups, fused=_can_fuse(groups))
    steps_per_epoch = max(1, math.ceil(n_train / sched.batch_size))
    total = sched.epochs * steps_per_epoch
    lr_sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, total), eta_min=0.0)
    best: tuple[float, int, list | None] = (-1.0, 0, None)
    val = -1.0
    bar = tqdm(range(sched.epochs), desc=desc, leave=False)
    curves = tracking.open_curves("tune", tracking.current_cell(), config={"method": desc, **vars(sched)})
    for epoch in bar:
        for m in modules:
            m.train()
        if frozen is not None:
            train_adapters_only(frozen)
        lr = opt.param_groups[0]["lr"]
        loss = _epoch(opt, lr_sched, step, torch.randperm(n_train, generator=gen), sched.batch_size)
        for m in modules:
            m.eval()
        with torch.no_grad():
            val = evaluate()
        bar.set_postfix(loss=f"{loss:.3f}", val=f"{val:.1f}")
        curves.log({"tune/train_loss": loss, "tune/val_top1": val, "tune/lr": lr}, epoch + 1)
        if val > best[0]:  # weights are copied only when they may be restored
            keep = sched.selection == "best_val"
            best = (val, epoch + 1, [copy.deepcopy(m.state_dict()) for m in modules] if keep else None)
    curves.close()
    if best[2] is not None and best[1] != sched.epochs:
        for m, state in zip(modules, best[2], strict=True):
            m.load_state_dict(state)
    for m in modules:
        m.eval()
    return Selection(best[1], best[0], sched.epochs, val, sched.selection)


def train_adapters_only(module: nn.Module) -> None:
    """Eval mode for a frozen pre-trained `module`, train mode for the peft adapters inside it.

    The pre-trained layers keep their BatchNorm running statistics and behave as at inference
    (dropout, drop-path off); LoRA layers train with their dropout (`lora.dropout`), which a
    whole-module eval() would switch off.
    """
    module.eval()
    for m in module.modules():
        if isinstance(m, BaseTunerLayer):
            m.train()  # the adapter, its dropout and its (mode-free) wrapped Linear/Conv


def _can_fuse(groups: list[dict]) -> bool:
    """The fused AdamW kernel (one pass per tensor) where torch has it: floating CPU/CUDA tensors.

    On a CPU the unfused update costs about as much as NMTune's forward/backward for D = 2048
    (33 M parameters); fused makes the head's training ~35 % faster with the same update rule.
    """
    params = [p for g in groups for p in g["params"]]
    return bool(params) and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)


def _epoch(
    opt: torch.optim.Optimizer,
    lr_sched: Any,
    step: Callable[[torch.Tensor], torch.Tensor],
    perm: torch.Tensor,
    batch_size: int,
) -> float:
    """One pass over `perm` in batches; returns the mean batch loss (progress bar and curves)."""
    total, n = torch.zeros(()), 0
    for start in range(0, len(perm), batch_size):
        idx = perm[start : start + batch_size]
        if len(idx) < 2:  # BatchNorm and covariance terms need two rows
            continue
        loss = step(idx)
        # summed on the loss's device: one host sync per epoch, not per step
        total, n = (loss.detach().float() if n == 0 else total + loss.detach().float()), n + 1
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        lr_sched.step()
    return float(total) / max(n, 1)
