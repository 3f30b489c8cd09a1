"""Distributed set-up from torchrun's or srun's environment: rank, world size, rendezvous, backend.

`rendezvous(env)` is a pure function of the environment, so every launch path can be checked without
a cluster: torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT, GROUP_WORLD_SIZE) win;
otherwise, inside an srun job step with more than one task, rank and world come from SLURM_PROCID /
SLURM_STEP_NUM_TASKS / SLURM_LOCALID and the rendezvous point is the step's first node, on a port derived
from the job id, so every task of every node computes the same address without talking to the others.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from nmlbench.errors import UserError

# submitit's TorchDistributedEnvironment draws the port the same way (random.Random(job id) in this
# range), so a job that also uses submitit's helper agrees with this one.
PORT_RANGE = (20000, 60000)


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    nodes: int | None = 1  # None: set by hand (RANK/WORLD_SIZE without torchrun or SLURM), unknown

    @property
    def is_main(self) -> bool:
        return self.rank == 0


@dataclass(frozen=True)
class Rendezvous:
    """Who this process is, and the variables to export before `init_process_group` (env://).

    Only MASTER_ADDR/MASTER_PORT are exported: rank and world go to `init_process_group` as arguments,
    and exporting RANK/WORLD_SIZE would make the next call (a second run in the same process) read
    them as torchrun's and lose the node count.
    """

    info: DistInfo
    exports: dict[str, str] = field(default_factory=dict)


def rendezvous(env: Mapping[str, str]) -> Rendezvous:
    """Rank, world, local rank, node count and rendezvous address from an environment.

    Raises:
        UserError: the variables contradict each other (a rank outside the world, RANK without
            WORLD_SIZE, a world of several processes and no address to meet at).
    """
    if "RANK" in env or "WORLD_SIZE" in env:
        return _from_torchrun(env)
    # submitit's LocalExecutor (--launcher local with slurm.tasks_per_node > 1) starts the tasks of one
    # job as processes on this machine; inside a SLURM step it is the inner launcher, so it comes first.
    if _int(env, "SUBMITIT_LOCAL_NTASKS", 1) > 1 and "SUBMITIT_LOCAL_GLOBALID" in env:
        return _from_submitit_local(env)
    # The batch script of `sbatch --ntasks=N` also has SLURM_NTASKS=N and SLURM_PROCID=0, but only one
    # process runs it: SLURM's variables describe a world only inside a job step (srun sets SLURM_STEP_ID).
    if "SLURM_STEP_ID" in env and "SLURM_PROCID" in env:
        world = _int(env, "SLURM_STEP_NUM_TASKS", _int(env, "SLURM_NTASKS", 1))
        if world > 1:
            return _from_srun(env, world)
    return Rendezvous(DistInfo(0, 1, 0, 1))


def _from_torchrun(env: Mapping[str, str]) -> Rendezvous:
    if "RANK" not in env or "WORLD_SIZE" not in env:
        have, lack = ("RANK", "WORLD_SIZE") if "RANK" in env else ("WORLD_SIZE", "RANK")
        raise UserError(f"{have} is set but {lack} is not; launch with torchrun, or unset {have}")
    rank, world = _int(env, "RANK"), _int(env, "WORLD_SIZE")
    _check_rank(rank, world, "RANK", "WORLD_SIZE", "launch with torchrun, or unset RANK and WORLD_SIZE")
    nodes = _int(env, "GROUP_WORLD_SIZE") if "GROUP_WORLD_SIZE" in env else (1 if world == 1 else None)
    info = DistInfo(rank, world, _int(env, "LOCAL_RANK", 0), nodes)
    if world > 1 and not ("MASTER_ADDR" in env and "MASTER_PORT" in env):
        raise UserError(
            f"WORLD_SIZE={world} but MASTER_ADDR or MASTER_PORT is not set; launch with torchrun, "
            "or export both (the address and a free port of rank 0's host)"
        )
    return Rendezvous(info)


def _from_srun(env: Mapping[str, str], world: int) -> Rendezvous:
    rank, local = _int(env, "SLURM_PROCID"), _int(env, "SLURM_LOCALID", 0)
    world_key = "SLURM_STEP_NUM_TASKS" if "SLURM_STEP_NUM_TASKS" in env else "SLURM_NTASKS"
    _check_rank(rank, world, "SLURM_PROCID", world_key, "run the tasks with srun inside the job")
    nodes = _int(env, "SLURM_STEP_NUM_NODES", _int(env, "SLURM_NNODES", 1))
    node = _int(env, "SLURM_NODEID", 0)
    if not 0 <= node < nodes:
        raise UserError(f"SLURM_NODEID={node} is not below SLURM_NNODES={nodes}; run the tasks with srun")
    exports = {}
    if "MASTER_ADDR" not in env:
        # srun starts task 0 on the step's first node (SLURM sorts node lists), so rank 0, which hosts
        # the rendezvous store, listens there.
        hosts = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST")
        if not hosts:
            raise UserError(
                f"SLURM_NTASKS={world} but no SLURM node list is set; run the tasks with srun, "
                "or export MASTER_ADDR and MASTER_PORT"
            )
        exports["MASTER_ADDR"] = expand_nodelist(hosts)[0]
    if "MASTER_PORT" not in env:
        exports["MASTER_PORT"] = str(job_port(env))
    else:
        _int(env, "MASTER_PORT")
    return Rendezvous(DistInfo(rank, world, local, nodes), exports)


def _from_submitit_local(env: Mapping[str, str]) -> Rendezvous:
    rank, world = _int(env, "SUBMITIT_LOCAL_GLOBALID"), _int(env, "SUBMITIT_LOCAL_NTASKS")
    _check_rank(
        rank, world, "SUBMITIT_LOCAL_GLOBALID", "SUBMITIT_LOCAL_NTASKS", "start the job with submitit"
    )
    local = _int(env, "SUBMITIT_LOCAL_LOCALID", rank)
    # All tasks run on this machine: an inherited MASTER_ADDR/PORT (from an outer launcher) would point
    # elsewhere, so both are always set. The job id is the pid of submitit's controller: one per job.
    port = random.Random(env.get("SUBMITIT_LOCAL_JOB_ID", "0")).randint(*PORT_RANGE)
    return Rendezvous(DistInfo(rank, world, local, 1), {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})


def job_port(env: Mapping[str, str]) -> int:
    """The same port for every task of one job, different for each array task (they may share a node)."""
    job = env.get("SLURM_JOB_ID", "0")
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        job = f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return random.Random(job).randint(*PORT_RANGE)


def expand_nodelist(nodelist: str) -> list[str]:
    """SLURM's compressed host list, e.g. "gpu[07-08,10],cpu3" -> gpu07, gpu08, gpu10, cpu3."""
    hosts: list[str] = []
    prefixes, i = [""], 0
    try:
        while i < len(nodelist):
            c = nodelist[i]
            if c == ",":
                hosts += prefixes
                prefixes, i = [""], i + 1
            elif c == "[":
                end = nodelist.index("]", i)
                prefixes = [p + s for p in prefixes for s in _expand_ids(nodelist[i + 1 : end])]
                i = end + 1
            else:
                prefixes, i = [p + c for p in prefixes], i + 1
    except ValueError:
        raise UserError(f"cannot read the SLURM node list {nodelist!r}; export MASTER_ADDR instead") from None
    hosts += prefixes
    if not all(hosts):
        raise UserError(f"cannot read the SLURM node list {nodelist!r}; export MASTER_ADDR instead")
    return hosts


def _expand_ids(spec: str) -> list[str]:
    out = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        if not hi:
            out.append(lo)
            continue
        out += [f"{n:0{len(lo)}d}" for n in range(int(lo), int(hi) + 1)]  # keeps zero padding: 07, 08
    return out


def _int(env: Mapping[str, str], key: str, default: int | None = None) -> int:
    if key not in env and default is not None:
        return default
    try:
        return int(env[key])
    except ValueError:
        raise UserError(
            f"{key}={env[key]!r} is not an integer; unset it or launch with torchrun/srun"
        ) from None


def _check_rank(rank: int, world: int, rank_key: str, world_key: str, fix: str) -> None:
    if world < 1:
        raise UserError(f"{world_key}={world} must be at least 1; {fix}")
    if not 0 <= rank < world:
        raise UserError(f"{rank_key}={rank} is not in [0, {world_key}={world}); {fix}")


def cuda_index(local_rank: int, visible: int) -> int:
    """This process's GPU: its local rank among the node's GPUs, or the one GPU it was given.

    SLURM's per-task GPU binding (--gpus-per-task, --gpu-bind) and submitit's own helper leave each
    task exactly one visible GPU, whatever its local rank.
    """
    if visible == 1:
        return 0
    if not 0 <= local_rank < visible:
        raise UserError(
            f"local rank {local_rank} but {visible} GPUs are visible; start one process per GPU "
            "(torchrun --nproc_per_node, or slurm.tasks_per_node=0 for one per GPU)"
        )
    return local_rank


def detect() -> DistInfo:
    """This process's rank/world (see `rendezvous`)."""
    return rendezvous(os.environ).info


def init(device_type: str) -> DistInfo:
    """Join the process group when there is more than one process (gloo on CPU, nccl on GPU)."""
    rv = rendezvous(os.environ)
    info = rv.info
    if info.world_size == 1 or dist.is_initialized():
        return info
    os.environ.update(rv.exports)  # env:// reads MASTER_ADDR/PORT
    backend = "nccl" if device_type == "cuda" else "gloo"
    if device_type == "cuda":
        torch.cuda.set_device(cuda_index(info.local_rank, torch.cuda.device_count()))
    dist.init_process_group(backend=backend, rank=info.rank, world_size=info.world_size)
    return info


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
