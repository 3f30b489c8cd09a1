"""The training targets of a streamed run as memory-mapped files every DataLoader worker shares.

A Python dict from sample id to noisy label or donor caption, built in each process and copied into
each worker, costs gigabytes per worker at CC12M scale. Here the targets are written once per run,
in data order, as .npy files (labels; captions as one UTF-8 blob plus offsets), with the crc32 of
each sample id to check that the shard sample read is the one planned, and each sample's byte offset
in its shard. Workers open them with `mmap_mode="r"`: pages are shared through the page cache by
every worker and rank on a node, and a worker touches only the rows of the samples it reads.
"""

from __future__ import annotations

import hashlib
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from nmlbench.io import atomic_dir
from nmlbench.readers.base import ShardIndex

VERSION = 1
_FILES = ("keys", "offsets", "counts", "ends")


def table_name(fingerprint: str, manifest_sha256: str | None, kind: str) -> str:
    """A name from what the table holds: the data, the manifest applied to it, labels or captions."""
    text = f"{VERSION}\n{fingerprint}\n{manifest_sha256 or 'clean'}\n{kind}"
    return f"targets-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def write_table(folder: Path, ids: np.ndarray, targets: np.ndarray, index: ShardIndex) -> None:
    """Write the table into `folder` (atomically: a folder that exists is complete)."""
    if folder.is_dir():
        return
    with atomic_dir(folder) as tmp:
        np.save(tmp / "keys.npy", np.fromiter((zlib.crc32(i.encode()) for i in ids), np.uint32, len(ids)))
        np.save(tmp / "offsets.npy", index.offsets.astype(np.int64))
        np.save(tmp / "counts.npy", index.counts.astype(np.int64))
        np.save(tmp / "ends.npy", index.ends.astype(np.int64))
        if targets.dtype.kind in "iu":
            np.save(tmp / "labels.npy", targets.astype(np.int64))
        else:
            blobs = [str(t).encode("utf-8") for t in targets]
            ends = np.cumsum([len(b) for b in blobs], dtype=np.int64)
            np.save(tmp / "text_offsets.npy", np.concatenate([[0], ends]).astype(np.int64))
            np.save(tmp / "text.npy", np.frombuffer(b"".join(blobs), dtype=np.uint8))


class TargetTable:
    """Read side of `write_table`; pickles as its path, opens its files on first use (in the worker)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._arrays: dict[str, np.ndarray] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"folder": self.folder, "_arrays": None}

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        if self._arrays is None:
            labels = (self.folder / "labels.npy").is_file()
            names = [*_FILES, *(("labels",) if labels else ("text_offsets", "text"))]
            self._arrays = {n: np.load(self.folder / f"{n}.npy", mmap_mode="r") for n in names}
        return self._arrays

    def target(self, i: int) -> int | str:
        a = self.arrays
        if "labels" in a:
            return int(a["labels"][i])
        lo, hi = a["text_offsets"][i], a["text_offsets"][i + 1]
        return bytes(a["text"][lo:hi]).decode("utf-8")

    def key_crc(self, i: int) -> int:
        return int(self.arrays["keys"][i])
