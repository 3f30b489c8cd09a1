"""Launching work: in-process, local subprocesses or SLURM (submitit), and DDP environments."""

from __future__ import annotations

from nmlbench.launch.slurm import LAUNCHERS as LAUNCHERS
from nmlbench.launch.slurm import SlurmConfig as SlurmConfig
from nmlbench.launch.slurm import run_jobs as run_jobs

__all__ = ["LAUNCHERS", "SlurmConfig", "run_jobs"]
