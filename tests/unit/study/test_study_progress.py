"""`nmlbench run` progress: stage lines and an ETA from each stage's own measured rate."""

from __future__ import annotations

import io
import time

import pytest

from nmlbench import tracking
from nmlbench.study.progress import StudyProgress, eta_seconds, fmt_duration


def test_eta_from_measured_rate() -> None:
    steady = [(t, 10.0 * t) for t in range(11)]  # 10 units/s
    assert eta_seconds(steady, 100, now=10) == pytest.approx(10)
    assert eta_seconds(steady, 100, now=20) == pytest.approx(20)  # 10 s without progress: half the rate
    assert eta_seconds([], 100, now=5) is None and eta_seconds([(0, 0), (3, 0)], 100, now=5) is None
    assert eta_seconds(steady, 0, now=10) == 0
    # fast for the first 100 s, then 1 unit/s: the last minute's rate counts, not the average
    changed = [(t, 10.0 * t) for t in range(101)] + [(100 + t, 1000.0 + t) for t in range(1, 121)]
    assert eta_seconds(changed, 60, now=220) == pytest.approx(60)


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_stages_and_honest_eta_while_pretraining() -> None:
    """The mini study's shape: 3 runs x 400 steps on 2 workers, then 42 evaluation fits."""
    clock, out = Clock(), io.StringIO()
    runs = ["a.mini_sym0_s0", "a.mini_sym10_s0", "a.mini_sym30_s0"]
    p = StudyProgress(runs, 42, file=out, disable=False, clock=clock)
    assert "waiting" in p.lines()[0] and "0/42 fits" in p.lines()[1]
    for t in range(0, 101, 10):  # two runs in parallel, 1.2 steps/s each
        clock.t = float(t)
        p.report(runs[0], int(1.2 * t), 400, 0)
        p.report(runs[1], int(1.2 * t), 400, 0)
    pre, ev = p.lines()
    # 240 of 1,200 steps (the third run assumed as long as the others) at 2.4 steps/s: 400 s left
    assert pre.startswith("pretraining") and "240/1,200 steps" in pre and "ETA 6m40s" in pre
    assert ev.startswith("evaluation") and "0/42 fits" in ev and "waiting" in ev
    p.refresh()
    p.close()
    shown = out.getvalue()
    assert "pretraining" in shown and "evaluation" in shown and "ETA 6m40s" in shown


def test_resumed_steps_do_not_inflate_the_rate() -> None:
    clock = Clock()
    p = StudyProgress(["r"], 1, disable=True, clock=clock)
    p.report("r", 300, 400, 300)  # resumed at step 300: those steps were not done now
    clock.t = 10.0
    p.report("r", 310, 400, 300)
    assert "310/400 steps" in p.lines()[0] and "ETA 1m30s" in p.lines()[0]


def test_evaluation_eta_and_skipped_checkpoints() -> None:
    clock = Clock()
    p = StudyProgress(["done-before", "new"], 10, disable=True, clock=clock)
    p.run_finished("done-before")  # an existing checkpoint: no steps, not part of the rate
    p.report("new", 0, 100, 0)
    clock.t = 50.0
    p.report("new", 100, 100, 0)
    p.run_finished("new")
    assert "done in 50s" in p.lines()[0]
    p.jobs_queued()
    for k in range(1, 5):  # one job of 5 fits reports each as it finishes
        clock.t += 5
        p.fits("ckpt | task-a", k, 5)
    assert "4/10 fits" in p.lines()[1] and "ETA 30s" in p.lines()[1]
    p.job_done("ckpt | task-a", 5)
    p.fits("ckpt | task-a", 4, 5)  # a report that arrives late counts nothing twice
    assert "5/10 fits" in p.lines()[1]
    p.job_done("ckpt | task-b", 5)  # its reports never arrived: the finished job counts whole
    assert "10/10 fits" in p.lines()[1] and "done in" in p.lines()[1]


def test_worker_reports_reach_the_parent_through_the_queue(monkeypatch) -> None:
    import multiprocessing as mp

    from nmlbench.study import run as study_run

    monkeypatch.setenv("TQDM_DISABLE", "1")
    q = mp.get_context("spawn").Queue()
    study_run._worker_init(q)
    try:
        rep = tracking.StepReporter("r", 0, 8, every_s=3600)
        for step in range(1, 9):
            rep(step)  # throttled: the first and the last are sent
        tracking.report_fits("ckpt | task", 2, 3)  # an evaluation job's finished fits, tagged apart
    finally:
        tracking.set_progress_sink(None)
        tracking.set_fit_sink(None)
    p = StudyProgress(["r"], 3, disable=True)
    deadline = time.time() + 10
    while (p.runs["r"] != (8, 8, 0) or not p.jobs) and time.time() < deadline:
        study_run._drain(q, p)
    assert p.runs["r"] == (8, 8, 0) and "8/8 steps" in p.lines()[0]
    assert p.jobs == {"ckpt | task": 2} and "2/3 fits" in p.lines()[1]


def test_fmt_duration() -> None:
    assert [fmt_duration(s) for s in (None, 5, 125, 8 * 3600 + 60)] == ["?", "5s", "2m05s", "8h01m"]
