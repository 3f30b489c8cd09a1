"""Run a function over items in-process, as local subprocesses, or as SLURM jobs through submitit.

`run_jobs(fn, items, launcher, folder, slurm)` is the one entry point every stage uses for grids
(pretraining sweeps, evaluation grids). Jobs are submitit Checkpointables: on preemption or time-out
SLURM requeues them with the same arguments, and `fn` must resume from what it wrote to disk.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import submitit
from submitit.core.utils import FailedJobError, UncompletedJobError

from nmlbench.config import bounded
from nmlbench.errors import UserError

log = logging.getLogger(__name__)

Launcher = Literal["none", "local", "debug", "slurm"]
LAUNCHERS: tuple[str, ...] = ("none", "local", "debug", "slurm")


@dataclass(frozen=True)
class SlurmConfig:
    """SLURM resources for one job (one array task); `None` leaves the cluster's default.

    Attributes:
        timeout_min: wall-clock limit; submitit requeues the job when it is reached.
        tasks_per_node: processes per node; 0 means one per GPU (one if no GPU), as DDP wants.
        additional: any other sbatch option, e.g. {"reservation": "x"} (no leading dashes).
    """

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    timeout_min: int = bounded(60, ge=1)
    nodes: int = bounded(1, ge=1)
    gpus_per_node: int = bounded(0, ge=0)
    tasks_per_node: int = bounded(0, ge=0)
    cpus_per_task: int = bounded(1, ge=1)
    mem_gb: float | None = bounded(None, gt=0)
    constraint: str | None = None
    array_parallelism: int = bounded(64, ge=1)  # how many array tasks may run at once
    # submitit's max_num_timeout: preemptions/time-outs tolerated per job
    max_requeues: int = bounded(3, ge=0)
    setup: tuple[str, ...] = ()  # shell lines run before the job, e.g. "module load cuda"
    additional: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.timeout_min <= 0 or self.nodes <= 0 or self.cpus_per_task <= 0:
            raise ValueError("timeout_min, nodes and cpus_per_task must be positive")


class _Job(submitit.helpers.Checkpointable):
    """Calls `fn(item)`; turns a UserError into a value so no launcher drops into a debugger.

    The default `checkpoint()` resubmits this same callable with the same item: `fn` resumes
    from its own on-disk state, so nothing large is ever pickled.
    """

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    def __call__(self, item: Any) -> Any:
        try:
            return self.fn(item)
        except UserError as e:
            return _Failed(str(e))


@dataclass(frozen=True)
class _Failed:
    message: str


def executor_for(
    launcher: str, folder: str | Path, slurm: SlurmConfig | None, name: str = "nmlbench"
) -> submitit.Executor:
    """A submitit executor with `cluster=` always explicit (AutoExecutor guesses from PATH)."""
    if launcher not in ("local", "debug", "slurm"):
        raise UserError(f"unknown launcher {launcher!r}; use one of {', '.join(LAUNCHERS)}")
    cfg = slurm or SlurmConfig()
    try:
        extra = {"slurm_max_num_timeout": cfg.max_requeues} if launcher == "slurm" else {}
        ex = submitit.AutoExecutor(folder=str(folder), cluster=launcher, **extra)
    except RuntimeError as e:  # submitit: 'Could not detect "srun"'
        raise UserError(
            f"--launcher {launcher}: {e}; use --launcher local here, or submit from a SLURM login node"
        ) from None
    ntasks = cfg.tasks_per_node or max(cfg.gpus_per_node, 1)
    params: dict[str, Any] = dict(
        name=name,
        timeout_min=cfg.timeout_min,
        nodes=cfg.nodes,
        gpus_per_node=cfg.gpus_per_node,
        tasks_per_node=ntasks,
        cpus_per_task=cfg.cpus_per_task,
    )
    if launcher == "slurm":
        params.update(slurm_array_parallelism=cfg.array_parallelism)
        for key in ("partition", "account", "qos", "constraint"):
            if getattr(cfg, key) is not None:
                params[f"slurm_{key}"] = getattr(cfg, key)
        if cfg.mem_gb is not None:
            params["mem_gb"] = cfg.mem_gb
        if cfg.setup:
            params["slurm_setup"] = list(cfg.setup)
        if cfg.additional:
            params["slurm_additional_parameters"] = dict(cfg.additional)
    ex.update_parameters(**params)
    return ex


def run_jobs(
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    launcher: str = "none",
    folder: str | Path = "nmlbench-out/jobs",
    slurm: SlurmConfig | None = None,
    name: str = "nmlbench",
) -> list[Any]:
    """Apply `fn` to every item and return the results in order.

    Args:
        fn: a picklable callable (module-level function or object); it must be resumable.
        items: one element per job; several items on SLURM become one job array.
        launcher: "none" (plain loop in this process), "local" (submitit subprocesses),
            "debug" (submitit, in this process) or "slurm".
        folder: where submitit keeps logs and pickles (`%j` is added per job).
        slurm: resources; ignored by "none".
        name: the SLURM job name.

    Raises:
        UserError: a job raised one, or SLURM rejected the submission.
    """
    items = list(items)
    if launcher == "none":
        return [fn(item) for item in items]
    ex = executor_for(launcher, Path(folder) / "%j", slurm, name)
    job_fn = _Job(fn)
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # submitit echoes sbatch's stderr; we report it once
            jobs = (
                ex.map_array(job_fn, items) if launcher == "slurm" else [ex.submit(job_fn, i) for i in items]
            )
    except FailedJobError as e:
        raise UserError(f"SLURM rejected the job: {_first_line(e)}; fix the slurm.* options") from None
    for job in jobs:
        log.info("submitted job %s (logs: %s)", job.job_id, job.paths.stdout)
    return [_result(job) for job in jobs]


def _result(job: submitit.Job) -> Any:
    """Rank 0's return value; a job of several tasks (DDP under srun) returns one value per task."""
    try:
        outs = job.results()  # `job.result()` refuses a job of several tasks
    except UncompletedJobError as e:
        raise UserError(
            f"job {job.job_id} did not complete ({_first_line(e)}); "
            f"see {job.paths.stderr} and run the same command again to resume"
        ) from None
    except FailedJobError as e:
        raise RuntimeError(f"job {job.job_id} failed; log: {job.paths.stderr}\n{e}") from None
    failed = [out for out in outs if isinstance(out, _Failed)]
    if failed:
        raise UserError(failed[0].message)
    return outs[0]


def _first_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    errs = [ln for ln in lines if "error" in ln.lower()]
    return (errs or lines or ["no message"])[0]
