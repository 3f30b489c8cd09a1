"""Noise injection at ImageNet and CC12M scale, on synthetic id tables; prints seconds and peak memory.

Targets: 1.28 M symmetric labels <= 2 s; 12 M caption derangement <= 60 s and <= 4 GB peak RSS.
Each case runs in its own process (so peak RSS is that case's) and times the whole path a source
reader hands over: validate + sort the table, draw the noise, build and write the parquet manifest,
hash it. Building the synthetic table is not timed (but is included in the peak RSS).

    python benchmarks/noise_scale.py                    # both cases at full size
    python benchmarks/noise_scale.py --captions 1000000 # smaller trial
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def synthetic_ids(n: int, prefix: str, rng: np.random.Generator) -> pa.Array:
    """Ids like 'c0042/img_000123456.jpg' in shuffled order (readers rarely hand over sorted ids)."""
    idx = pa.array(rng.permutation(n).astype(str))
    return pc.binary_join_element_wise(prefix, pc.utf8_lpad(idx, 9, "0"), ".jpg", "")


def synthetic_hashes(n: int, rng: np.random.Generator) -> pa.Array:
    """n random 64-char hex strings (stand-ins for caption sha256), built without a Python loop."""
    hexchars = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    nibbles = rng.integers(0, 16, size=(n, 64), dtype=np.uint8)
    data = hexchars[nibbles].reshape(-1)
    offsets = pa.py_buffer((np.arange(n + 1, dtype=np.int32) * 64).tobytes())
    return pa.Array.from_buffers(pa.string(), n, [None, offsets, pa.py_buffer(data)])


def run_case(case: str, n: int, classes: int) -> dict:
    from nmlbench.io import sha256_file
    from nmlbench.noise import NOISE
    from nmlbench.noise.base import make_table
    from nmlbench.noise.manifest import manifest_table, write_parquet

    rng = np.random.default_rng(0)
    if case == "sym":
        ids, labels = synthetic_ids(n, "img_", rng), rng.integers(0, classes, n)
        names, hashes, kind = [f"class{i}" for i in range(classes)], None, NOISE.get("symmetric_label")({})
    else:
        ids, labels, names, hashes = synthetic_ids(n, "cc/", rng), None, None, synthetic_hashes(n, rng)
        kind = NOISE.get("caption_derangement")({})
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        table = make_table(ids, labels=labels, classes=names, caption_sha256=hashes, where="synthetic")
        t1 = time.perf_counter()
        result = kind.apply(table, 0.1 if case == "sym" else 0.3, np.random.default_rng(0))
        t2 = time.perf_counter()
        write_parquet(manifest_table(table, result), Path(tmp) / "manifest.parquet")
        sha256_file(Path(tmp) / "manifest.parquet")
        t3 = time.perf_counter()
        size = (Path(tmp) / "manifest.parquet").stat().st_size
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # ru_maxrss is KiB on Linux
    return {
        "case": case,
        "n": n,
        "table_s": t1 - t0,
        "noise_s": t2 - t1,
        "manifest_s": t3 - t2,
        "total_s": t3 - t0,
        "peak_rss_gb": peak_gb,
        "manifest_mb": size / 1e6,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--labels", type=int, default=1_281_167, help="rows for the symmetric-label case")
    ap.add_argument("--captions", type=int, default=12_000_000, help="rows for the caption case")
    ap.add_argument("--case", choices=["sym", "caption"], help=argparse.SUPPRESS)  # child process
    args = ap.parse_args()
    if args.case:
        n = args.labels if args.case == "sym" else args.captions
        print(json.dumps(run_case(args.case, n, classes=1000)))
        return
    targets = {"sym": (2.0, None), "caption": (60.0, 4.0)}
    for case in ("sym", "caption"):
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--case",
                case,
                "--labels",
                str(args.labels),
                "--captions",
                str(args.captions),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        max_s, max_gb = targets[case]
        ok = r["total_s"] <= max_s and (max_gb is None or r["peak_rss_gb"] <= max_gb)
        print(
            f"{case:8s} N={r['n']:>10,}  total {r['total_s']:6.2f} s (table {r['table_s']:.2f}, noise "
            f"{r['noise_s']:.2f}, manifest {r['manifest_s']:.2f})  peak RSS {r['peak_rss_gb']:.2f} GB  "
            f"manifest {r['manifest_mb']:.0f} MB  target <= {max_s:g} s"
            + (f", <= {max_gb:g} GB" if max_gb else "")
            + f"  {'OK' if ok else 'MISSED'}"
        )


if __name__ == "__main__":
    main()
