"""Training metrics: rows to metrics.jsonl (and TensorBoard / W&B when asked for) on rank 0, step
progress for a parent process, and corrupt-sample accounting on every rank."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from nmlbench import tracking
from nmlbench.config import to_dict
from nmlbench.errors import UserError
from nmlbench.io import atomic_path


class Metrics:
    """Step/epoch metrics to metrics.jsonl (rank 0); corrupt-sample accounting on every rank."""

    def __init__(self, run: Any, pos: dict[str, Any], total: int) -> None:
        self.run, self.skipped, self.seen = run, pos["skipped"], pos["seen"]
        self.path = run.work / "metrics.jsonl"
        self.t0, self.n0 = time.perf_counter(), 0
        name = run.meta["name"]
        if run.info.is_main:
            run.work.mkdir(parents=True, exist_ok=True)
            _truncate_jsonl(self.path, pos["step"])
        # curves' global step = training step, so a resumed run continues its curve
        main = run.info.is_main
        self.curves = tracking.open_curves(
            "pretrain", name if main else None, pos["step"], run.work, to_dict(run.cfg) if main else None
        )
        self.advance = tracking.StepReporter(name if main else "", pos["step"], total)
        self.lines: list[str] = []

    @property
    def reports_progress(self) -> bool:
        """True when a parent process shows this run's steps (its own progress bar is then off)."""
        return self.advance.sink is not None

    def count(self, n_ok: int, n_bad: int) -> None:
        self.seen += n_ok + n_bad
        self.skipped += n_bad
        self.n0 += n_ok
        limit = self.run.cfg.data.max_corrupt_share * len(self.run.source.ids)
        if self.skipped > limit:
            raise UserError(
                f"{self.skipped} samples could not be decoded, more than data.max_corrupt_share="
                f"{self.run.cfg.data.max_corrupt_share} of {len(self.run.source.ids)}; fix the data "
                "or raise the share"
            )

    def log(self, step: int, epoch: int, loss: float, extra: dict[str, float]) -> None:
        every = self.run.cfg.log_every_steps
        if (
            not self.run.info.is_main
            or (step + 1) % every
            and step + 1 != self.run.steps_per_epoch * (epoch + 1)
        ):
            return
        dt = time.perf_counter() - self.t0
        row = {
            "step": step + 1,
            "epoch": epoch,
            "loss": loss,
            "lr": self.run.optimizer.param_groups[0]["lr"],
            "img_per_s": self.n0 * self.run.info.world_size / dt if dt > 0 else None,
            "skipped": self.skipped,
            **extra,
        }
        self.lines.append(json.dumps(row, sort_keys=True))
        if self.curves.enabled:
            self.curves.log({f"train/{k}": v for k, v in row.items() if k != "step"}, row["step"])
        self.t0, self.n0 = time.perf_counter(), 0
        if len(self.lines) >= 20:
            self.flush()

    def flush(self) -> None:
        if self.lines and self.run.info.is_main:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write("\n".join(self.lines) + "\n")
        self.lines = []
        self.curves.flush()  # at every interval checkpoint: curves up to it survive a kill -9

    def close(self) -> None:
        self.flush()
        self.curves.close()


def _truncate_jsonl(path: Path, step: int) -> None:
    """Drop rows logged after the checkpoint we resume from (and a torn last line after SIGKILL)."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line)["step"] <= step:
                keep.append(line)
        except (json.JSONDecodeError, KeyError):
            continue
    with atomic_path(path) as tmp:
        tmp.write_text("".join(f"{ln}\n" for ln in keep), encoding="utf-8")
