"""Shard-streaming settings: meaningless or impossible values are one line, exit 2, nothing written."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nmlbench.noise import NoiseConfig, SourceSpec, apply_noise

TINY = ["--set", "optim.epochs=1", "--set", "optim.batch_size=4", "--set", "model=nmlbench_tinyresnet"]

CASES = {
    "mini-samples-per-epoch": (
        ["--set", "data.samples_per_epoch=64"],
        ["samples_per_epoch", "webdataset", "remove"],
    ),
    "mini-resampled": (
        ["--set", "data.shard_sampling=resampled"],
        ["shard_sampling", "webdataset shards only"],
    ),
    "mini-buffer": (["--set", "data.shuffle_buffer=10"], ["shuffle_buffer", "webdataset shards only"]),
    "wds-buffer-zero": (["--shards", "--set", "data.shuffle_buffer=0"], ["shuffle_buffer", ">= 1"]),
    "wds-sampling-unknown": (
        ["--shards", "--set", "data.shard_sampling=random"],
        ["shard_sampling", "partition"],
    ),
    "wds-more-than-data": (
        ["--shards", "--set", "data.samples_per_epoch=100"],
        ["samples_per_epoch=100", "12 samples", "resampled"],
    ),
}


def _shards(root: Path) -> str:
    import webdataset as wds

    root.mkdir(parents=True)
    with wds.ShardWriter(str(root / "s-%03d.tar"), maxcount=5) as sink:
        for i in range(12):
            buf = io.BytesIO()
            Image.fromarray(np.full((8, 8, 3), i, np.uint8)).save(buf, format="PNG")
            sink.write({"__key__": f"k{i:03d}", "png": buf.getvalue(), "cls": str(i % 2)})
    return str(root / "s-{000..002}.tar")


@pytest.mark.parametrize("extra, expect", CASES.values(), ids=CASES.keys())
def test_bad_stream_setting(reject, tmp_path, extra, expect):
    argv = ["pretrain", *TINY]
    watch: list[Path] = []
    if extra[0] == "--shards":
        extra = extra[1:]
        pattern = _shards(tmp_path / "wds")
        spec = SourceSpec(type="wds", path=pattern)
        man = apply_noise(spec, NoiseConfig(kind="symmetric_label", rate=0.2), root=tmp_path / "man")
        argv += ["--noise", "20%", "--set", "data.source=webdataset", "--set", f"data.path={pattern}"]
        argv += ["--set", f"data.manifest={man}", "--set", "data.name=w"]
        watch = [tmp_path]
    reject([*argv, *extra], expect=expect, watch=watch)
