"""A tiny learnable fake of the task stage (the nmlbench.tasks contract of docs/architecture.md)."""

from __future__ import annotations

import hashlib
import sys
import types
from dataclasses import dataclass

import numpy as np
import pytest
from PIL import Image

from nmlbench.errors import UserError


@dataclass(frozen=True)
class FakeSpec:
    name: str
    version: int = 1
    num_classes: int = 3
    domain: str = "id"
    train_task: str | None = None
    builtin: bool = True

    @property
    def key(self) -> str:
        body = repr((self.name, self.version, self.num_classes, self.domain))
        return hashlib.sha256(body.encode()).hexdigest()

    @property
    def ref(self) -> str:
        return self.name

    @property
    def label(self) -> str:
        return f"{self.name}-{self.key[:8]}"

    def record_block(self, train: FakeSpec | None) -> dict:
        return {"name": self.name, "version": self.version, "domain": self.domain,
                "train_task": train.name if self.domain == "ood" else None, "num_classes": self.num_classes,
                "key": self.key, "origin": "builtin", "builtin": True}


class FakeSplit:
    """Class c has a bright band in channel c (OOD: the band is inverted), plus noise."""

    def __init__(self, n: int, seed: int, prefix: str, shift: bool = False, num_classes: int = 3) -> None:
        rng = np.random.default_rng(seed)
        self.labels = rng.integers(0, num_classes, n).astype(np.int64)
        self.ids = np.array([f"{prefix}/{i:04d}" for i in range(n)])
        self.classes = [f"c{i}" for i in range(num_classes)]
        self.images = []
        for y in self.labels:
            a = rng.integers(0, 80, (32, 32, 3)).astype(np.uint8)
            a[:, :, int(y) % 3] += 170
            if shift:
                a = 255 - a
            self.images.append(Image.fromarray(a))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.images[i], int(self.labels[i])


TASKS = {
    "toy": FakeSpec("toy"),
    "toy-ood": FakeSpec("toy-ood", domain="ood", train_task="toy"),
    "toy2": FakeSpec("toy2"),
}
SIZES = {"train": 96, "val": 48, "test": 48}


def make_api(calls: dict) -> types.ModuleType:
    api = types.ModuleType("nmlbench.tasks")

    def get_task(name: str) -> FakeSpec:
        if name not in TASKS:
            raise UserError(f"unknown task {name!r}; known: {', '.join(TASKS)}")
        return TASKS[name]

    def load_split(spec: FakeSpec, split: str, data_root=None, download=False) -> FakeSplit:
        calls[(spec.name, split)] = calls.get((spec.name, split), 0) + 1
        seed = {"train": 0, "val": 1, "test": 2}[split] + 10 * sorted(TASKS).index(spec.name)
        return FakeSplit(SIZES[split], seed, f"{spec.name}/{split}", shift=spec.domain == "ood")

    def get_suite(name: str):
        if name != "toys":
            raise UserError(f"unknown suite {name!r}; did you mean 'toys'?")
        return types.SimpleNamespace(name="toys", label="toys", id_tasks=["toy"], ood_tasks=["toy-ood"])

    def resolve_train_task(spec: FakeSpec) -> FakeSpec:
        return get_task(spec.train_task)

    api.get_task, api.load_split, api.get_suite = get_task, load_split, get_suite
    api.resolve_train_task = resolve_train_task
    return api


def install(monkeypatch: pytest.MonkeyPatch, calls: dict) -> None:
    """Patch the real task module's functions when it exists (its CLI stays importable), else stand in."""
    fake = make_api(calls)
    try:
        import nmlbench.tasks as real
    except ImportError:
        monkeypatch.setitem(sys.modules, "nmlbench.tasks", fake)
        return
    for name in ("get_task", "load_split", "get_suite", "resolve_train_task"):
        monkeypatch.setattr(real, name, getattr(fake, name), raising=False)


FAST = [
    "pretrained=false",
    "features.batch_size=64",
    "lp.epochs=8",
    "mlp.epochs=6",
    "nmtune.epochs=6",
    "mlp.views=2",
    "nmtune.views=2",
    "ft.epochs=2",
    "lora.epochs=2",
    "nmtune_lora.epochs=2",
    "levi.epochs=2",
    "levi_lora.epochs=2",
    "lp.batch_size=32",
    "mlp.batch_size=32",
    "nmtune.batch_size=32",
    "ft.batch_size=32",
    "lora.batch_size=32",
    "nmtune_lora.batch_size=32",
    "levi.batch_size=32",
    "levi_lora.batch_size=32",
    "ft.lr=1e-3",
    "lora.lr=5e-3",
    "nmtune_lora.lr=5e-3",
]
