"""The built-in mini benchmark: a procedurally generated, cached, seed-deterministic study in miniature.

    from nmlbench.mini import load_upstream, MINI_VERSION
    up = load_upstream()          # ids, images (N, 32, 32, 3) uint8, labels, captions, classes

Its downstream tasks are ordinary task definitions (`mini-*`, reader `mini`) in `nmlbench.tasks`.
"""
from __future__ import annotations

from nmlbench.mini.data import MINI_VERSION as MINI_VERSION
from nmlbench.mini.data import Upstream as Upstream
from nmlbench.mini.data import build as build
from nmlbench.mini.data import load_generated as load_generated
from nmlbench.mini.data import load_upstream as load_upstream
from nmlbench.mini.data import mini_dir as mini_dir
