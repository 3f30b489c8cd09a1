"""Which samples of which shards each reader of an epoch reads: every byte once across nodes, ranks, workers.

A *slot* is one reader: DataLoader worker w of rank r is slot r * W + w. An epoch's plan is a pure
function of (seed, epoch, shard sizes, ranks, workers, batch size, steps), so every process computes
the same plan without talking to the others, and a resumed run recomputes the one it was reading.

`partition` (the default) shuffles the shards, lays their samples end to end and cuts that stream
into one contiguous run per slot, each exactly as long as the batches the slot must produce. Slots
meet inside shards, not at shard edges, so every rank gets the same number of full batches whatever
the shard sizes, each sample is read once, and the samples past the last full global batch are not
read at all (they change every epoch with the shard order). `resampled` is open_clip's other mode:
each slot draws whole shards with replacement (weighted by size) until its quota is filled; samples
may repeat or be missed within an epoch, and `samples_per_epoch` may exceed the data.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from nmlbench.pretrain.seeds import mix


@dataclass(frozen=True)
class Piece:
    """`count` consecutive samples of shard `shard`, starting at its sample `first`."""

    shard: int
    first: int
    count: int


@dataclass(frozen=True)
class Layout:
    """How one epoch is split: processes, DataLoader workers per process, batch size, steps."""

    world: int
    workers: int  # DataLoader workers per process; 0 and 1 are one reader
    batch_size: int
    steps: int

    @property
    def readers(self) -> int:
        return max(1, self.workers)

    def batches_of(self, worker: int) -> list[int]:
        """The rank-local batch numbers a worker yields: DataLoader takes batches from workers in turn."""
        return list(range(worker, self.steps, self.readers))

    def quota(self, worker: int) -> int:
        return len(self.batches_of(worker)) * self.batch_size


def plan_epoch(
    counts: np.ndarray, layout: Layout, seed: int, epoch: int, mode: str = "partition"
) -> list[list[Piece]]:
    """The pieces each slot reads, in reading order; `plan[rank * readers + worker]`."""
    slots = [layout.quota(w) for _ in range(layout.world) for w in range(layout.readers)]
    if mode == "resampled":
        return [_resampled(counts, q, seed, epoch, g) for g, q in enumerate(slots)]
    order = list(range(len(counts)))
    random.Random(mix(seed, epoch)).shuffle(order)
    if sum(slots) > int(np.sum(counts)):
        raise ValueError(f"the slots need {sum(slots)} samples, the shards hold {int(np.sum(counts))}")
    plan: list[list[Piece]] = []
    cursor = [0, 0]  # position in `order`, first unread sample of that shard
    for quota in slots:
        pieces: list[Piece] = []
        while quota > 0:
            shard = order[cursor[0]]
            take = min(quota, int(counts[shard]) - cursor[1])
            if take > 0:
                pieces.append(Piece(shard, cursor[1], take))
            quota -= take
            cursor[1] += take
            if cursor[1] >= counts[shard]:
                cursor[:] = [cursor[0] + 1, 0]
        plan.append(pieces)
    return plan


def _resampled(counts: np.ndarray, quota: int, seed: int, epoch: int, slot: int) -> list[Piece]:
    rng = random.Random(mix(seed, epoch, slot, 2))
    shards, weights = list(range(len(counts))), [int(c) for c in counts]
    pieces: list[Piece] = []
    while quota > 0:
        shard = rng.choices(shards, weights)[0]
        take = min(quota, int(counts[shard]))
        pieces.append(Piece(shard, 0, take))
        quota -= take
    return pieces
