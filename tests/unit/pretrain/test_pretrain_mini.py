"""End-to-end pretraining on a tiny mini benchmark: checkpoint format, sweeps, determinism, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import open_clip
import timm
import torch
from fakes import TINY
from safetensors.torch import load_file

from nmlbench.cli import main
from nmlbench.io import sha256_file
from nmlbench.models.load import load_backbone
from nmlbench.noise import read_manifest

HERE = Path(__file__).parent


def _ckpt(root: Path, name: str) -> Path:
    return root / "ckpt" / name


def _losses(ckpt: Path) -> list[float]:
    return [json.loads(x)["loss"] for x in (ckpt / "metrics.jsonl").read_text().splitlines()]


def test_supervised_checkpoint_format(tiny_mini, tmp_path, capsys):
    assert main(["pretrain", "--noise", "10%", "--out", str(tmp_path), *TINY]) == 0
    ck = _ckpt(tmp_path, "tinyresnet.mini_sym10_s0")
    assert capsys.readouterr().out.strip() == str(ck)
    meta = json.loads((ck / "checkpoint.json").read_text())
    assert meta["format"] == "nmlbench-checkpoint" and meta["schema_version"] == 1
    assert meta["library"] == "timm" and meta["arch"] == "nmlbench_tinyresnet"
    assert meta["noise"]["rate"] == 0.1 and meta["noise"]["recipe"] == "sym10"
    _, side = read_manifest(meta["manifest_path"])
    assert meta["manifest_sha256"] == side["manifest_sha256"]
    assert meta["weights_sha256"] == sha256_file(ck / "model.safetensors")
    assert meta["step"] == 4 and meta["epoch"] == 1 and (ck / "config.yaml").is_file()
    model = timm.create_model(meta["arch"], **meta["model_kwargs"])
    model.load_state_dict(load_file(str(ck / "model.safetensors")))
    assert model.forward_head(model.forward_features(torch.zeros(2, 3, 32, 32)), pre_logits=True).shape == (
        2,
        256,
    )
    assert not (tmp_path / "ckpt" / ".partial" / "tinyresnet.mini_sym10_s0").exists()
    # A finished run is skipped, a changed config with the same name is refused.
    assert main(["pretrain", "--noise", "10%", "--out", str(tmp_path), *TINY]) == 0
    assert main(["pretrain", "--noise", "10%", "--out", str(tmp_path), *TINY, "--set", "optim.lr=0.5"]) == 2


def test_clip_sweep_loads_in_open_clip(tiny_mini, tmp_path):
    assert main(["pretrain", "--preset", "mini-clip", "--noise", "0,30%", "--out", str(tmp_path), *TINY]) == 0
    for rate in ("0", "30"):
        ck = _ckpt(tmp_path, f"tinyclip.mini_cap{rate}_s0")
        meta = json.loads((ck / "checkpoint.json").read_text())
        assert meta["library"] == "open_clip" and meta["open_clip_config"]["embed_dim"] == 64
        model = open_clip.create_model(meta["arch"], pretrained=None)
        model.load_state_dict(load_file(str(ck / "model.safetensors")))
        assert load_backbone(str(ck)).provenance["manifest_sha256"] == meta["manifest_sha256"]
    noisy = json.loads((_ckpt(tmp_path, "tinyclip.mini_cap30_s0") / "checkpoint.json").read_text())
    clean = json.loads((_ckpt(tmp_path, "tinyclip.mini_cap0_s0") / "checkpoint.json").read_text())
    assert noisy["manifest_sha256"] != clean["manifest_sha256"]


def test_same_seed_same_losses_and_weights(tiny_mini, tmp_path):
    for sub in ("a", "b"):
        assert main(["pretrain", "--noise", "10%", "--out", str(tmp_path / sub), *TINY]) == 0
    a, b = (_ckpt(tmp_path / s, "tinyresnet.mini_sym10_s0") for s in ("a", "b"))
    assert _losses(a) == _losses(b) and len(_losses(a)) == 4
    assert sha256_file(a / "model.safetensors") == sha256_file(b / "model.safetensors")
    assert main(["pretrain", "--noise", "10%", "--seed", "1", "--out", str(tmp_path / "c"), *TINY]) == 0
    assert _losses(_ckpt(tmp_path / "c", "tinyresnet.mini_sym10_s1")) != _losses(a)


def test_sigkill_then_resume_matches_uninterrupted(tiny_mini, tmp_path):
    args = [
        "pretrain",
        "--noise",
        "10%",
        "--set",
        "optim.epochs=8",
        "--set",
        "optim.batch_size=16",
        "--set",
        "ckpt_every_steps=3",
        "--set",
        "log_every_steps=1",
    ]
    assert main([*args, "--out", str(tmp_path / "ref")]) == 0
    ref = _ckpt(tmp_path / "ref", "tinyresnet.mini_sym10_s0")
    out = tmp_path / "killed"
    env = dict(os.environ, TQDM_DISABLE="1")
    cmd = [sys.executable, str(HERE / "fakes.py"), *args, "--out", str(out)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    work = out / "ckpt" / ".partial" / "tinyresnet.mini_sym10_s0"
    deadline = time.time() + 120
    while not list(work.glob("step-0000001[2-9]")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "ckpt" / "tinyresnet.mini_sym10_s0").exists(), "killed too late to test anything"
    assert subprocess.run(cmd, env=env, capture_output=True).returncode == 0
    done = _ckpt(out, "tinyresnet.mini_sym10_s0")
    assert sha256_file(done / "model.safetensors") == sha256_file(ref / "model.safetensors")
    assert _losses(done) == _losses(ref)


def test_resume_latest_picks_newest_interval(tiny_mini, tmp_path, monkeypatch):
    from nmlbench.pretrain import train

    calls = []
    real = train._save_interval

    def stop_after_first(run, step, metrics):
        real(run, step, metrics)
        calls.append(step)
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "_save_interval", stop_after_first)
    args = ["pretrain", "--out", str(tmp_path), *TINY, "--set", "ckpt_every_steps=2"]
    assert main(args) == 130
    work = tmp_path / "ckpt" / ".partial" / "tinyresnet.mini_sym0_s0"
    assert [p.name for p in work.glob("step-*")] == ["step-00000002"]
    monkeypatch.setattr(train, "_save_interval", real)
    assert main([*args, "--resume", str(work / "step-00000002")]) == 0
    rows = [
        json.loads(x)
        for x in (_ckpt(tmp_path, "tinyresnet.mini_sym0_s0") / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]


def test_tiny_vit_preset_trains_and_taps(tiny_mini, tmp_path):
    assert main(["pretrain", "--preset", "mini-vit", "--out", str(tmp_path), *TINY]) == 0
    ck = _ckpt(tmp_path, "tinyvit.mini_sym0_s0")
    backbone = load_backbone(str(ck))
    assert backbone.provenance["name"] == "tinyvit.mini_sym0_s0"
    meta = json.loads((ck / "checkpoint.json").read_text())
    model = timm.create_model(meta["arch"], **meta["model_kwargs"])
    model.load_state_dict(load_file(str(ck / "model.safetensors")))
    taps = model.forward_intermediates(torch.zeros(1, 3, 32, 32), indices=[1, 3], intermediates_only=True)
    assert [t.shape[1] for t in taps] == [64, 64]
