"""Pretraining through a real SLURM cluster: one job, a job array sweep, preemption + requeue."""

from __future__ import annotations

import io
import json
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nmlbench.cli import main
from nmlbench.io import sha256_file
from nmlbench.noise import NoiseConfig, SourceSpec, apply_noise

pytestmark = pytest.mark.slurm


def _imagefolder(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(16):
            buf = io.BytesIO()
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(buf, format="PNG")
            (root / c / f"{i:02d}.png").write_bytes(buf.getvalue())
    return root


@pytest.fixture
def folder_args(tmp_path: Path) -> list[str]:
    data = _imagefolder(tmp_path / "data")
    out = tmp_path / "out"
    for rate in (0.0, 0.25, 0.5):
        man = apply_noise(
            SourceSpec(type="imagefolder", path=str(data)),
            NoiseConfig(kind="symmetric_label", rate=rate),
            root=out,
        )
    template = str(man).replace("sym50-", "sym{rate}-")
    return [
        "pretrain",
        "--out",
        str(out),
        "--model",
        "nmlbench_tinyresnet",
        "--set",
        "data.source=imagefolder",
        "--set",
        f"data.path={data}",
        "--set",
        "data.name=folder",
        "--set",
        f"data.manifest={template}",
        "--set",
        "optim.batch_size=8",
        "--set",
        "optim.warmup_steps=0",
        "--set",
        "slurm.timeout_min=10",
    ]


def _name(rate: str) -> str:
    return f"nmlbench_tinyresnet.folder_sym{rate}_s0"


def test_one_job_via_slurm(folder_args, tmp_path):
    assert main([*folder_args, "--noise", "25%", "--launcher", "slurm", "--set", "optim.epochs=1"]) == 0
    meta = json.loads((tmp_path / "out" / "ckpt" / _name("25") / "checkpoint.json").read_text())
    assert meta["complete"] and meta["step"] == 4
    assert list((tmp_path / "out" / "jobs" / "pretrain").glob("*/*_0_log.out"))


def test_job_array_sweep(folder_args, tmp_path):
    assert main([*folder_args, "--noise", "0,25,50%", "--launcher", "slurm", "--set", "optim.epochs=1"]) == 0
    for rate in ("0", "25", "50"):
        assert (tmp_path / "out" / "ckpt" / _name(rate) / "model.safetensors").is_file()
    logs = list((tmp_path / "out" / "jobs" / "pretrain").glob("*/*_log.out"))
    array_ids = {p.name.split("_")[0] for p in logs}
    assert len(logs) == 3 and len(array_ids) == 1, "the sweep must be one job array"


def test_rejected_option_is_one_line(folder_args, tmp_path, capsys):
    assert (
        main([*folder_args, "--noise", "25%", "--launcher", "slurm", "--set", "slurm.partition=nosuch"]) == 2
    )
    err = capsys.readouterr().err.strip()
    assert "SLURM rejected the job" in err and "partition" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out" / "ckpt" / _name("25")).exists()


def test_requeue_resumes_from_checkpoint(folder_args, tmp_path):
    from nmlbench.cli import build_parser
    from nmlbench.launch.slurm import _Job, executor_for
    from nmlbench.pretrain.cli import PretrainJob, build_configs

    long = [*folder_args, "--noise", "25%", "--set", "optim.epochs=100", "--set", "ckpt_every_steps=5"]
    # Reference: the same run, uninterrupted, in this process.
    ref_args = [a.replace(str(tmp_path / "out"), str(tmp_path / "ref")) for a in long]
    apply_noise(
        SourceSpec(type="imagefolder", path=str(tmp_path / "data")),
        NoiseConfig(kind="symmetric_label", rate=0.25),
        root=tmp_path / "ref",
    )
    assert main(ref_args) == 0
    ref = tmp_path / "ref" / "ckpt" / _name("25") / "model.safetensors"

    cfg = build_configs(build_parser().parse_args(long))[0]  # the config the CLI would submit
    ex = executor_for("slurm", tmp_path / "out" / "jobs" / "%j", cfg.slurm)
    job = ex.submit(_Job(PretrainJob(str(tmp_path / "out"), None, "latest")), cfg)
    work = tmp_path / "out" / "ckpt" / ".partial" / _name("25")
    deadline = time.time() + 180
    while not list(work.glob("step-*")) and time.time() < deadline:
        time.sleep(0.2)
    assert list(work.glob("step-*")), "no interval checkpoint before the deadline"
    subprocess.run(["scontrol", "requeue", job.job_id], check=True)
    for _ in range(50):  # SLURM holds a requeued job back (BeginTime); let it start again now
        time.sleep(0.2)
        subprocess.run(["scontrol", "update", f"JobId={job.job_id}", "StartTime=now"], capture_output=True)
        if job.state not in ("PENDING", "REQUEUED", "RUNNING"):
            break
    result = job.result()
    assert isinstance(result, str) and Path(result).name == _name("25")
    log = Path(job.paths.stderr).read_text()
    assert f"resuming {_name('25')} from step" in log
    assert json.loads((Path(result) / "checkpoint.json").read_text())["resumed_from"]
    assert sha256_file(Path(result) / "model.safetensors") == sha256_file(ref)


def test_two_tasks_train_as_one_ddp_run(folder_args, tmp_path):
    # srun starts both tasks (no torchrun): rank, world and rendezvous come from SLURM's variables.
    two_tasks = ["--set", "slurm.nodes=1", "--set", "slurm.tasks_per_node=2", "--set", "optim.epochs=1"]
    assert main([*folder_args, "--noise", "25%", "--launcher", "slurm", *two_tasks]) == 0
    meta = json.loads((tmp_path / "out" / "ckpt" / _name("25") / "checkpoint.json").read_text())
    assert meta["complete"] and (meta["world_size"], meta["nodes"]) == (2, 1)
    assert meta["step"] == 2  # 32 images / (8 per task x 2 tasks)
    logs = sorted(p.name for p in (tmp_path / "out" / "jobs" / "pretrain").glob("*/*_log.err"))
    assert [name.split("_")[-2] for name in logs] == ["0", "1"], logs  # <job>_<rank>_log.err


def test_requeued_two_task_job_resumes_bit_identical(folder_args, tmp_path):
    # Rank 0 requeues the whole job; both ranks of the new job resume from the same interval checkpoint.
    from nmlbench.cli import build_parser
    from nmlbench.launch.slurm import _Job, executor_for
    from nmlbench.pretrain.cli import PretrainJob, build_configs

    two_tasks = ["--set", "slurm.tasks_per_node=2", "--set", "optim.epochs=60", "--set", "ckpt_every_steps=5"]
    long = [*folder_args, "--noise", "25%", *two_tasks]
    ref_args = [a.replace(str(tmp_path / "out"), str(tmp_path / "ref")) for a in long]
    apply_noise(
        SourceSpec(type="imagefolder", path=str(tmp_path / "data")),
        NoiseConfig(kind="symmetric_label", rate=0.25),
        root=tmp_path / "ref",
    )
    assert main([*ref_args, "--launcher", "slurm"]) == 0  # uninterrupted, the same two tasks
    ref = tmp_path / "ref" / "ckpt" / _name("25") / "model.safetensors"

    cfg = build_configs(build_parser().parse_args(long))[0]
    ex = executor_for("slurm", tmp_path / "out" / "jobs" / "%j", cfg.slurm)
    job = ex.submit(_Job(PretrainJob(str(tmp_path / "out"), None, "latest")), cfg)
    work = tmp_path / "out" / "ckpt" / ".partial" / _name("25")
    deadline = time.time() + 180
    while not list(work.glob("step-*")) and time.time() < deadline:
        time.sleep(0.2)
    assert list(work.glob("step-*")), "no interval checkpoint before the deadline"
    subprocess.run(["scontrol", "requeue", job.job_id], check=True)
    for _ in range(50):
        time.sleep(0.2)
        subprocess.run(["scontrol", "update", f"JobId={job.job_id}", "StartTime=now"], capture_output=True)
        if job.state not in ("PENDING", "REQUEUED", "RUNNING"):
            break
    results = job.results()
    assert len(results) == 2 and Path(results[0]).name == _name("25")
    meta = json.loads((Path(results[0]) / "checkpoint.json").read_text())
    assert meta["resumed_from"] and meta["world_size"] == 2
    assert sha256_file(Path(results[0]) / "model.safetensors") == sha256_file(ref)
