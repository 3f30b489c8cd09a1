"""The generic launcher (in-process, submitit debug/local) and DDP with two gloo processes."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from nmlbench.errors import UserError
from nmlbench.launch import SlurmConfig, run_jobs
from nmlbench.launch.dist import detect
from nmlbench.launch.slurm import executor_for

HERE = Path(__file__).parent


def refuse(x: int) -> int:
    raise UserError(f"item {x} is bad; use a good one")


@pytest.mark.parametrize("launcher", ["none", "debug", "local"])
def test_run_jobs_returns_results_in_order(tmp_path, launcher):
    # local jobs unpickle `fn` in a fresh process: it must live in an importable module
    assert run_jobs(math.factorial, [1, 3, 4], launcher=launcher, folder=tmp_path) == [1, 6, 24]


@pytest.mark.parametrize("launcher", ["none", "debug"])
def test_user_error_in_a_job_is_a_user_error_here(tmp_path, launcher):
    # The debug executor would open pdb on an exception: UserErrors never reach it.
    with pytest.raises(UserError, match="item 2 is bad"):
        run_jobs(refuse, [2], launcher=launcher, folder=tmp_path)


def test_a_job_of_two_tasks_returns_rank_zeros_result(tmp_path):
    # A DDP job under SLURM is one job of several tasks; submitit's `job.result()` refuses those.
    two = SlurmConfig(tasks_per_node=2)
    assert run_jobs(math.factorial, [3, 4], launcher="local", folder=tmp_path, slurm=two) == [6, 24]


def test_slurm_parameters_from_config(tmp_path, monkeypatch):
    from submitit.slurm.slurm import SlurmExecutor

    monkeypatch.setattr(SlurmExecutor, "affinity", staticmethod(lambda: 1))  # as if srun were installed
    cfg = SlurmConfig(
        partition="gpu",
        account="proj",
        gpus_per_node=4,
        timeout_min=30,
        additional={"reservation": "r1"},
        setup=("module load cuda",),
    )
    ex = executor_for("slurm", tmp_path, cfg)
    params = ex._executor.parameters
    assert params["partition"] == "gpu" and params["account"] == "proj" and params["gpus_per_node"] == 4
    assert params["ntasks_per_node"] == 4 and params["time"] == 30
    assert params["additional_parameters"] == {"reservation": "r1"} and params["setup"] == [
        "module load cuda"
    ]
    assert "#SBATCH --partition=gpu" in ex._executor._make_submission_file_text("x", "1")
    with pytest.raises(UserError, match="unknown launcher"):
        executor_for("kubernetes", tmp_path, cfg)


def test_rank_from_torchrun_or_srun(monkeypatch):
    for k in list(os.environ):
        if k.startswith("SLURM_") or k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
            monkeypatch.delenv(k)
    assert detect().world_size == 1
    # an srun job step (tests/unit/pretrain/test_multinode.py checks the rendezvous in depth)
    monkeypatch.setenv("SLURM_STEP_ID", "0")
    monkeypatch.setenv("SLURM_JOB_NODELIST", "localhost")
    monkeypatch.setenv("SLURM_PROCID", "3")
    monkeypatch.setenv("SLURM_NTASKS", "4")
    monkeypatch.setenv("SLURM_LOCALID", "1")
    assert (detect().rank, detect().world_size, detect().local_rank) == (3, 4, 1)
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "29500")
    assert (detect().rank, detect().world_size) == (0, 2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_gloo_processes(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        f"--master_port={_free_port()}",
        str(HERE / "fakes.py"),
        "pretrain",
        "--noise",
        "10%",
        "--out",
        str(tmp_path),
        "--set",
        "optim.epochs=2",
        "--set",
        "optim.batch_size=16",
        "--set",
        "ckpt_every_steps=3",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1", TQDM_DISABLE="1")
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        _, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:  # never leave the two workers behind
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, err[-2000:]
    ck = tmp_path / "ckpt" / "tinyresnet.mini_sym10_s0"
    meta = json.loads((ck / "checkpoint.json").read_text())
    assert meta["world_size"] == 2 and meta["step"] == 8  # 128 samples / (16 x 2) = 4 steps per epoch
