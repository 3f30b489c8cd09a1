"""Streaming webdataset shards for pretraining: each tar byte read once per epoch across all readers.

`shardplan` decides which samples each reader (DataLoader worker of a rank, on any node) reads;
this module reads them through webdataset's tar expansion, shuffles them in a seeded buffer,
decodes and augments them and looks their targets up in the run's memory-mapped `TargetTable`.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import random
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import webdataset as wds
from torch.utils.data import IterableDataset, get_worker_info
from webdataset.tariterators import group_by_keys, tar_file_expander

from nmlbench.errors import UserError
from nmlbench.pretrain.loader import Sharding, collate
from nmlbench.pretrain.seeds import mix, seeded
from nmlbench.pretrain.shardplan import Layout, Piece, plan_epoch
from nmlbench.pretrain.sources import Source, decode_image
from nmlbench.pretrain.targets import TargetTable, table_name


@dataclass(frozen=True)
class Streamed:
    """What every epoch of a streamed run shares: its target table and how an epoch is cut."""

    table: TargetTable
    steps: int  # batches per rank per epoch
    batch_size: int
    sampling: str  # "partition" or "resampled" (see shardplan)
    buffer: int  # shuffle buffer, in samples, per reader


def epoch_samples(n: int, samples_per_epoch: int, sampling: str) -> int:
    """Samples in an epoch: the data's count unless set; more than the data only when resampling."""
    if samples_per_epoch and samples_per_epoch > n and sampling == "partition":
        raise UserError(
            f"data.samples_per_epoch={samples_per_epoch} is more than the {n} samples of the shards; "
            "lower it, or set data.shard_sampling=resampled to draw shards with replacement"
        )
    return samples_per_epoch or n


def table_folder(work: Path, source: Source, manifest_sha256: str | None, captions: bool) -> Path:
    return work / table_name(source.fingerprint, manifest_sha256, "captions" if captions else "labels")


class ShardStream(IterableDataset):
    """webdataset shards read per `shardplan`: each slot (worker of a rank) reads only its own pieces.

    A slot's samples go through a seeded shuffle buffer and are cut into the batches its worker
    yields (DataLoader takes batches from its workers in turn, so the order is fixed). Resuming at
    batch b replays the slot's stream up to its first batch >= b without decoding it: the shuffle
    buffer must be refilled exactly as it was for the remaining batches to be the same.
    Targets come from the memory-mapped `TargetTable`, never a per-worker copy.
    """

    def __init__(
        self,
        urls: list[str],
        image_exts: tuple[str, ...],
        transform: Callable,
        shard: Sharding,
        num_workers: int,
        streamed: Streamed,
    ) -> None:
        self.urls, self.image_exts, self.transform = urls, image_exts, transform
        self.table, self.streamed, self.shard = streamed.table, streamed, shard
        self.layout = Layout(shard.world, num_workers, streamed.batch_size, streamed.steps)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, list[Any], int]]:
        info = get_worker_info()
        worker = info.id if info else 0
        s, lay = self.shard, self.layout
        counts = np.asarray(self.table.arrays["counts"])
        plan = plan_epoch(counts, lay, s.seed, s.epoch, self.streamed.sampling)
        # DataLoader asks its workers in turn starting with worker 0, so after resuming at batch b,
        # worker 0 must yield batch b: it reads the lane (slot of this rank) that batch b comes from.
        lane = (worker + s.start_batch) % lay.readers
        slot = s.rank * lay.readers + lane
        rng = random.Random(mix(s.seed, s.epoch, slot, 1))
        samples = wds.shuffle(self.streamed.buffer, rng=rng)(self._read(plan[slot], counts))
        batches = lay.batches_of(lane)
        done = sum(b < s.start_batch for b in batches)
        for _ in range(done * lay.batch_size):
            next(samples, None)
        for b in batches[done:]:
            yield collate([self._decode(next(samples, None), b) for _ in range(lay.batch_size)])

    def _read(self, pieces: list[Piece], counts: np.ndarray) -> Iterator[tuple[int, dict[str, Any]]]:
        """(data index, raw sample) for every sample of the pieces, in reading order."""
        starts = np.concatenate([[0], np.cumsum(counts)])
        for p in pieces:
            base = int(starts[p.shard]) + p.first
            for j, sample in enumerate(read_piece(self.urls[p.shard], p, base, self.table)):
                if j >= p.count:
                    break
                yield base + j, sample

    def _decode(self, item: tuple[int, dict[str, Any]] | None, b: int) -> tuple[torch.Tensor, Any] | None:
        if item is None:
            return None
        idx, sample = item
        key = sample.get("__key__", "")
        if zlib.crc32(key.encode()) != self.table.key_crc(idx):
            return None  # the shard changed since it was scanned: not the planned sample
        data = next((sample[e] for e in self.image_exts if e in sample), None)
        img = decode_image(data) if data is not None else None
        if img is None:
            return None
        with seeded(mix(self.shard.seed, self.shard.epoch, b, zlib.crc32(key.encode()))):
            return self.transform(img), self.table.target(idx)


def read_piece(url: str, piece: Piece, base: int, table: TargetTable) -> Iterator[dict[str, Any]]:
    """The raw samples of one piece, through webdataset's tar expansion and grouping by key.

    Seekable shards are read from the piece's first header to where its last sample ends, so no
    byte of another piece is read; others (compressed, remote) from their start, skipping samples.
    """
    a = table.arrays
    start = int(a["offsets"][base])
    if start >= 0:
        last = base + piece.count
        shard_n = int(a["counts"][piece.shard])
        at_end = piece.first + piece.count >= shard_n
        stop = int(a["ends"][piece.shard]) if at_end else int(a["offsets"][last])
        with open(url, "rb", buffering=0) as f:  # unbuffered: no read-ahead past the window
            f.seek(start)
            files = tar_file_expander([{"url": url, "stream": _Window(f, stop - start)}], handler=_warn)
            yield from group_by_keys(files, handler=_warn)
        return
    with contextlib.closing(wds.gopen(url)) as f:
        files = tar_file_expander([{"url": url, "stream": f}], handler=_warn)
        yield from itertools.islice(group_by_keys(files, handler=_warn), piece.first, None)


def _warn(exn: Exception) -> bool:
    return wds.warn_and_continue(exn)


class _Window(io.RawIOBase):
    """The next `size` bytes of a file: tarfile's stream mode stops cleanly at its end."""

    def __init__(self, f: Any, size: int) -> None:
        self.f, self.left = f, size

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        n = min(len(buf), self.left)
        if n <= 0:
            return 0
        got = self.f.readinto(memoryview(buf)[:n])
        self.left -= got
        return got
