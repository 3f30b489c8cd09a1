"""Distributed set-up from torchrun's or srun's environment: rank, world size, device, backend."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def detect() -> DistInfo:
    """Rank/world from torchrun (RANK, WORLD_SIZE, LOCAL_RANK) or srun (SLURM_PROCID, ...).

    srun sets SLURM_* for every job step, including a one-task batch job, so srun's variables
    count only when SLURM_NTASKS > 1; torchrun's always win.
    """
    env = os.environ
    if "RANK" in env and "WORLD_SIZE" in env:
        return DistInfo(int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", 0)))
    if int(env.get("SLURM_NTASKS", "1")) > 1 and "SLURM_PROCID" in env:
        return DistInfo(int(env["SLURM_PROCID"]), int(env["SLURM_NTASKS"]), int(env.get("SLURM_LOCALID", 0)))
    return DistInfo(0, 1, 0)


def init(device_type: str) -> DistInfo:
    """Join the process group when there is more than one process (gloo on CPU, nccl on GPU)."""
    info = detect()
    if info.world_size == 1 or dist.is_initialized():
        return info
    if "MASTER_ADDR" not in os.environ:
        # Under srun without torchrun: submitit derives MASTER_ADDR/PORT from the SLURM job.
        import submitit

        submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    backend = "nccl" if device_type == "cuda" else "gloo"
    if device_type == "cuda":
        torch.cuda.set_device(info.local_rank)
    dist.init_process_group(backend=backend, rank=info.rank, world_size=info.world_size)
    return info


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
