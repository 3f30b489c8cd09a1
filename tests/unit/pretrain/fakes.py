"""A tiny stand-in for the mini benchmark (4 classes, 32x32, captions), for fast pretraining tests.

Run as a script it installs the fake and then runs `nmlbench <args>`: subprocess tests use it.
"""

from __future__ import annotations

import sys

import numpy as np

# 128 samples / batch 32 = 4 steps per epoch: every run here takes a second or two.
TINY = [
    "--set",
    "optim.epochs=1",
    "--set",
    "optim.batch_size=32",
    "--set",
    "log_every_steps=1",
    "--set",
    "optim.warmup_steps=0",
]

COLORS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220), "yellow": (230, 220, 30)}


def make_upstream(n: int = 128, seed: int = 0):
    from nmlbench.mini import Upstream

    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(COLORS)
    images = rng.integers(0, 60, size=(n, 32, 32, 3), dtype=np.uint8)
    names = list(COLORS)
    caps = []
    for i, c in enumerate(labels):
        x, y = rng.integers(0, 16, size=2)
        images[i, y : y + 16, x : x + 16] = COLORS[names[c]]
        caps.append(f"a {names[c]} square at {x},{y}")
    ids = np.array([f"up/c{c:03d}/{i:06d}" for i, c in enumerate(labels)])
    return Upstream(ids, images, labels.astype(np.int64), np.array(caps), names)


def install(n: int = 128) -> None:
    import nmlbench.mini

    up = make_upstream(n)
    nmlbench.mini.load_upstream = lambda data_dir=None, seed=0, progress=False: up


if __name__ == "__main__":
    import torch

    torch.set_num_threads(1)
    install()
    from nmlbench.cli import main

    sys.exit(main(sys.argv[1:]))
