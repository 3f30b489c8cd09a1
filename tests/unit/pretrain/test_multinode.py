"""Multi-node rendezvous: the pure function on fake SLURM/torchrun environments, and two torchrun agents
as two "nodes" on this machine (gloo over localhost), bit-identical to one agent with the same world."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from fakes import TINY

from nmlbench.errors import UserError
from nmlbench.launch.dist import DistInfo, cuda_index, detect, expand_nodelist, rendezvous

HERE = Path(__file__).parent


def srun_task(procid: int, nodes: int = 2, per_node: int = 2, **extra: str) -> dict[str, str]:
    """What srun puts in the environment of task `procid` of a `--nodes=2 --ntasks-per-node=2` job step."""
    env = dict(
        SLURM_JOB_ID="4242",
        SLURM_JOB_NODELIST="node[07-08]",
        SLURM_NODELIST="node[07-08]",
        SLURM_STEP_NODELIST="node[07-08]",
        SLURM_JOB_NUM_NODES=str(nodes),
        SLURM_NNODES=str(nodes),
        SLURM_STEP_NUM_NODES=str(nodes),
        SLURM_NTASKS=str(nodes * per_node),
        SLURM_STEP_NUM_TASKS=str(nodes * per_node),
        SLURM_NTASKS_PER_NODE=str(per_node),
        SLURM_STEP_ID="0",
        SLURM_NODEID=str(procid // per_node),
        SLURM_PROCID=str(procid),
        SLURM_LOCALID=str(procid % per_node),
    )
    env.update(extra)
    return env


def test_two_nodes_of_two_tasks_meet_at_the_first_node():
    got = [rendezvous(srun_task(p)) for p in range(4)]
    assert [rv.info for rv in got] == [
        DistInfo(0, 4, 0, 2),
        DistInfo(1, 4, 1, 2),
        DistInfo(2, 4, 0, 2),
        DistInfo(3, 4, 1, 2),
    ]
    assert {rv.exports["MASTER_ADDR"] for rv in got} == {"node07"}
    ports = {rv.exports["MASTER_PORT"] for rv in got}
    assert len(ports) == 1 and 20000 <= int(ports.pop()) <= 60000
    # A second run in the same process sees what the first exported: it must read the same world.
    again = [rendezvous({**srun_task(p), **rv.exports}) for p, rv in enumerate(got)]
    assert [rv.info for rv in again] == [rv.info for rv in got]


def test_array_tasks_get_their_own_port():
    # Two array tasks of one sweep may land on the same node: they must not share a rendezvous port.
    ports = {
        rendezvous(srun_task(0, SLURM_ARRAY_JOB_ID="4242", SLURM_ARRAY_TASK_ID=str(t))).exports["MASTER_PORT"]
        for t in range(8)
    }
    assert len(ports) == 8


def test_agrees_with_submitits_helper(monkeypatch):
    # submitit's TorchDistributedEnvironment (what --launcher slurm jobs used before) reads os.environ.
    from submitit.helpers import TorchDistributedEnvironment

    for k in list(os.environ):
        if k.startswith("SLURM_") or k in ("MASTER_ADDR", "MASTER_PORT"):
            monkeypatch.delenv(k)
    for p in range(4):
        env = srun_task(p, SLURM_ARRAY_JOB_ID="77", SLURM_ARRAY_TASK_ID="3")
        for k, v in dict(env, SUBMITIT_EXECUTOR="slurm").items():
            monkeypatch.setenv(k, v)
        theirs, ours = TorchDistributedEnvironment(), rendezvous(env)
        assert (theirs.master_addr, str(theirs.master_port)) == (
            ours.exports["MASTER_ADDR"],
            ours.exports["MASTER_PORT"],
        )
        mine = ours.info
        assert (theirs.rank, theirs.world_size, theirs.local_rank) == (
            mine.rank,
            mine.world_size,
            mine.local_rank,
        )


def test_torchrun_wins_over_slurm():
    env = srun_task(
        2,
        RANK="5",
        WORLD_SIZE="8",
        LOCAL_RANK="1",
        GROUP_WORLD_SIZE="2",
        MASTER_ADDR="10.0.0.1",
        MASTER_PORT="29400",
    )
    rv = rendezvous(env)
    assert rv.info == DistInfo(5, 8, 1, 2) and rv.exports == {}


def test_set_master_addr_and_port_are_kept():
    rv = rendezvous(srun_task(1, MASTER_ADDR="ib-node07", MASTER_PORT="31000"))
    assert "MASTER_ADDR" not in rv.exports and "MASTER_PORT" not in rv.exports


def test_batch_script_of_a_multi_task_job_is_one_process(monkeypatch):
    # `sbatch --ntasks=2` runs its script once, with SLURM_NTASKS=2 and SLURM_PROCID=0 but no job step:
    # counting it as rank 0 of 2 made `nmlbench pretrain` run there wait forever for a rank 1.
    for k in list(os.environ):
        if k.startswith("SLURM_") or k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
            monkeypatch.delenv(k)
    batch = srun_task(0, nodes=1)
    for k in ("SLURM_STEP_ID", "SLURM_STEP_NUM_TASKS", "SLURM_STEP_NUM_NODES", "SLURM_STEP_NODELIST"):
        del batch[k]
    for k, v in batch.items():
        monkeypatch.setenv(k, v)
    assert detect().world_size == 1


def test_one_process_without_any_launcher():
    assert rendezvous({}).info == DistInfo(0, 1, 0, 1)
    assert rendezvous(srun_task(0, nodes=1, per_node=1)).info == DistInfo(0, 1, 0, 1)
    assert rendezvous({"RANK": "0", "WORLD_SIZE": "1"}).info.nodes == 1


@pytest.mark.parametrize(
    "env, says",
    [
        ({"RANK": "1"}, "RANK is set but WORLD_SIZE is not; launch with torchrun, or unset RANK"),
        ({"WORLD_SIZE": "2"}, "WORLD_SIZE is set but RANK is not"),
        ({"RANK": "2", "WORLD_SIZE": "2"}, "RANK=2 is not in [0, WORLD_SIZE=2)"),
        ({"RANK": "x", "WORLD_SIZE": "2"}, "RANK='x' is not an integer"),
        ({"RANK": "0", "WORLD_SIZE": "0"}, "WORLD_SIZE=0 must be at least 1"),
        ({"RANK": "0", "WORLD_SIZE": "2"}, "MASTER_ADDR or MASTER_PORT is not set"),
        (srun_task(0, SLURM_PROCID="4"), "SLURM_PROCID=4 is not in [0, SLURM_STEP_NUM_TASKS=4)"),
        (srun_task(3, SLURM_NODEID="2"), "SLURM_NODEID=2 is not below SLURM_NNODES=2"),
        (srun_task(0, SLURM_STEP_NODELIST="node[07-", SLURM_JOB_NODELIST=""), "cannot read the SLURM node"),
        (srun_task(0, MASTER_PORT="auto"), "MASTER_PORT='auto' is not an integer"),
    ],
)
def test_inconsistent_environment_is_one_line_naming_the_fix(env, says):
    with pytest.raises(UserError) as e:
        rendezvous(env)
    msg = str(e.value)
    assert says in msg and "\n" not in msg and "; " in msg


def test_no_node_list_and_no_address():
    env = srun_task(0)
    for k in ("SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST", "SLURM_NODELIST"):
        del env[k]
    with pytest.raises(UserError, match="no SLURM node list is set; run the tasks with srun, or export"):
        rendezvous(env)


@pytest.mark.parametrize(
    "nodelist, hosts",
    [
        ("localhost", ["localhost"]),
        ("node[07-08]", ["node07", "node08"]),
        ("gpu[1,3-4],cpu7", ["gpu1", "gpu3", "gpu4", "cpu7"]),
        ("r[1-2]-n[09-10]", ["r1-n09", "r1-n10", "r2-n09", "r2-n10"]),
    ],
)
def test_expand_nodelist(nodelist, hosts):
    assert expand_nodelist(nodelist) == hosts


def test_gpu_of_a_process():
    assert [cuda_index(r, 8) for r in range(8)] == list(range(8))
    assert cuda_index(5, 1) == 0  # SLURM bound one GPU to this task
    with pytest.raises(UserError, match="local rank 4 but 2 GPUs are visible; start one process per GPU"):
        cuda_index(4, 2)


def test_cli_refuses_a_half_set_world(tmp_path, monkeypatch, capsys, tiny_mini):
    from nmlbench.cli import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("RANK", raising=False)
    assert main(["pretrain", "--noise", "10%", "--out", str(tmp_path), *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "WORLD_SIZE is set but RANK is not" in err
    assert not (tmp_path / "ckpt").exists()


def test_submitit_local_tasks_meet_on_this_machine():
    env = dict(
        srun_task(1),  # an outer SLURM step: the local executor inside it is the launcher that counts
        SUBMITIT_LOCAL_NTASKS="2",
        SUBMITIT_LOCAL_GLOBALID="1",
        SUBMITIT_LOCAL_LOCALID="1",
        SUBMITIT_LOCAL_JOB_ID="31337",
        MASTER_ADDR="node07",
    )
    rv = rendezvous(env)
    assert rv.info == DistInfo(1, 2, 1, 1) and rv.exports["MASTER_ADDR"] == "127.0.0.1"
    assert (
        rv.exports["MASTER_PORT"] == rendezvous(dict(env, SUBMITIT_LOCAL_GLOBALID="0")).exports["MASTER_PORT"]
    )


def test_local_launcher_with_two_tasks_is_one_ddp_run(tmp_path):
    # `--launcher local --set slurm.tasks_per_node=2`: submitit starts two processes on this machine;
    # they used to train side by side as two runs of world size 1, writing the same files.
    import numpy as np
    from PIL import Image

    from nmlbench.cli import main
    from nmlbench.noise import NoiseConfig, SourceSpec, apply_noise

    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (tmp_path / "data" / c).mkdir(parents=True)
        for i in range(16):
            img = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(img).save(tmp_path / "data" / c / f"{i:02d}.png")
    src = SourceSpec(type="imagefolder", path=str(tmp_path / "data"))
    man = apply_noise(src, NoiseConfig(kind="symmetric_label", rate=0.25), root=tmp_path / "out")
    sets = {
        "data.source": "imagefolder",
        "data.path": str(tmp_path / "data"),
        "data.name": "folder",
        "data.manifest": str(man),
        "optim.epochs": "1",
        "optim.batch_size": "8",
        "optim.warmup_steps": "0",
        "slurm.tasks_per_node": "2",
    }
    args = ["pretrain", "--out", str(tmp_path / "out"), "--model", "nmlbench_tinyresnet", "--noise", "25%"]
    args += [x for k, v in sets.items() for x in ("--set", f"{k}={v}")]
    assert main([*args, "--launcher", "local"]) == 0
    ck = tmp_path / "out" / "ckpt" / "nmlbench_tinyresnet.folder_sym25_s0"
    meta = json.loads((ck / "checkpoint.json").read_text())
    assert meta["complete"] and (meta["world_size"], meta["nodes"], meta["step"]) == (2, 1, 2)


# --- two torchrun agents as two nodes -------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(agent_args: list[str], out: Path) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        *agent_args,
        str(HERE / "fakes.py"),
        "pretrain",
        "--noise",
        "10%",
        "--out",
        str(out),
        "--set",
        "optim.epochs=1",
        "--set",
        "optim.batch_size=16",
        "--set",
        "ckpt_every_steps=3",
        "--set",
        "optim.warmup_steps=0",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env.update(OMP_NUM_THREADS="1", TQDM_DISABLE="1")
    return subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def _wait_all(procs: list[subprocess.Popen], timeout: float = 240) -> list[str]:
    errs = []
    try:
        for p in procs:
            errs.append(p.communicate(timeout=timeout)[1])
    finally:
        for p in procs:  # never leave an agent or its worker behind
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    for p, err in zip(procs, errs, strict=True):
        assert p.returncode == 0, err[-2000:]
    return errs


def test_two_torchrun_agents_as_two_nodes_match_one_agent(tmp_path):
    port = _free_port()
    static = ["--nnodes=2", "--nproc_per_node=1", "--master_addr=127.0.0.1", f"--master_port={port}"]
    two_nodes, one_node = tmp_path / "two_nodes", tmp_path / "one_node"
    agents = [_torchrun([*static, f"--node_rank={r}"], two_nodes) for r in (0, 1)]
    agents.append(_torchrun(["--nproc_per_node=2", f"--master_port={_free_port()}"], one_node))
    _wait_all(agents)  # all at once: most of the time is interpreters starting, not training

    run = Path("ckpt") / "tinyresnet.mini_sym10_s0"
    meta2, meta1 = (json.loads((o / run / "checkpoint.json").read_text()) for o in (two_nodes, one_node))
    assert meta2["complete"] and meta2["step"] == 4  # 128 samples / (16 x 2) = 4 steps
    assert (meta2["world_size"], meta2["nodes"]) == (2, 2)
    assert (meta1["world_size"], meta1["nodes"]) == (2, 1)
    # Same world size, same ranks: the node layout must not change a single bit.
    assert meta2["weights_sha256"] == meta1["weights_sha256"]
    weights = [(o / run / "model.safetensors").read_bytes() for o in (two_nodes, one_node)]
    assert weights[0] == weights[1]
