"""docs/own-data.md, run as written: its YAML files are written and its shell block is run in bash.

The data are tiny, but in the layouts the page describes (an ImageFolder upstream, npz arrays, image
folders). The test then checks that every number landed in the row of the checkpoint it came from.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

DOC = Path(__file__).resolve().parents[2] / "docs" / "own-data.md"
BLOCK = re.compile(r"```(yaml|bash)\n(.*?)```", re.S)


def _blocks(kind: str) -> list[str]:
    return [body for k, body in BLOCK.findall(DOC.read_text(encoding="utf-8")) if k == kind]


def _image(label: int, rng: np.random.Generator, shift: bool = False) -> np.ndarray:
    """32x32: class c brightens channel c % 3 and, for c >= 3, the top half is inverted."""
    a = rng.integers(0, 70, (32, 32, 3)).astype(np.uint8)
    a[:, :, label % 3] += 150
    if label % 6 >= 3:
        a[:16] = 255 - a[:16]
    if label >= 6:
        a[:, :16] //= 3
    if shift:  # washed out and noisier: harder, but not a fixed relabelling of every sample
        a = (a * 0.45 + rng.integers(40, 140, a.shape)).clip(0, 255).astype(np.uint8)
    return a


def _folder(root: Path, classes: list[str], per_class: int, seed: int, shift: bool = False) -> None:
    rng = np.random.default_rng(seed)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(_image(c, rng, shift)).save(root / name / f"{i:03d}.png")


def _npz(path: Path, classes: list[str], per_class: int, seed: int, shift: bool = False) -> None:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(classes)), per_class)
    images = np.stack([_image(int(y), rng, shift) for y in labels])
    np.savez(path, images=images, labels=labels, classes=np.array(classes))


def _write_data(project: Path) -> None:
    data = project / "data"
    _folder(data / "upstream", [f"n{c:02d}" for c in range(6)], 16, seed=0)
    digits = [str(d) for d in range(10)]
    data.mkdir(exist_ok=True)
    _npz(data / "digits-train.npz", digits, 6, seed=1)
    _npz(data / "digits-test.npz", digits, 3, seed=2)
    _npz(data / "digits-scanned.npz", digits, 3, seed=3, shift=True)
    shapes = ["circle", "square", "star", "triangle"]
    _folder(data / "shapes" / "train", shapes, 8, seed=4)
    _folder(data / "shapes" / "test", shapes, 4, seed=5)
    _folder(data / "shapes-sketch", shapes, 4, seed=6, shift=True)


def _write_yaml(project: Path) -> None:
    for body in _blocks("yaml"):
        first, _, rest = body.partition("\n")
        match = re.fullmatch(r"# file: (\S+)", first.strip())
        assert match, f"every YAML block of {DOC.name} names its file on its first line: {first!r}"
        dest = project / match.group(1)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(rest, encoding="utf-8")


def _shim(bin_dir: Path) -> None:
    """`nmlbench` on PATH runs this interpreter's nmlbench (the checkout under test)."""
    bin_dir.mkdir()
    exe = bin_dir / "nmlbench"
    exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m nmlbench "$@"\n')
    exe.chmod(0o755)


def test_own_data_walkthrough_runs_as_written(tmp_path: Path) -> None:
    project = tmp_path / "my-project"
    project.mkdir()
    _write_data(project)
    _write_yaml(project)
    _shim(tmp_path / "bin")
    [script] = _blocks("bash")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NMLBENCH_")}
    env.update(PATH=f"{tmp_path / 'bin'}:{env['PATH']}", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               TQDM_DISABLE="1", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", MPLBACKEND="Agg",
               NMLBENCH_DATA=str(tmp_path / "no-data"), HOME=str(tmp_path))
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=project, env=env,
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]

    out = project / "nmlbench-out"
    [results] = list((out / "results").glob("my-suite-*"))
    records = [json.loads(p.read_text()) for p in results.glob("*.json")]
    ckpts = {"resnet18.upstream_clean_s0": 0.0, "resnet18.upstream_sym20_s0": 0.2}
    assert len(records) == 2 * 3 * 4  # checkpoints x methods x tasks
    tasks = {r["task"]["name"]: r["task"] for r in records}
    assert set(tasks) == {"digits", "digits-scanned", "shapes", "shapes-sketch"}
    assert all(not t["builtin"] and Path(t["origin"]).parent == project / "tasks" for t in tasks.values())
    for r in records:
        ckpt = json.loads((out / "ckpt" / r["model"]["name"] / "checkpoint.json").read_text())
        assert r["model"]["name"] in ckpts and r["model"]["noise"]["rate"] == ckpts[r["model"]["name"]]
        assert r["model"]["checkpoint_sha256"] == ckpt["weights_sha256"]  # filed under its own weights
        assert r["model"]["manifest_sha256"] == ckpt["manifest_sha256"]
        assert ckpt["image_size"] == 32 and ckpt["data"] == "upstream"
        assert "spectrum" in r  # attached
    clean = json.loads((out / "ckpt/resnet18.upstream_clean_s0/checkpoint.json").read_text())
    assert clean["noise"]["kind"] == "none" and clean["manifest_sha256"] is None

    # the board: each row's averages and deltas are the records' own numbers
    board = pd.read_csv(project / "my-board" / "leaderboard.csv")
    frame = pd.DataFrame([{"name": r["model"]["name"], "method": r["method"]["name"],
                           "domain": r["task"]["domain"], "top1": r["metrics"]["top1"]} for r in records])
    avg = frame.groupby(["name", "method", "domain"]).top1.mean()
    for method in ("lp", "mlp", "nmtune"):
        for name, rate in ckpts.items():
            row = board[(board.method == method) & np.isclose(board.noise_rate, rate)]
            assert len(row) == 1, (method, name, board[["method", "noise_rate"]])
            assert row.id_avg_mean.iloc[0] == pytest.approx(avg[name, method, "id"], abs=1e-6)
            assert row.ood_avg_mean.iloc[0] == pytest.approx(avg[name, method, "ood"], abs=1e-6)
        noisy = board[(board.method == method) & np.isclose(board.noise_rate, 0.2)]
        noisy_ood, clean_ood = (avg[name, method, "ood"] for name in reversed(list(ckpts)))
        want = noisy_ood - clean_ood
        assert noisy.ood_delta_mean.iloc[0] == pytest.approx(want, abs=1e-6)
    assert (project / "my-board" / "index.html").is_file()
    assert list((out / "plots").glob("*.png"))
