"""Run the study: for each noise rate, a manifest and a pretrained model; every method on every task.

Work goes to one process pool (one torch thread per worker: on a 2-core machine two 1-thread
processes beat one 2-thread process). The evaluation jobs of a checkpoint are queued as soon as its
pretraining finishes, so no core idles while the last run trains. Every stage skips finished work,
so an interrupted study resumes where it stopped when the same command is run again.

Progress shows the stages (study/progress.py): workers send their pretraining step counts to this
process through a queue, finished evaluation jobs are counted here.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nmlbench import tracking
from nmlbench.config import bounded, seed_field
from nmlbench.paths import output_root
from nmlbench.rates import rate_tag
from nmlbench.study.progress import StudyProgress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StudyOptions:
    """What `nmlbench run` runs; the defaults are the built-in mini study."""

    rates: tuple[float, ...] = bounded((0.0, 0.1, 0.3), ge=0, lt=1)  # pretraining label/caption noise rates
    preset: str = "mini-resnet"  # pretraining preset (nmlbench pretrain --preset)
    pretrain_seeds: tuple[int, ...] = seed_field((0,))
    methods: tuple[str, ...] = ("all",)
    suite: str = "mini"
    tasks: tuple[str, ...] = ()  # narrow the suite to these tasks (an OOD task needs its train task)
    seeds: tuple[int, ...] = seed_field((0,))  # tuning seeds
    workers: int = bounded(0, ge=0)  # worker processes; 0: one per core; 1: everything in this process
    pretrain_overrides: tuple[str, ...] = ()
    eval_overrides: tuple[str, ...] = ()
    root: str | None = None
    data_root: str | None = None


@dataclass(frozen=True)
class Plan:
    """The study as jobs: pretraining configs and, per checkpoint, its evaluation jobs."""

    pretrain: list[Any]  # PretrainConfig, one per (pretraining seed, rate)
    ckpts: list[str]  # where each will be written (pretraining skips finished ones)
    evaluation: list[list[Any]]  # nmlbench.eval.run.Job lists, one list per checkpoint


def _worker_init(progress: Any = None) -> None:
    os.environ["TQDM_DISABLE"] = "1"  # per-run bars from parallel workers would interleave
    import torch

    torch.set_num_threads(1)
    if progress is not None:  # pretraining steps and evaluation fits go to the parent, tagged
        tracking.set_progress_sink(lambda *msg: progress.put(("steps", *msg)))
        tracking.set_fit_sink(lambda *msg: progress.put(("fits", *msg)))


def _pretrain_one(cfg: Any, root: str, data_root: str | None) -> str:
    from nmlbench.pretrain.train import pretrain

    return str(pretrain(cfg, root=root, data_root=data_root))


def make_plan(opts: StudyOptions, root: Path) -> Plan:
    """Resolve every name up front, so a typo fails before minutes of pretraining."""
    from nmlbench.eval import EvalOptions
    from nmlbench.eval.config import load_eval_config
    from nmlbench.eval.run import default_preset, expand_methods, plan_jobs, preflight
    from nmlbench.pretrain.config import load_pretrain_config
    from nmlbench.pretrain.train import checkpoint_dir
    from nmlbench.tuning import TUNERS

    # `all`: the classification methods, or the dense ones (det-*) on a suite of detection /
    # segmentation tasks; a method of the other kind is refused by plan_jobs, before any pretraining
    methods = expand_methods(list(opts.methods), opts.suite, opts.tasks)
    for m in methods:
        TUNERS.get(m)
    cfgs = [
        load_pretrain_config(
            opts.preset, None, [*opts.pretrain_overrides, f"noise.rate={rate}", f"seed={seed}"]
        )
        for seed in opts.pretrain_seeds
        for rate in opts.rates
    ]
    ckpts = [str(checkpoint_dir(c, root)) for c in cfgs]
    eval_cfg = load_eval_config(default_preset(opts.suite), None, opts.eval_overrides)  # before any work
    eval_opts = EvalOptions(tasks=opts.tasks, overrides=opts.eval_overrides, data_root=opts.data_root)
    jobs = [
        plan_jobs([c], methods, opts.suite, list(opts.seeds), str(root), eval_opts, eval_cfg) for c in ckpts
    ]
    preflight(jobs[0] if jobs else [])  # every task's data read and checked before any pretraining
    check_architectures(cfgs, methods, eval_cfg)
    return Plan(cfgs, ckpts, jobs)


def check_architectures(cfgs: list[Any], methods: list[str], eval_cfg: Any) -> None:
    """Every method can run on every architecture the study pretrains (detection needs a CNN pyramid,
    LoRA its target layers, LEVI tap points), checked on a seeded random init of each: a ViT preset
    with `--modality dense` fails here in one line, not after its pretraining."""
    from nmlbench.eval.run import check_methods_on, picky_methods
    from nmlbench.models import load_backbone

    if not picky_methods(methods):
        return
    for model, size in dict.fromkeys((c.model, c.image_size) for c in cfgs):
        backbone = load_backbone(model, pretrained=False, image_size=size, text=eval_cfg.text)
        check_methods_on(backbone, methods, eval_cfg)


def execute(plan: Plan, opts: StudyOptions, root: Path) -> tuple[list[Path], float]:
    """Run the plan; returns the record paths (in plan order) and the pretraining wall time."""
    from nmlbench.eval.run import job_name, run_job
    from nmlbench.mini import load_upstream

    load_upstream(opts.data_root)  # generate the mini data once, before workers could race for it
    t0 = time.perf_counter()
    workers = opts.workers or (os.cpu_count() or 1)
    names = [Path(c).name for c in plan.ckpts]
    progress = StudyProgress(names, sum(j.cells for jobs in plan.evaluation for j in jobs))
    if workers <= 1:
        tracking.set_progress_sink(lambda *msg: (progress.report(*msg), progress.refresh()))
        tracking.set_fit_sink(lambda *msg: (progress.fits(*msg), progress.refresh()))
        try:
            for name, cfg in zip(names, plan.pretrain, strict=True):
                _pretrain_one(cfg, str(root), opts.data_root)
                progress.run_finished(name)
                progress.refresh()
            t_pre = time.perf_counter() - t0
            progress.jobs_queued()
            records = []
            for j in (j for jobs in plan.evaluation for j in jobs):
                records += [Path(p) for p in run_job(j)]
                progress.job_done(job_name(j), j.cells)
                progress.refresh()
        finally:
            tracking.set_progress_sink(None)
            tracking.set_fit_sink(None)
        progress.close()
        return records, t_pre
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init, initargs=(queue,)) as pool:
        pre: dict[Future, int] = {
            pool.submit(_pretrain_one, c, str(root), opts.data_root): i for i, c in enumerate(plan.pretrain)
        }
        evals: list[list[Future]] = [[] for _ in plan.pretrain]
        jobs: dict[Future, Any] = {}
        pending, t_pre = set(pre), 0.0
        while pending:
            done, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
            _drain(queue, progress)
            for fut in done:
                if fut not in pre:  # its error, if any, is raised below with the others'
                    progress.job_done(job_name(jobs[fut]), jobs[fut].cells)
                    continue
                fut.result()  # a failed pretraining run stops the study here, with its own error
                i = pre[fut]
                progress.run_finished(names[i])
                evals[i] = [pool.submit(run_job, j) for j in plan.evaluation[i]]
                jobs.update(zip(evals[i], plan.evaluation[i], strict=True))
                pending |= set(evals[i])
                progress.jobs_queued()
                t_pre = time.perf_counter() - t0
            progress.refresh()
        records = [Path(p) for futs in evals for f in futs for p in f.result()]
    progress.close()
    return records, t_pre


def _drain(queue: Any, progress: StudyProgress) -> None:
    import queue as q

    while True:
        try:
            kind, *msg = queue.get_nowait()
        except q.Empty:
            return
        (progress.report if kind == "steps" else progress.fits)(*msg)


def run_study(opts: StudyOptions) -> tuple[list[Path], str]:
    """Pretrain, evaluate, summarise. Returns the record paths and the printed table."""
    from nmlbench.study.summary import study_table

    root = output_root(opts.root)
    plan = make_plan(opts, root)
    t0 = time.perf_counter()
    records, t_pre = execute(plan, opts, root)
    total = time.perf_counter() - t0
    log.info("study done in %.0f s (%d records)", total, len(records))
    table = study_table(records)
    rates = ", ".join(f"{rate_tag(r)} %" for r in opts.rates)
    header = (
        f"nmlbench study: suite {opts.suite}, preset {opts.preset}, noise {rates}; "
        f"{len(plan.ckpts)} checkpoints, {len(records)} results in {total / 60:.1f} min "
        f"(pretraining finished after {t_pre / 60:.1f} min)"
    )
    return records, f"{header}\n\n{table}"
