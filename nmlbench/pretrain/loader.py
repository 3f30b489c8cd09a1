"""Batches for pretraining: deterministic order per (seed, epoch), resumable mid-epoch, DDP-sharded.

Augmentation randomness is a pure function of (seed, epoch, sample), so a run resumed from a
checkpoint sees exactly the batches an uninterrupted run would. In-memory and file sources are
indexed (any number of workers gives the same batches); webdataset shards are streamed
(`nmlbench.pretrain.stream`: each byte read once; the batches depend on the workers per process).
Samples that fail to decode are dropped from their batch and counted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from nmlbench.errors import UserError
from nmlbench.pretrain.seeds import mix, seeded
from nmlbench.pretrain.sources import Source

if TYPE_CHECKING:  # stream.py builds on this module's Sharding and collate
    from nmlbench.pretrain.stream import Streamed


@dataclass(frozen=True)
class Sharding:
    """Where this process sits: which epoch, which rank of how many, and where to start."""

    seed: int
    epoch: int
    rank: int = 0
    world: int = 1
    start_batch: int = 0


def tensor_transform(
    size: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    scale_min: float,
    hflip: float,
    color_jitter: float,
) -> Callable[[Any], torch.Tensor]:
    """Training augmentation for in-memory uint8 tensors or PIL images (torchvision v2)."""
    ops: list[Any] = [v2.ToImage(), v2.RandomResizedCrop(size, scale=(scale_min, 1.0), antialias=True)]
    if hflip > 0:
        ops.append(v2.RandomHorizontalFlip(hflip))
    if color_jitter > 0:
        ops.append(v2.ColorJitter(color_jitter, color_jitter, color_jitter))
    ops += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
    return v2.Compose(ops)


class MapData(Dataset):
    """Indexable samples; an index is (sample, epoch) so augmentation is seeded per sample and epoch."""

    def __init__(self, source: Source, targets: np.ndarray, transform: Callable, seed: int) -> None:
        self.source, self.targets, self.transform, self.seed = source, targets, transform, seed

    def __len__(self) -> int:
        return len(self.source.ids)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, Any] | None:
        idx, epoch = key
        img = self.source.load(idx)
        if img is None:
            return None
        with seeded(mix(self.seed, epoch, idx)):
            return self.transform(img), self.targets[idx]


class EpochBatches:
    """Index batches of one epoch: a seeded permutation, cut to whole global batches, strided by rank."""

    def __init__(self, n: int, batch_size: int, shard: Sharding) -> None:
        self.n, self.batch_size, self.shard = n, batch_size, shard
        self.steps = steps_per_epoch(n, batch_size, shard.world)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        s = self.shard
        perm = torch.randperm(self.n, generator=torch.Generator().manual_seed(mix(s.seed, s.epoch)))
        mine = perm[: self.steps * self.batch_size * s.world][s.rank :: s.world].tolist()
        for b in range(s.start_batch, self.steps):
            yield [(i, s.epoch) for i in mine[b * self.batch_size : (b + 1) * self.batch_size]]

    def __len__(self) -> int:
        return self.steps - self.shard.start_batch


def steps_per_epoch(n: int, batch_size: int, world: int) -> int:
    steps = n // (batch_size * world)
    if steps == 0:
        raise UserError(
            f"{n} samples cannot fill one global batch of {batch_size} x {world} processes; "
            "lower optim.batch_size"
        )
    return steps


def collate(items: list[tuple[torch.Tensor, Any] | None]) -> tuple[torch.Tensor, list[Any], int]:
    """Stack the decodable samples; the third element counts the ones that were skipped."""
    good = [it for it in items if it is not None]
    if not good:
        return torch.empty(0), [], len(items)
    return torch.stack([x for x, _ in good]), [t for _, t in good], len(items) - len(good)


def make_loader(
    source: Source,
    targets: np.ndarray,
    transform: Callable,
    batch_size: int,
    shard: Sharding,
    num_workers: int,
    streamed: Streamed | None = None,
) -> tuple[DataLoader, int]:
    """A DataLoader for one epoch from `shard.start_batch`, and the epoch's number of steps.

    Shard sources need `streamed` (the run's target table and epoch length, `stream.prepare`).
    """
    if source.shards:
        from nmlbench.pretrain.stream import ShardStream

        if streamed is None:
            raise ValueError("shard sources are streamed: pass the run's Streamed (stream.prepare)")
        stream = ShardStream(source.shards, source.image_exts, transform, shard, num_workers, streamed)
        return DataLoader(stream, batch_size=None, num_workers=num_workers), streamed.steps
    sampler = EpochBatches(len(source.ids), batch_size, shard)
    data = MapData(source, targets, transform, shard.seed)
    return DataLoader(data, batch_sampler=sampler, num_workers=num_workers, collate_fn=collate), sampler.steps
