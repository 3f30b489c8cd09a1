"""Seeds that are pure functions of small integers, and a scope that seeds one sample's augmentation."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import torch


def mix(*xs: int) -> int:
    """A 63-bit seed from small integers (splitmix-style: cheap, and stable across processes)."""
    h = 0x9E3779B97F4A7C15
    for x in xs:
        h = ((h ^ (int(x) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
    return h & 0x7FFFFFFFFFFFFFFF


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch's CPU RNG and Python's (timm transforms use `random`) for one sample, then restore them.

    `torch.default_generator.manual_seed` rather than `torch.manual_seed`: the latter also seeds
    CUDA and costs ~150 us per call, which is most of a 32x32 sample's augmentation time.
    """
    torch_state, py_state = torch.get_rng_state(), random.getstate()
    torch.default_generator.manual_seed(seed)
    random.seed(seed)
    try:
        yield
    finally:
        torch.set_rng_state(torch_state)
        random.setstate(py_state)
