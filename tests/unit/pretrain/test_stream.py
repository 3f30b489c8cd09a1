"""Streaming shards at scale: every sample once across nodes x ranks x workers, each byte read once,
exact mid-epoch resume, one memory-mapped target table shared by all workers."""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from nmlbench.cli import main
from nmlbench.noise import NoiseConfig, SourceSpec, apply_noise
from nmlbench.pretrain.config import DataConfig
from nmlbench.pretrain.loader import Sharding, tensor_transform
from nmlbench.pretrain.shardplan import Layout, plan_epoch
from nmlbench.pretrain.sources import open_source
from nmlbench.pretrain.stream import ShardStream, Streamed, read_piece
from nmlbench.pretrain.targets import TargetTable, write_table

COUNTS = (7, 3, 11, 5, 9, 6, 1)  # 42 samples in 7 shards: divides evenly by nothing that matters


def _png(seed: int) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 255, (8, 8, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _shards(root: Path, counts=COUNTS) -> str:
    import webdataset as wds

    root.mkdir(parents=True, exist_ok=True)
    i = 0
    for s, n in enumerate(counts):
        with wds.TarWriter(str(root / f"s-{s:03d}.tar")) as sink:
            for _ in range(n):
                sink.write({"__key__": f"k{i:04d}", "png": _png(i), "cls": str(i % 3)})
                i += 1
    return str(root / f"s-{{000..{len(counts) - 1:03d}}}.tar")


@pytest.fixture
def shards(tmp_path):
    """A source over uneven shards and a table whose 'label' of sample i is i (to see who read what)."""
    src = open_source(DataConfig(source="webdataset", path=_shards(tmp_path / "wds")))
    table = tmp_path / "table"
    write_table(table, src.ids, np.arange(len(src.ids), dtype=np.int64), src.shard_index)
    return src, TargetTable(table)


def _stream(src, table, rank, world, workers, batch=3, steps=None, epoch=0, start=0, sampling="partition"):
    steps = steps if steps is not None else len(src.ids) // (batch * world)
    streamed = Streamed(table, steps, batch, sampling, 8)
    transform = tensor_transform(8, (0.5,) * 3, (0.5,) * 3, 0.5, 0.5, 0.0)
    ds = ShardStream(
        src.shards, src.image_exts, transform, Sharding(0, epoch, rank, world, start), workers, streamed
    )
    return DataLoader(ds, batch_size=None, num_workers=workers)


def _seen(src, table, world, workers, **kw) -> list[list[int]]:
    """Per rank, the data indices of its batches in order (the table maps sample i to i)."""
    out = []
    for rank in range(world):
        out.append(
            [i for _, items, skipped in _stream(src, table, rank, world, workers, **kw) for i in items]
        )
    return out


@pytest.mark.parametrize(("world", "workers"), [(2, 2), (4, 2)])  # 2 ranks x 2 workers; 2 nodes x 2 ranks x 2
def test_every_sample_once_and_equal_steps(shards, world, workers):
    src, table = shards
    batch = 4
    steps = len(src.ids) // (batch * world)  # 42 // 8 = 5, 42 // 16 = 2
    per_rank = _seen(src, table, world, workers, batch=batch)
    assert [len(r) for r in per_rank] == [steps * batch] * world  # equal step counts, full batches
    seen = [i for r in per_rank for i in r]
    assert len(seen) == len(set(seen)) == steps * batch * world  # nothing twice
    # the samples left out are the tail of this epoch's shard order, not always the same ones
    other = {i for r in _seen(src, table, world, workers, batch=batch, epoch=1) for i in r}
    assert other != set(seen)


def test_plan_covers_the_shards_once(shards):
    counts = np.array(COUNTS)
    for world, workers, batch in [(2, 2, 3), (4, 2, 3), (3, 4, 1), (1, 1, 42), (8, 3, 1)]:
        steps = int(counts.sum()) // (batch * world)
        plan = plan_epoch(counts, Layout(world, workers, batch, steps), seed=5, epoch=2)
        taken = [(p.shard, p.first + j) for slot in plan for p in slot for j in range(p.count)]
        assert len(taken) == len(set(taken)) == steps * batch * world
        lay = Layout(world, workers, batch, steps)
        assert [sum(p.count for p in slot) for slot in plan] == [
            lay.quota(w) for _ in range(world) for w in range(lay.readers)
        ]


def test_each_byte_read_once(shards, tmp_path):
    """read() system calls of the process (Linux rchar) equal the bytes of the samples planned."""
    src, table = shards
    world, workers, batch = 2, 2, 3
    steps = len(src.ids) // (batch * world)
    plan = plan_epoch(np.array(COUNTS), Layout(world, workers, batch, steps), 0, 0)
    a = table.arrays
    starts = np.concatenate([[0], np.cumsum(COUNTS)])
    planned = 0
    for slot in plan:
        for p in slot:
            base = int(starts[p.shard]) + p.first
            stop = (
                a["ends"][p.shard] if p.first + p.count == COUNTS[p.shard] else a["offsets"][base + p.count]
            )
            planned += int(stop - a["offsets"][base])

    def rchar() -> int:
        line = next(x for x in Path("/proc/self/io").read_text().splitlines() if x.startswith("rchar"))
        return int(line.split()[1])

    starts_list = starts.tolist()
    probe = rchar()
    before = rchar()
    own = before - probe  # reading /proc/self/io counts too
    got = 0
    for slot in plan:
        for p in slot:
            got += sum(1 for _ in read_piece(src.shards[p.shard], p, starts_list[p.shard] + p.first, table))
    read = rchar() - before - own
    assert got == steps * batch * world
    total = sum(Path(u).stat().st_size for u in src.shards)
    assert read == planned < total  # 1.0x the samples' own bytes; the unread tail and tar padding untouched


@pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")
@pytest.mark.parametrize(("workers", "start"), [(0, 4), (2, 4), (2, 5), (3, 4)])
def test_resume_mid_epoch_gives_the_remaining_batches(shards, workers, start):
    src, table = shards
    full = list(_stream(src, table, 1, 2, workers, epoch=3))
    tail = list(_stream(src, table, 1, 2, workers, epoch=3, start=start))
    assert len(tail) == len(full) - start
    for (x, t, _), (y, u, _) in zip(full[start:], tail, strict=True):
        assert t == u and torch.equal(x, y)


def test_resampled_fills_the_epoch_from_drawn_shards(shards):
    src, table = shards
    per_rank = _seen(src, table, 2, 2, batch=4, steps=10, sampling="resampled")  # 80 > 42 samples
    assert [len(r) for r in per_rank] == [40, 40]
    assert per_rank == _seen(src, table, 2, 2, batch=4, steps=10, sampling="resampled")  # seeded


def test_workers_get_the_table_by_name_not_by_value(tmp_path):
    """The dataset a worker receives is small whatever the data size; its rows are shared pages."""
    n = 2_000_000
    ids = np.char.add("id", np.arange(n).astype(str))
    from nmlbench.readers.base import ShardIndex

    index = ShardIndex(np.array([n]), np.full(n, -1, dtype=np.int64), np.array([-1]))
    write_table(tmp_path / "t", ids, np.arange(n, dtype=np.int64) % 1000, index)
    table = TargetTable(tmp_path / "t")
    streamed = Streamed(table, 1, 1, "partition", 8)
    ds = ShardStream(["x.tar"], ("png",), str, Sharding(0, 0), 2, streamed)
    assert table.target(n - 1) == (n - 1) % 1000  # opened here too: the maps must not travel
    assert len(pickle.dumps(ds)) < 4096  # 16 MB of labels + 8 MB of key hashes are not in it

    # spawn: the worker gets the dataset pickled, as on macOS/Windows and under forkserver; forked
    # workers would inherit the parent's pages either way
    loader = DataLoader(_Probe(table), batch_size=None, num_workers=1, multiprocessing_context="spawn")
    private, label_sum = next(iter(loader))
    assert label_sum == int((np.arange(n) % 1000).sum())
    assert private < 4 * 2**20, f"the worker copied {private / 2**20:.1f} MB of a 16 MB table"


class _Probe(torch.utils.data.IterableDataset):
    """In a worker: touch every label and report how much the worker's anonymous memory grew.

    Clean file-backed pages live in the page cache, shared by every process that maps the file and
    reclaimable; a copy of the table (unpickled, or np.load without mmap) would be anonymous memory.
    """

    def __init__(self, table):
        self.table = table

    def __iter__(self):
        before = _private()
        total = int(np.asarray(self.table.arrays["labels"]).sum())
        yield _private() - before, total


def _private() -> int:
    rows = Path("/proc/self/smaps_rollup").read_text().splitlines()
    return sum(int(r.split()[1]) * 1024 for r in rows if r.startswith("Anonymous:"))


def test_streamed_pretraining_resumes_mid_epoch_bit_identical(tmp_path, monkeypatch):
    from nmlbench.io import sha256_file
    from nmlbench.pretrain import train

    pattern = _shards(tmp_path / "wds")
    man = apply_noise(
        SourceSpec(type="wds", path=pattern),
        NoiseConfig(kind="symmetric_label", rate=0.2),
        root=tmp_path / "out",
    )

    def args(out, *extra):
        return [
            "pretrain", "--noise", "20%", "--out", str(out), "--set", "model=nmlbench_tinyresnet",
            "--set", "optim.epochs=2", "--set", "optim.batch_size=4", "--set", "optim.warmup_steps=0",
            "--set", "data.source=webdataset", "--set", f"data.path={pattern}", "--set", "data.name=w",
            "--set", f"data.manifest={man}", "--set", "data.num_workers=2", "--set", "ckpt_every_steps=7",
            *extra,
        ]  # fmt: skip

    assert main(args(tmp_path / "out")) == 0
    ref = tmp_path / "out" / "ckpt" / "nmlbench_tinyresnet.w_sym20_s0"
    meta = json.loads((ref / "checkpoint.json").read_text())
    assert meta["step"] == 20 and meta["corrupt_skipped"] == 0  # 42 // 4 = 10 steps per epoch

    real = train._save_interval

    def stop(run, step, metrics):
        real(run, step, metrics)
        raise KeyboardInterrupt  # step 7: in the middle of the first epoch

    monkeypatch.setattr(train, "_save_interval", stop)
    assert main(args(tmp_path / "b")) == 130
    monkeypatch.setattr(train, "_save_interval", real)
    assert main(args(tmp_path / "b", "--set", "data.num_workers=1")) == 2  # other readers, other batches
    assert main(args(tmp_path / "b")) == 0
    done = tmp_path / "b" / "ckpt" / "nmlbench_tinyresnet.w_sym20_s0"
    assert sha256_file(done / "model.safetensors") == sha256_file(ref / "model.safetensors")
    assert not list((tmp_path / "b" / "ckpt").glob(".partial/*"))  # the table went with the work folder
