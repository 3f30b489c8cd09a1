"""Resume after SIGKILL and corruption: the newest good interval checkpoint is used, bit-identically,
corrupt ones are skipped with one line each, and the temporaries of killed writes are swept."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fakes import TINY

from nmlbench.cli import main
from nmlbench.io import sha256_file
from nmlbench.leftovers import is_temporary

HERE = Path(__file__).parent
NAME = "tinyresnet.mini_sym10_s0"
# 128 samples / batch 32 = 4 steps an epoch; 3 epochs = 12 steps, an interval checkpoint every 2
ARGS = ["pretrain", "--noise", "10%", *TINY, "--set", "optim.epochs=3", "--set", "ckpt_every_steps=2"]
KEEP3 = [*ARGS, "--set", "keep_checkpoints=3"]

# Runs `nmlbench ARGS` on the fake upstream and SIGKILLs itself when the rename onto KILL_AT is
# attempted: the checkpoint's files are all written, the rename never happens.
KILLER = """
import os, runpy, signal, sys
real = os.replace
def replace(src, dst, *a, **k):
    if os.path.basename(os.fspath(dst)) == os.environ["KILL_AT"]:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(src, dst, *a, **k)
os.replace = replace
sys.argv = [sys.argv[1], *sys.argv[2:]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _killed_at(out: Path, target: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, TQDM_DISABLE="1", KILL_AT=target)
    cmd = [sys.executable, "-c", KILLER, str(HERE / "fakes.py"), *ARGS, "--out", str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, f"not killed at {target}: {proc.returncode}\n{proc.stderr[-2000:]}"
    return proc


def _temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if is_temporary(p.name)) if folder.is_dir() else []


def _flip_a_byte(path: Path) -> None:
    """Same size, different content: only the stored hash can tell."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _steps(ckpt: Path) -> list[int]:
    return [json.loads(x)["step"] for x in (ckpt / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture
def reference(tiny_mini, tmp_path) -> Path:
    assert main([*ARGS, "--out", str(tmp_path / "ref")]) == 0
    return tmp_path / "ref" / "ckpt" / NAME


def test_kill_before_rename_corrupt_newest_resumes_from_previous(reference, tiny_mini, tmp_path, capsys):
    out = tmp_path / "killed"
    ckpt, work = out / "ckpt", out / "ckpt" / ".partial" / NAME
    # 1. killed with step 8's files written but not renamed: 4 and 6 are complete (keep_checkpoints=2)
    _killed_at(out, "step-00000008")
    assert [p.name for p in work.glob("step-*")] == ["step-00000004", "step-00000006"]
    assert [t.split(".")[1] for t in _temporaries(work)] == ["step-00000008"]
    _flip_a_byte(work / "step-00000006" / "model.safetensors")
    # 2. resumed: skips 6 (hash), resumes from 4 — the kill lost one interval, the corruption one
    #    more — and is killed again right before the finished checkpoint's rename
    second = _killed_at(out, NAME)
    lines = second.stderr.splitlines()
    skip = [ln for ln in lines if ln.startswith("skipping")]
    assert len(skip) == 1 and "step-00000006" in skip[0] and "sha256 does not match" in skip[0], lines
    assert any(ln.startswith(f"resuming {NAME} from step 4 ") for ln in lines), lines
    assert _temporaries(work) == [], "the killed write of step 8 was not swept at the start"
    assert [t.split(".")[1] for t in _temporaries(ckpt)] == [NAME.split(".")[0]]
    # 3. resumed from the newest interval (10), finishes; the final checkpoint's temporary is swept
    capsys.readouterr()
    assert main([*ARGS, "--out", str(out)]) == 0
    assert f"resuming {NAME} from step 10 " in capsys.readouterr().err
    assert _temporaries(ckpt) == [] and not work.exists()
    done = ckpt / NAME
    assert sha256_file(done / "model.safetensors") == sha256_file(reference / "model.safetensors")
    assert _steps(done) == _steps(reference) == list(range(1, 13))
    assert json.loads((done / "checkpoint.json").read_text())["resumed_from"] == [4, 10]


def _interrupted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop_at: int) -> Path:
    """A run stopped (KeyboardInterrupt) right after writing interval checkpoint `stop_at`."""
    from nmlbench.pretrain import train

    real = train._save_interval

    def save_then_stop(run, step, metrics):
        real(run, step, metrics)
        if step == stop_at:
            raise KeyboardInterrupt

    monkeypatch.setattr(train, "_save_interval", save_then_stop)
    assert main([*KEEP3, "--out", str(tmp_path)]) == 130
    monkeypatch.setattr(train, "_save_interval", real)
    return tmp_path / "ckpt" / ".partial" / NAME


def test_every_kind_of_corruption_is_skipped_for_an_older_one(tiny_mini, tmp_path, monkeypatch, capsys):
    work = _interrupted(tmp_path, monkeypatch, stop_at=8)
    assert [p.name for p in work.glob("step-*")] == ["step-00000004", "step-00000006", "step-00000008"]
    (work / "step-00000008" / "train_state.pt").write_bytes(b"\x80garbage")
    (work / "step-00000006" / "checkpoint.json").write_text("{truncated")
    capsys.readouterr()
    assert main([*KEEP3, "--out", str(tmp_path)]) == 0
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith(("skipping", "resuming"))]
    assert len(err) == 3, err
    assert "step-00000008" in err[0] and "train_state.pt" in err[0]
    assert "step-00000006" in err[1] and "checkpoint.json" in err[1]
    assert err[2].startswith(f"resuming {NAME} from step 4 ")


def test_all_corrupt_is_one_line_exit_2(tiny_mini, tmp_path, monkeypatch, capsys):
    work = _interrupted(tmp_path, monkeypatch, stop_at=6)
    for step in ("step-00000002", "step-00000004", "step-00000006"):
        _flip_a_byte(work / step / "model.safetensors")
    capsys.readouterr()
    assert main([*KEEP3, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    last = err.splitlines()[-1]
    assert last.startswith("nmlbench: error: no usable interval checkpoint in ") and str(work) in last
    assert "--resume never" in last and all(f"step-0000000{s}" in last for s in (2, 4, 6))
    assert "Traceback" not in err and len([ln for ln in err.splitlines() if "error" in ln]) == 1
    # the fix it names works, and starts over
    assert main([*KEEP3, "--out", str(tmp_path), "--resume", "never"]) == 0


def test_hash_mismatch_is_detected_even_when_the_weights_load(tiny_mini, tmp_path, monkeypatch):
    from nmlbench.models.info import CorruptCheckpoint
    from nmlbench.pretrain import checkpoint as ck

    work = _interrupted(tmp_path, monkeypatch, stop_at=4)
    step = work / "step-00000004"
    assert ck.load_interval(step).state["step"] == 4
    _flip_a_byte(step / "model.safetensors")  # a weight's byte: safetensors still loads it
    with pytest.raises(CorruptCheckpoint, match="sha256 does not match"):
        ck.load_interval(step)
    said: list[str] = []
    assert ck.newest_good(work, said.append).path.name == "step-00000002"
    assert len(said) == 1 and "step-00000004" in said[0] and "sha256" in said[0]
    shutil.rmtree(work)
    assert ck.newest_good(work, said.append) is None and len(said) == 1
