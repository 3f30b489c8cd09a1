"""Batches for pretraining: deterministic order per (seed, epoch), resumable mid-epoch, DDP-sharded.

Augmentation randomness is a pure function of (seed, epoch, sample index), so a run resumed from
a checkpoint sees exactly the batches an uninterrupted run would, with any number of workers.
Samples that fail to decode are dropped from their batch and counted.
"""

from __future__ import annotations

import contextlib
import random
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info
from torchvision.transforms import v2

from nmlbench.errors import UserError
from nmlbench.pretrain.sources import Source, decode_image


@dataclass(frozen=True)
class Sharding:
    """Where this process sits: which epoch, which rank of how many, and where to start."""

    seed: int
    epoch: int
    rank: int = 0
    world: int = 1
    start_batch: int = 0


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


def _mix(*xs: int) -> int:
    """A 63-bit seed from small integers (splitmix-style: cheap, and stable across processes)."""
    h = 0x9E3779B97F4A7C15
    for x in xs:
        h = ((h ^ (int(x) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
    return h & 0x7FFFFFFFFFFFFFFF


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
        with seeded(_mix(self.seed, epoch, idx)):
            return self.transform(img), self.targets[idx]


class EpochBatches:
    """Index batches of one epoch: a seeded permutation, cut to whole global batches, strided by rank."""

    def __init__(self, n: int, batch_size: int, shard: Sharding) -> None:
        self.n, self.batch_size, self.shard = n, batch_size, shard
        self.steps = steps_per_epoch(n, batch_size, shard.world)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        s = self.shard
        perm = torch.randperm(self.n, generator=torch.Generator().manual_seed(_mix(s.seed, s.epoch)))
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


class ShardStream(IterableDataset):
    """webdataset shards streamed in a seeded order; targets looked up by key as samples arrive.

    Each DataLoader worker reads every W-th sample of this rank's stream and yields whole batches,
    so resuming at batch b means each worker skips the batches it already produced, undecoded.
    """

    def __init__(
        self,
        source: Source,
        target_by_id: dict[str, Any],
        transform: Callable,
        batch_size: int,
        shard: Sharding,
        steps: int,
    ) -> None:
        self.source, self.targets, self.transform = source, target_by_id, transform
        self.batch_size, self.shard, self.steps = batch_size, shard, steps

    def _raw(self) -> Iterator[dict[str, Any]]:
        import webdataset as wds

        s = self.shard
        rng = random.Random(_mix(s.seed, s.epoch))
        urls = list(self.source.shards)
        rng.shuffle(urls)
        pipe = wds.DataPipeline(
            wds.SimpleShardList(urls),
            wds.tarfile_to_samples(handler=wds.warn_and_continue),
            wds.shuffle(1000, rng=random.Random(_mix(s.seed, s.epoch, 1))),
        )
        for i, sample in enumerate(pipe):
            if i % s.world == s.rank:  # every rank reads all shards: equal batch counts for DDP
                yield sample

    def __iter__(self) -> Iterator[tuple[torch.Tensor, list[Any], int]]:
        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info else (0, 1)
        s = self.shard
        mine = [b for b in range(self.steps) if b % nw == wid]
        todo = [b for b in mine if b >= s.start_batch]
        samples = (x for j, x in enumerate(self._raw()) if (j // self.batch_size) % nw == wid)
        skip = (len(mine) - len(todo)) * self.batch_size
        for _ in range(skip):
            next(samples, None)
        for b in todo:
            batch = [self._decode(next(samples, None), b) for _ in range(self.batch_size)]
            yield collate(batch)

    def _decode(self, sample: dict[str, Any] | None, b: int) -> tuple[torch.Tensor, Any] | None:
        if sample is None:
            return None
        data = next((sample[e] for e in self.source.image_exts if e in sample), None)
        img = decode_image(data) if data is not None else None
        if img is None or sample["__key__"] not in self.targets:
            return None
        with seeded(_mix(self.shard.seed, self.shard.epoch, b, zlib.crc32(sample["__key__"].encode()))):
            return self.transform(img), self.targets[sample["__key__"]]


def make_loader(
    source: Source,
    targets: np.ndarray,
    transform: Callable,
    batch_size: int,
    shard: Sharding,
    num_workers: int,
) -> tuple[DataLoader, int]:
    """A DataLoader for one epoch from `shard.start_batch`, and the epoch's number of steps."""
    if source.shards:
        steps = steps_per_epoch(len(source.ids), batch_size, shard.world)
        stream = ShardStream(
            source, dict(zip(source.ids.tolist(), targets, strict=True)), transform, batch_size, shard, steps
        )
        return DataLoader(stream, batch_size=None, num_workers=num_workers), steps
    sampler = EpochBatches(len(source.ids), batch_size, shard)
    data = MapData(source, targets, transform, shard.seed)
    return DataLoader(data, batch_sampler=sampler, num_workers=num_workers, collate_fn=collate), sampler.steps
