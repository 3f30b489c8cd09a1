"""Generate-once cache of the mini benchmark under `data_root()/mini-v<MINI_VERSION>/seed<seed>/`.

Every array comes from its own random stream keyed by (seed, version, what, split), so any one task
can be generated alone and the result never depends on what was generated before it.
"""
from __future__ import annotations

import time
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from nmlbench.errors import UserError
from nmlbench.io import atomic_path, check_output, write_json
from nmlbench.mini import generators as G
from nmlbench.paths import data_root

# Bump when the same seed would draw different pixels, labels or captions.
MINI_VERSION = 1
UPSTREAM_SIZE = 20_000          # 200 images per class, 100 classes
UPSTREAM_CHUNK = 2_000          # generation unit; fixed so the streams do not depend on batching
SPLIT_SIZES = {"train": 500, "val": 200, "test": 500}
SPLITS = tuple(SPLIT_SIZES)
UPSTREAM_KEYS = ("ids", "images", "labels", "captions", "classes")


@dataclass(frozen=True)
class Upstream:
    """The upstream pretraining set (ImageNet/CC12M in miniature)."""

    ids: np.ndarray       # str (N,), e.g. "up/c017/000123"
    images: np.ndarray    # uint8 (N, 32, 32, 3)
    labels: np.ndarray    # int64 (N,)
    captions: np.ndarray  # str (N,)
    classes: list[str]

    def __len__(self) -> int:
        return len(self.labels)


def mini_dir(data_dir: str | Path | None = None, seed: int = 0) -> Path:
    """The cache folder for one seed: `<data root>/mini-v<MINI_VERSION>/seed<seed>`."""
    return data_root(data_dir) / f"mini-v{MINI_VERSION}" / f"seed{int(seed)}"


def _rng(seed: int, *key: str | int) -> np.random.Generator:
    parts = [int(seed), MINI_VERSION] + [zlib.crc32(k.encode()) if isinstance(k, str) else k for k in key]
    return np.random.default_rng(parts)


def _balanced(rng: np.random.Generator, n: int, num_classes: int) -> np.ndarray:
    return rng.permutation(np.arange(n) % num_classes).astype(np.int64)


def _load_npz(path: Path, keys: Iterable[str]) -> dict[str, np.ndarray]:
    """The cached arrays; FileNotFoundError when the cache is absent, damaged or incomplete.

    A cache is only ever a copy of what the generators draw, so a truncated or foreign file (a
    killed copy, a full disk) is removed and regenerated rather than reported.
    """
    if not path.is_file():
        raise FileNotFoundError(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {k: z[k] for k in z.files}
        missing = set(keys) - set(out)
        if missing:
            raise ValueError(f"missing arrays {sorted(missing)}")
        return out
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        path.unlink(missing_ok=True)
        raise FileNotFoundError(path) from e


def generate_upstream(seed: int = 0, progress: bool = False) -> Upstream:
    """Draw the upstream set in memory (no cache)."""
    classes = list(G.UPSTREAM_CLASSES)
    labels = _balanced(_rng(seed, "upstream-labels"), UPSTREAM_SIZE, len(classes))
    images, captions = [], []
    for start in tqdm(range(0, UPSTREAM_SIZE, UPSTREAM_CHUNK), desc="mini upstream", disable=not progress):
        img, cap = G.upstream(_rng(seed, "upstream", start), labels[start:start + UPSTREAM_CHUNK])
        images.append(img)
        captions.append(cap)
    ids = np.array([f"up/c{y:03d}/{i:06d}" for i, y in enumerate(labels)])
    return Upstream(ids, np.concatenate(images), labels, np.concatenate(captions), classes)


def load_upstream(data_dir: str | Path | None = None, seed: int = 0, progress: bool = False) -> Upstream:
    """The upstream set, generated on first use and cached (atomically) under `mini_dir()`.

    Args:
        data_dir: data root (as `--data-root`); None means `$NMLBENCH_DATA` or the user cache.
        seed: generation seed; each seed has its own cache folder.
        progress: show a progress bar while generating.
    """
    path = mini_dir(data_dir, seed) / "upstream.npz"
    try:
        z = _load_npz(path, UPSTREAM_KEYS)
        return Upstream(z["ids"], z["images"], z["labels"], z["captions"], [str(c) for c in z["classes"]])
    except FileNotFoundError:
        check_output(path, folder=False)  # a cache that can never be written: say so before minutes of work
    up = generate_upstream(seed, progress)
    with atomic_path(path) as tmp:
        np.savez(tmp, ids=up.ids, images=up.images, labels=up.labels, captions=up.captions,
                 classes=np.array(up.classes))
    return up


def generator(name: str) -> G.Generator:
    if name not in G.GENERATORS:
        import difflib

        close = difflib.get_close_matches(name, list(G.GENERATORS), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UserError(f"unknown mini generator {name!r}; {hint}known: {', '.join(sorted(G.GENERATORS))}")
    return G.GENERATORS[name]


def generate_task(name: str, domain: str, seed: int = 0) -> dict[str, np.ndarray]:
    """All splits of one (generator, domain) pair, in memory: {split}_images / {split}_labels."""
    gen = generator(name)
    if domain not in gen.domains:
        raise UserError(f"mini generator {name!r} has no {domain!r} rendering; "
                        f"use one of {list(gen.domains)}")
    out: dict[str, np.ndarray] = {}
    for split, n in SPLIT_SIZES.items():
        labels = _balanced(_rng(seed, f"{name}:{domain}:labels", split), n, len(gen.classes))
        out[f"{split}_images"] = gen.draw(_rng(seed, f"{name}:{domain}", split), labels, domain)
        out[f"{split}_labels"] = labels
    return out


def load_generated(name: str, domain: str, split: str, data_dir: str | Path | None = None,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) of one split of a mini task, generated and cached on first use."""
    if split not in SPLIT_SIZES:
        raise UserError(f"mini tasks have splits {list(SPLITS)}, not {split!r}")
    path = mini_dir(data_dir, seed) / "tasks" / f"{name}-{domain}.npz"
    try:
        z = _load_npz(path, [f"{s}_{what}" for s in SPLITS for what in ("images", "labels")])
    except FileNotFoundError:
        check_output(path, folder=False)
        z = generate_task(name, domain, seed)
        with atomic_path(path) as tmp:
            np.savez(tmp, **z)
    return z[f"{split}_images"], z[f"{split}_labels"]


def build(pairs: Iterable[tuple[str, str]], data_dir: str | Path | None = None, seed: int = 0,
          progress: bool = True) -> dict:
    """Generate (or reuse) the upstream set and the given (generator, domain) pairs; write info.json."""
    t0 = time.perf_counter()
    up = load_upstream(data_dir, seed, progress)
    sizes = {}
    for name, domain in tqdm(sorted(set(pairs)), desc="mini tasks", disable=not progress):
        sizes[f"{name}-{domain}"] = {s: int(len(load_generated(name, domain, s, data_dir, seed)[1]))
                                     for s in SPLITS}
    info = {"version": MINI_VERSION, "seed": int(seed),
            "upstream": {"n": len(up), "classes": len(up.classes)}, "tasks": sizes,
            "image_size": list(up.images.shape[1:])}
    write_json(mini_dir(data_dir, seed) / "info.json", info)
    return {**info, "seconds": round(time.perf_counter() - t0, 2), "path": str(mini_dir(data_dir, seed))}
