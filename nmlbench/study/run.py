"""Run the study: for each noise rate, a manifest and a pretrained model; every method on every task.

Pretraining runs are independent, so they go to a small process pool (one torch thread each: on a
2-core machine two 1-thread processes beat one 2-thread process). Every stage skips finished work, so an
interrupted study resumes where it stopped when the same command is run again.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from nmlbench.paths import output_root
from nmlbench.rates import rate_tag

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StudyOptions:
    """What `nmlbench run` runs; the defaults are the built-in mini study."""

    rates: tuple[float, ...] = (0.0, 0.1, 0.3)  # pretraining label/caption noise rates
    preset: str = "mini-resnet"  # pretraining preset (nmlbench pretrain --preset)
    pretrain_seeds: tuple[int, ...] = (0,)
    methods: tuple[str, ...] = ("all",)
    suite: str = "mini"
    tasks: tuple[str, ...] = ()  # narrow the suite to these tasks (an OOD task needs its train task)
    seeds: tuple[int, ...] = (0,)  # tuning seeds
    workers: int = 0  # processes for pretraining; 0: one per core, at most one per run
    pretrain_overrides: tuple[str, ...] = ()
    eval_overrides: tuple[str, ...] = ()
    root: str | None = None
    data_root: str | None = None


def _worker_init() -> None:
    """One torch thread per worker: two 1-thread processes on 2 cores beat oversubscribed ones."""
    os.environ["TQDM_DISABLE"] = "1"  # per-run bars from parallel workers would interleave
    import torch

    torch.set_num_threads(1)


def _pool(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_worker_init)


def _progress(futures: list, desc: str) -> list:
    """Wait for `futures` with one bar for the whole stage; results in submission order."""
    from concurrent.futures import as_completed

    from tqdm import tqdm

    for _ in tqdm(as_completed(futures), total=len(futures), desc=desc, unit="job"):
        pass
    return [f.result() for f in futures]


def _pretrain_one(args: tuple[str, tuple[str, ...], str | None, str | None]) -> str:
    from nmlbench.pretrain.config import load_pretrain_config
    from nmlbench.pretrain.train import pretrain

    preset, overrides, root, data_root = args
    cfg = load_pretrain_config(preset, None, list(overrides))
    return str(pretrain(cfg, root=root, data_root=data_root))


def pretrain_all(opts: StudyOptions, root: Path) -> list[str]:
    """One checkpoint per (rate, pretraining seed), in that order; finished runs are reused."""
    jobs = []
    for seed in opts.pretrain_seeds:
        for rate in opts.rates:
            overrides = (*opts.pretrain_overrides, f"noise.rate={rate}", f"seed={seed}")
            jobs.append((opts.preset, overrides, str(root), opts.data_root))
    # Make the mini data and the manifests once, in this process, before the pool starts, so
    # workers never race to generate the same cache.
    _prepare(opts)
    workers = opts.workers or min(len(jobs), os.cpu_count() or 1)
    if workers <= 1 or len(jobs) == 1:
        return [_pretrain_one(j) for j in jobs]
    with _pool(workers) as pool:
        return _progress([pool.submit(_pretrain_one, j) for j in jobs], "pretrain")


def _prepare(opts: StudyOptions) -> None:
    from nmlbench.mini import load_upstream

    load_upstream(opts.data_root)


def evaluate_all(opts: StudyOptions, ckpts: list[str], root: Path) -> list[Path]:
    """Every method on every task for every checkpoint; (model, train task) jobs shared by a pool."""
    from nmlbench.eval import EvalOptions, evaluate
    from nmlbench.eval.run import plan_jobs, run_job
    from nmlbench.tuning import ALL_METHODS

    eval_opts = EvalOptions(tasks=opts.tasks, overrides=opts.eval_overrides, data_root=opts.data_root)
    methods = list(ALL_METHODS) if list(opts.methods) == ["all"] else list(opts.methods)
    workers = opts.workers or (os.cpu_count() or 1)
    if workers <= 1:
        return evaluate(ckpts, methods, opts.suite, list(opts.seeds), root=root, options=eval_opts)
    jobs = plan_jobs(ckpts, methods, opts.suite, list(opts.seeds), str(root), eval_opts)
    with _pool(workers) as pool:
        results = _progress([pool.submit(run_job, j) for j in jobs], "evaluate")
    return [Path(p) for paths in results for p in paths]


def check(opts: StudyOptions) -> None:
    """Fail on a bad name before minutes of pretraining, not after."""
    from nmlbench.pretrain.config import load_pretrain_config
    from nmlbench.tasks import get_suite
    from nmlbench.tuning import TUNERS

    if list(opts.methods) != ["all"]:
        for m in opts.methods:
            TUNERS.get(m)
    get_suite(opts.suite)
    load_pretrain_config(opts.preset, None, list(opts.pretrain_overrides))


def run_study(opts: StudyOptions) -> tuple[list[Path], str]:
    """Pretrain, evaluate, summarise. Returns the record paths and the printed table."""
    from nmlbench.study.summary import study_table

    check(opts)
    root = output_root(opts.root)
    t0 = time.perf_counter()
    ckpts = pretrain_all(opts, root)
    t1 = time.perf_counter()
    log.info("pretraining done in %.0f s: %s", t1 - t0, ", ".join(Path(c).name for c in ckpts))
    records = evaluate_all(opts, ckpts, root)
    t2 = time.perf_counter()
    log.info("evaluation done in %.0f s (%d records)", t2 - t1, len(records))
    table = study_table(records)
    rates = ", ".join(f"{rate_tag(r)} %" for r in opts.rates)
    header = (f"nmlbench study: suite {opts.suite}, preset {opts.preset}, noise {rates}; "
              f"pretrain {t1 - t0:.0f} s, evaluate {t2 - t1:.0f} s")
    return records, f"{header}\n\n{table}"
