"""Training metrics: rows to metrics.jsonl on rank 0, and corrupt-sample accounting on every rank."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from nmlbench.errors import UserError
from nmlbench.io import atomic_path


class Metrics:
    """Step/epoch metrics to metrics.jsonl (rank 0); corrupt-sample accounting on every rank."""

    def __init__(self, run: Any, pos: dict[str, Any]) -> None:
        self.run, self.skipped, self.seen = run, pos["skipped"], pos["seen"]
        self.path = run.work / "metrics.jsonl"
        self.t0, self.n0 = time.perf_counter(), 0
        if run.info.is_main:
            run.work.mkdir(parents=True, exist_ok=True)
            _truncate_jsonl(self.path, pos["step"])
        self.lines: list[str] = []

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
        self.t0, self.n0 = time.perf_counter(), 0
        if len(self.lines) >= 20:
            self.flush()

    def flush(self) -> None:
        if self.lines and self.run.info.is_main:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write("\n".join(self.lines) + "\n")
        self.lines = []


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
