"""Resumable state of a detector fit: a killed `nmlbench evaluate`, run again with the same command,
continues the fit from its last saved step and ends with exactly the weights of an uninterrupted fit.

The state is one file, written atomically every `checkpoint_every` steps: the step, the model's,
optimizer's and scheduler's state, the batch generator's and torch's global RNG states (torchvision's
RPN and RoI samplers draw from the global one), the index sampler's pending indices, and a fingerprint
of everything the fit's numbers depend on. A file with another fingerprint (another recipe, seed,
backbone or train split) is ignored with a warning, and the fit starts over.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nmlbench.config import to_dict
from nmlbench.io import atomic_path

log = logging.getLogger(__name__)

FORMAT = "nmlbench-dense-fit-state"


def fingerprint(method: str, cfg: Any, seed: int, data: Any) -> str:
    """sha256 of what decides a fit's numbers: a saved state resumes only the fit that wrote it.

    The recipe enters as its result key sees it, so changing only `checkpoint_every` or `log_every`
    keeps the saved progress.
    """
    blob = {
        "method": method,
        "config": to_dict(cfg, keyed=True),
        "seed": seed,
        "num_classes": data.num_classes,
        "masks": data.masks,
        "backbone": data.backbone.key,
        "train_images": len(data.train),
        "train_annotations": getattr(data.train, "annotation_sha256", None),
    }
    return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class FitState:
    """The parts of a running fit that a saved state restores; `path` None saves and resumes nothing."""

    path: Path | None
    fingerprint: str
    model: nn.Module
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    gen: torch.Generator
    stream: Any  # the index sampler: state() -> its pending indices, load(them)
    device: torch.device

    def save(self, step: int) -> None:
        """Write the state after `step` finished steps (atomically: a kill mid-write keeps the old one)."""
        if self.path is None:
            return
        state = {
            "format": FORMAT,
            "fingerprint": self.fingerprint,
            "step": step,
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "generator": self.gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "stream": self.stream.state(),
        }
        if self.device.type == "cuda":  # on a GPU the samplers draw from the device's generator
            state["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        with atomic_path(self.path) as tmp:
            torch.save(state, tmp)

    def restore(self) -> int:
        """Load a saved state of this very fit, if there is one; the number of steps already done."""
        state = self._read()
        if state is None:
            return 0
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        self.gen.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        self.stream.load(state["stream"])
        log.info("resuming the fit at step %d from %s", state["step"], self.path)
        return int(state["step"])

    def _read(self) -> dict[str, Any] | None:
        """The saved state, or None (no file, an unreadable one, or another fit's: each said in a warning)."""
        if self.path is None or not self.path.is_file():
            return None
        try:  # weights_only: a state file never runs code when it is loaded
            with warnings.catch_warnings():  # garbage makes torch warn about its pickle protocol first
                warnings.simplefilter("ignore")
                state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - the unpickler raises whatever arbitrary bytes make it hit
            log.warning("ignoring the fit state %s: unreadable (%s); starting at step 0", self.path,
                        type(e).__name__)
            return None
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            log.warning("ignoring the fit state %s: not a dense fit state; starting at step 0", self.path)
            return None
        if state.get("fingerprint") != self.fingerprint:
            log.warning(
                "ignoring the fit state %s: another fit saved it (recipe, seed, backbone or train split "
                "differ); starting at step 0",
                self.path,
            )
            return None
        return state
