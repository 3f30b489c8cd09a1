"""The shard loader at scale, side by side with a bare webdataset pipeline, in one run.

1. Bytes read per sample: R ranks x W DataLoader workers (ranks simulated one after another, each
   with its real worker processes), every worker's read() bytes taken from Linux's /proc/self/io,
   divided by the bytes the epoch's samples occupy in the shards (goal 1.0x). Beside it: a bare
   webdataset pipeline with split_by_node/split_by_worker, and the previous loader's way (every
   worker untars every shard) measured the same way.
2. Loader img/s against the bare webdataset pipeline doing the same JPEG decode and augmentation
   (RandomResizedCrop 224, flip, normalize), same workers, alternating runs (goal >= 0.95x).
3. Memory per worker for 12 M targets: a worker of slot 0 of 8 x 8 looks up its samples' targets in
   the memory-mapped table; its RSS growth and anonymous (copied) memory, against the RSS of the
   Python dict {id: label} every worker used to receive.

    python benchmarks/loader_scale.py                   # 64 shards of ~24 JPEGs (256x192), 12 M targets
    python benchmarks/loader_scale.py --targets 1000000 # a smaller table
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing as mp
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import webdataset as wds
from PIL import Image
from torch.utils.data import DataLoader

from nmlbench.pretrain.config import DataConfig
from nmlbench.pretrain.loader import Sharding, tensor_transform
from nmlbench.pretrain.shardplan import Layout, plan_epoch
from nmlbench.pretrain.sources import open_source
from nmlbench.pretrain.stream import ShardStream, Streamed
from nmlbench.pretrain.targets import TargetTable, write_table
from nmlbench.readers.base import ShardIndex

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def rchar() -> int:
    line = next(x for x in Path("/proc/self/io").read_text().splitlines() if x.startswith("rchar"))
    return int(line.split()[1])


def make_shards(folder: Path, n_shards: int, per_shard: int) -> str:
    """ImageNet-like JPEGs (smooth colour fields plus texture, 256x192, quality 90), uneven shard sizes."""
    rng = np.random.default_rng(0)
    i = 0
    for s in range(n_shards):
        with wds.TarWriter(str(folder / f"train-{s:04d}.tar")) as sink:
            for _ in range(per_shard + int(rng.integers(-4, 5))):
                low = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
                img = np.asarray(Image.fromarray(low).resize((256, 192), Image.BICUBIC), dtype=np.int16)
                img = np.clip(img + rng.integers(-20, 20, img.shape), 0, 255).astype(np.uint8)
                buf = io.BytesIO()
                Image.fromarray(img).save(buf, format="JPEG", quality=90)
                sink.write({"__key__": f"n{i:08d}", "jpg": buf.getvalue(), "cls": str(i % 1000)})
                i += 1
    return str(folder / f"train-{{0000..{n_shards - 1:04d}}}.tar")


class Metered(ShardStream):
    """ShardStream that writes each worker's read() bytes and batch count to a folder."""

    def __init__(self, *args, out: str, **kw):
        super().__init__(*args, **kw)
        self.out = out

    def __iter__(self):
        start, n = rchar(), 0
        for batch in super().__iter__():
            n += 1
            yield batch
        _report(self.out, rchar() - start, n)


def _report(out: str, nbytes: int, batches: int) -> None:
    with open(Path(out) / f"{os.getpid()}-{random.random()}.json", "w") as f:
        json.dump({"bytes": nbytes, "batches": batches}, f)


def _collect(out: str) -> list[dict]:
    rows = [json.loads(p.read_text()) for p in Path(out).glob("*.json")]
    for p in Path(out).glob("*.json"):
        p.unlink()
    return rows


def ours(src, table: TargetTable, world: int, workers: int, batch: int, out: str) -> dict:
    """One epoch for every rank of `world`; bytes read and batches per rank."""
    steps = len(src.ids) // (batch * world)
    streamed = Streamed(table, steps, batch, "partition", 1000)
    tf = tensor_transform(224, MEAN, STD, 0.08, 0.5, 0.0)
    per_rank, images, start = [], 0, time.perf_counter()
    for rank in range(world):
        ds = Metered(src.shards, src.image_exts, tf, Sharding(0, 0, rank, world), workers, streamed, out=out)
        n = 0
        for x, _, _ in DataLoader(ds, batch_size=None, num_workers=workers):
            n += 1
            images += len(x)
        per_rank.append(n)
    seconds = time.perf_counter() - start
    return {
        "bytes": sum(r["bytes"] for r in _collect(out)),
        "batches": per_rank,
        "images": images,
        "s": seconds,
    }


def planned_bytes(src, table: TargetTable, world: int, workers: int, batch: int) -> int:
    """The bytes the samples of this epoch occupy in their shards (headers and padding included)."""
    a, counts = table.arrays, np.asarray(table.arrays["counts"])
    starts = np.concatenate([[0], np.cumsum(counts)])
    steps = len(src.ids) // (batch * world)
    total = 0
    for slot in plan_epoch(counts, Layout(world, workers, batch, steps), 0, 0):
        for p in slot:
            base = int(starts[p.shard]) + p.first
            end = a["ends"][p.shard] if p.first + p.count == counts[p.shard] else a["offsets"][base + p.count]
            total += int(end - a["offsets"][base])
    return total


class _Bare(torch.utils.data.IterableDataset):
    """The bare webdataset pipeline: split_by_node / split_by_worker, shuffle, decode, augment, batch."""

    def __init__(self, urls, rank, world, batch, decode, out):
        self.urls, self.rank, self.world, self.batch, self.decode, self.out = (
            urls,
            rank,
            world,
            batch,
            decode,
            out,
        )

    def __iter__(self):
        tf = tensor_transform(224, MEAN, STD, 0.08, 0.5, 0.0)
        start, n = rchar(), 0
        urls = self.urls[self.rank :: self.world]  # split_by_node with this rank/world
        pipe = (
            [wds.SimpleShardList(urls), wds.split_by_worker]
            if self.decode
            else [wds.SimpleShardList(self.urls)]
        )
        pipe.append(wds.tarfile_to_samples())
        if self.decode:
            pipe += [
                wds.shuffle(1000, rng=random.Random(0)),
                wds.map(lambda s: (tf(Image.open(io.BytesIO(s["jpg"])).convert("RGB")), int(s["cls"]))),
                wds.batched(self.batch, partial=False),
            ]
        for item in wds.DataPipeline(*pipe):
            n += 1
            yield item
        _report(self.out, rchar() - start, n)


def bare(urls, world: int, workers: int, batch: int, out: str, decode: bool = True) -> dict:
    per_rank, images, start = [], 0, time.perf_counter()
    for rank in range(world):
        n = 0
        for item in DataLoader(
            _Bare(urls, rank, world, batch, decode, out), batch_size=None, num_workers=workers
        ):
            n += 1
            images += len(item[0]) if decode else 0
        per_rank.append(n)
    rows = _collect(out)
    return {"bytes": sum(r["bytes"] for r in rows), "batches": per_rank, "images": images,
            "s": time.perf_counter() - start}  # fmt: skip


def _status_kb(field: str) -> int:
    """VmRSS / VmHWM of this process (ru_maxrss would carry the parent's peak across fork + exec)."""
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(field))
    return int(line.split()[1])


def _anon_kb() -> int:
    rows = Path("/proc/self/smaps_rollup").read_text().splitlines()
    return sum(int(r.split()[1]) for r in rows if r.startswith("Anonymous:"))


class _TableWorker(torch.utils.data.IterableDataset):
    """In a worker: look up the targets of slot 0 of 8 ranks x 8 workers, as the stream would."""

    def __init__(self, table: TargetTable, per_shard: int):
        self.table, self.per_shard = table, per_shard

    def __iter__(self):
        rss0, anon0 = _status_kb("VmRSS"), _anon_kb()
        counts = np.asarray(self.table.arrays["counts"])
        starts = np.concatenate([[0], np.cumsum(counts)])
        steps = int(counts.sum()) // (256 * 8)
        acc = 0
        for p in plan_epoch(counts, Layout(8, 8, 256, steps), 0, 0)[0]:
            base = int(starts[p.shard]) + p.first
            for i in range(base, base + p.count):
                acc += self.table.target(i) + self.table.key_crc(i) % 2
        peak = _status_kb("VmHWM")
        yield {"rss_start_mb": rss0 / 1024, "peak_rss_mb": peak / 1024, "growth_mb": (peak - rss0) / 1024,
               "anon_growth_mb": (_anon_kb() - anon0) / 1024, "checksum": acc}  # fmt: skip


def table_memory(n: int, folder: Path) -> dict:
    per_shard = 1000
    ids = np.char.add("n", np.char.zfill(np.arange(n).astype(str), 9))
    index = ShardIndex(
        np.full(n // per_shard, per_shard), np.full(n, -1, dtype=np.int64), np.full(n // per_shard, -1)
    )
    t0 = time.perf_counter()
    write_table(folder / "t", ids, (np.arange(n) % 1000).astype(np.int64), index)
    written = time.perf_counter() - t0
    loader = DataLoader(_TableWorker(TargetTable(folder / "t"), per_shard), batch_size=None, num_workers=1,
                        multiprocessing_context="spawn")  # fmt: skip
    row = next(iter(loader))
    row["table_mb"] = sum(p.stat().st_size for p in (folder / "t").iterdir()) / 2**20
    row["write_s"] = written
    return row


def dict_memory(n: int) -> float:
    """RSS growth (MB) of the {id: label} dict each worker used to receive, built in a fresh process."""
    code = (
        "import numpy as np,pathlib;"
        "st=lambda:pathlib.Path('/proc/self/status').read_text().splitlines();"
        "hwm=lambda:int([x for x in st() if x.startswith('VmHWM')][0].split()[1]);"
        "r0=hwm();"
        f"ids=np.char.add('n',np.char.zfill(np.arange({n}).astype(str),9)).tolist();"
        f"d=dict(zip(ids,(np.arange({n})%1000).tolist()));del ids;"
        "print((hwm()-r0)/1024)"
    )
    return float(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shards", type=int, default=64)
    ap.add_argument("--per-shard", type=int, default=24)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--targets", type=int, default=12_000_000)
    args = ap.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "wds").mkdir()
        (tmp / "out").mkdir()
        out = str(tmp / "out")
        pattern = make_shards(tmp / "wds", args.shards, args.per_shard)
        src = open_source(DataConfig(source="webdataset", path=pattern))
        write_table(tmp / "table", src.ids, src.labels, src.shard_index)
        table = TargetTable(tmp / "table")
        shard_bytes = sum(Path(u).stat().st_size for u in src.shards)
        print(
            f"{len(src.shards)} shards, {len(src.ids)} JPEGs, {shard_bytes / 2**20:.1f} MB; "
            f"batch {args.batch}\n"
        )

        print("| nodes x ranks x workers | ours: bytes read / samples' bytes | ours: batches per rank "
              "| bare wds (split_by_node/worker): bytes / all bytes | bare: batches per rank "
              "| previous loader: bytes / all bytes |")  # fmt: skip
        print("|---|---|---|---|---|---|")
        for nodes, ranks, workers in [(1, 1, 1), (1, 2, 2), (1, 4, 2), (2, 2, 2)]:
            world = nodes * ranks
            o = ours(src, table, world, workers, args.batch, out)
            b = bare(src.shards, world, workers, args.batch, out)
            old = bare(src.shards, 1, 1, args.batch, out, decode=False)["bytes"] * world * workers
            want = planned_bytes(src, table, world, workers, args.batch)
            print(f"| {nodes} x {ranks} x {workers} | {o['bytes'] / want:.3f}x "
                  f"| {min(o['batches'])}-{max(o['batches'])} "
                  f"| {b['bytes'] / shard_bytes:.3f}x | {min(b['batches'])}-{max(b['batches'])} "
                  f"| {old / shard_bytes:.1f}x |")  # fmt: skip
        print(
            "\n(previous loader: every worker of every rank untarred every shard; "
            "measured for one reader, x R*W)"
        )

        print("\nthroughput, 1 rank x 2 workers, img/s (alternating runs; best of each):")
        ours_s, bare_s = [], []
        for _ in range(3):
            o = ours(src, table, 1, 2, args.batch, out)
            ours_s.append(o["images"] / o["s"])
            b = bare(src.shards, 1, 2, args.batch, out)
            bare_s.append(b["images"] / b["s"])
        print(f"| loader | img/s |\n|---|---|\n| nmlbench ShardStream | {max(ours_s):.0f} |\n"
              f"| bare webdataset | {max(bare_s):.0f} |\n"
              f"| ratio | {max(ours_s) / max(bare_s):.3f} |")  # fmt: skip

    with tempfile.TemporaryDirectory() as tmp:
        m = table_memory(args.targets, Path(tmp))
        d = dict_memory(args.targets)
        print(f"\nmemory per worker, {args.targets:,} targets (worker of slot 0 of 8 ranks x 8 workers):")
        print("| | MB |\n|---|---|")
        print(f"| table on disk (labels, key hashes, offsets) | {m['table_mb']:.0f} |")
        print(f"| worker RSS at start (python + torch) | {m['rss_start_mb']:.0f} |")
        print(f"| worker peak RSS | {m['peak_rss_mb']:.0f} |")
        print(f"| worker RSS growth from its lookups (shared page cache) | {m['growth_mb']:.1f} |")
        print(f"| worker anonymous (copied) memory growth | {m['anon_growth_mb']:.1f} |")
        print(f"| previous loader: the {{id: label}} dict each worker received | {d:.0f} |")
        print(f"(table written in {m['write_s']:.1f} s, once per run)")


if __name__ == "__main__":
    mp.set_start_method("fork", force=True)
    main()
