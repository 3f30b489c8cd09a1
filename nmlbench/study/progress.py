"""`nmlbench run`'s progress: one line per stage, pretraining (steps) then evaluation (fits: one per
method x tuning seed of each job, so a job of three 5-minute detector fits moves the bar three times).

Each stage's ETA comes from that stage's own measured rate over the last minute. A single bar over
"jobs" mixed minutes-long pretraining runs with seconds-long evaluation jobs: the first pretraining
run to land set the rate for all 45 jobs of the mini study, and the bar promised hours.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO

WINDOW_S = 60.0  # the rate is measured over this much recent time: it follows a stage speeding up


def eta_seconds(
    samples: Sequence[tuple[float, float]], remaining: float, now: float, window_s: float = WINDOW_S
) -> float | None:
    """Seconds left for `remaining` units at the rate measured over the last `window_s` seconds.

    Args:
        samples: (time, units done so far) in time order, counting only work done while being
            watched (a resumed run's earlier steps are not part of the rate).
        now: the current time; time since the last sample counts, so a stall raises the ETA.
    Returns None while there is no rate yet (no progress measured), 0 when nothing remains.
    """
    if remaining <= 0:
        return 0.0
    if not samples:
        return None
    ref = samples[0]
    for s in samples:  # the last sample at or before the window's start, else the first
        if s[0] <= now - window_s:
            ref = s
    work, dt = samples[-1][1] - ref[1], now - ref[0]
    if work <= 0 or dt <= 0:
        return None
    return remaining * dt / work


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


@dataclass
class Stage:
    """One stage's counters and its (time, units done) samples."""

    name: str
    unit: str
    total: float | None = None  # None: not known yet
    done: float = 0.0
    samples: list[tuple[float, float]] = field(default_factory=list)
    finished_at: float | None = None
    started_at: float | None = None

    def record(self, measured: float, now: float) -> None:
        """`measured`: units done since watching began (the rate's numerator)."""
        if self.started_at is None:
            self.started_at = now
        if not self.samples or self.samples[-1][1] != measured:
            self.samples.append((now, measured))
            cutoff = now - 2 * WINDOW_S  # keep what the window can still use
            while len(self.samples) > 2 and self.samples[1][0] < cutoff:
                self.samples.pop(0)

    def render(self, now: float, width: int = 20) -> str:
        total = f"{int(self.total):,}" if self.total is not None else "?"
        head = f"{self.name:<11} {int(self.done):>{len(total)},}/{total} {self.unit}"
        frac = min(1.0, self.done / self.total) if self.total else 0.0
        bar = "#" * int(frac * width) + "." * (width - int(frac * width))
        if self.finished_at is not None:
            took = self.finished_at - (self.finished_at if self.started_at is None else self.started_at)
            return f"{head} |{bar}| done in {fmt_duration(took)}"
        if self.started_at is None:
            return f"{head} |{bar}| waiting"
        left = None if self.total is None else self.total - self.done
        eta = None if left is None else eta_seconds(self.samples, left, now)
        return f"{head} |{bar}| {frac * 100:3.0f}% ETA {fmt_duration(eta)}"


class StudyProgress:
    """Collects pretraining step reports and finished evaluation fits; draws one line per stage."""

    def __init__(
        self,
        runs: Sequence[str],
        n_fits: int,
        file: IO[str] | None = None,
        disable: bool | None = None,
        clock: object = time.monotonic,
    ) -> None:
        self.clock = clock
        self.pre = Stage("pretraining", "steps")
        self.eval = Stage("evaluation", "fits", total=n_fits)
        self.runs = {name: None for name in runs}  # name -> (done, total, resumed at) once reported
        self.jobs: dict[str, int] = {}  # evaluation job -> fits finished
        self.skipped: set[str] = set()
        self._bars = None
        if disable is not True:
            from tqdm import tqdm  # a writer only: it knows terminals, TQDM_DISABLE and stacked lines

            kw = {} if disable is None else {"disable": disable}
            self._bars = [
                tqdm(bar_format="{desc}", position=i, file=file or sys.stderr, leave=True, **kw)
                for i in range(2)
            ]
        self.refresh()

    def report(self, name: str, done: int, total: int, start: int) -> None:
        """A pretraining run's step count (nmlbench.tracking's progress sink signature)."""
        self.runs[name] = (done, total, start)
        self._update_pre()

    def run_finished(self, name: str) -> None:
        if self.runs.get(name) is None:  # finished without a step: an existing checkpoint, skipped
            self.skipped.add(name)
        else:
            _, total, start = self.runs[name]
            self.runs[name] = (total, total, start)
        self._update_pre()

    def jobs_queued(self) -> None:
        if self.eval.started_at is None:
            self.eval.record(0, self.clock())

    def fits(self, job: str, done: int, total: int, _start: int = 0) -> None:
        """An evaluation job's finished fits (nmlbench.tracking's fit sink signature); idempotent, as
        a worker's last report may arrive after its job was seen to finish."""
        self.jobs[job] = max(self.jobs.get(job, 0), done)
        self.eval.done = sum(self.jobs.values())
        self.eval.record(self.eval.done, self.clock())
        if self.eval.done >= (self.eval.total or 0):
            self.eval.finished_at = self.clock()

    def job_done(self, job: str, fits: int) -> None:
        """A job returned: all its fits count, whether or not their reports arrived."""
        self.fits(job, fits, fits)

    def _update_pre(self) -> None:
        now = self.clock()
        known = [r for r in self.runs.values() if r is not None]
        unknown = len(self.runs) - len(known) - len(self.skipped)
        if known:  # a run not started yet is assumed as long as the mean of those that reported
            mean = sum(r[1] for r in known) / len(known)
            self.pre.total = sum(r[1] for r in known) + unknown * mean
            self.pre.done = sum(r[0] for r in known)
            self.pre.record(sum(r[0] - r[2] for r in known), now)
        if unknown == 0 and all(r is None or r[0] >= r[1] for r in self.runs.values()):
            self.pre.total = self.pre.total or 0
            if self.pre.started_at is None:  # every run was skipped
                self.pre.started_at = now
            self.pre.finished_at = now

    def lines(self) -> list[str]:
        now = self.clock()
        return [self.pre.render(now), self.eval.render(now)]

    def refresh(self) -> None:
        if self._bars:
            for bar, line in zip(self._bars, self.lines(), strict=True):
                bar.set_description_str(line, refresh=True)

    def close(self) -> None:
        self.refresh()
        for bar in self._bars or []:
            bar.close()
