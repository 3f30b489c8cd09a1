"""Real on-disk formats written by the tests: ImageFolder, webdataset shards, HF dataset on disk."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nmlbench.cli import main
from nmlbench.errors import UserError
from nmlbench.noise import NoiseConfig, SourceSpec, apply_noise
from nmlbench.pretrain.config import DataConfig
from nmlbench.pretrain.sources import open_source

TINY = [
    "--set",
    "optim.epochs=1",
    "--set",
    "optim.batch_size=8",
    "--set",
    "optim.warmup_steps=0",
    "--set",
    "model=nmlbench_tinyresnet",
]


def _png(seed: int) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _imagefolder(root: Path, n_per_class: int = 8) -> Path:
    for c in ("cat", "dog"):
        (root / c).mkdir(parents=True)
        for i in range(n_per_class):
            (root / c / f"{i:03d}.png").write_bytes(_png(hash((c, i)) % 1000))
    return root


def _shards(root: Path, n: int = 24, corrupt: int = 0) -> str:
    import webdataset as wds

    root.mkdir(parents=True)
    with wds.ShardWriter(str(root / "s-%03d.tar"), maxcount=10) as sink:
        for i in range(n):
            img = b"not an image" if i < corrupt else _png(i)
            sink.write(
                {"__key__": f"k{i:04d}", "png": img, "txt": f"a photo number {i % 3}", "cls": str(i % 2)}
            )
    return str(root / "s-{000..002}.tar")


def test_imagefolder_reader_and_training(tmp_path):
    root = _imagefolder(tmp_path / "train")
    src = open_source(DataConfig(source="imagefolder", path=str(root)))
    assert src.ids[0] == "cat/000.png" and src.num_classes == 2 and list(np.bincount(src.labels)) == [8, 8]
    assert src.load(0).size == (32, 32)
    man = apply_noise(
        SourceSpec(type="imagefolder", path=str(root)),
        NoiseConfig(kind="symmetric_label", rate=0.25),
        root=tmp_path / "out",
    )
    args = [
        "pretrain",
        "--noise",
        "25%",
        "--out",
        str(tmp_path / "out"),
        *TINY,
        "--set",
        "data.source=imagefolder",
        "--set",
        f"data.path={root}",
        "--set",
        "data.name=folder",
        "--set",
        f"data.manifest={man}",
    ]
    assert main(args) == 0
    ck = tmp_path / "out" / "ckpt" / "nmlbench_tinyresnet.folder_sym25_s0"
    assert json.loads((ck / "checkpoint.json").read_text())["num_classes"] == 2
    # A stale manifest (the data changed after it was written) is refused before training.
    (root / "dog" / "999.png").write_bytes(_png(5))
    assert main([*args, "--set", "name_suffix=_b"]) == 2
    assert not (tmp_path / "out" / "ckpt" / "nmlbench_tinyresnet.folder_sym25_s0_b").exists()


def test_webdataset_clip_streaming_counts_corrupt(tmp_path, capsys):
    pattern = _shards(tmp_path / "wds", corrupt=1)
    src = open_source(DataConfig(source="webdataset", path=pattern))
    assert len(src.ids) == 24 and src.captions[5] == "a photo number 2" and src.num_classes == 2
    man = apply_noise(
        SourceSpec(type="wds", path=pattern),
        NoiseConfig(kind="caption_derangement", rate=0.5),
        root=tmp_path / "out",
    )
    args = [
        "pretrain",
        "--preset",
        "mini-clip",
        "--noise",
        "50%",
        "--out",
        str(tmp_path / "out"),
        "--set",
        "optim.epochs=2",
        "--set",
        "optim.batch_size=8",
        "--set",
        "data.source=webdataset",
        "--set",
        f"data.path={pattern}",
        "--set",
        "data.name=pairs",
        "--set",
        f"data.manifest={man}",
    ]
    assert main([*args, "--set", "data.max_corrupt_share=0"]) == 2
    assert "could not be decoded" in capsys.readouterr().err
    assert main([*args, "--set", "data.max_corrupt_share=0.1"]) == 0
    meta = json.loads((tmp_path / "out" / "ckpt" / "tinyclip.pairs_cap50_s0" / "checkpoint.json").read_text())
    assert meta["corrupt_skipped"] == 2  # the broken sample, once per epoch


def test_hf_dataset_on_disk(tmp_path):
    import datasets

    feats = datasets.Features(
        {
            "id": datasets.Value("string"),
            "image": datasets.Image(),
            "label": datasets.ClassLabel(names=["a", "b", "c"]),
        }
    )
    ds = datasets.Dataset.from_dict(
        {
            "id": [f"s{i}" for i in range(12)],
            "image": [Image.open(io.BytesIO(_png(i))) for i in range(12)],
            "label": [i % 3 for i in range(12)],
        },
        features=feats,
    )
    ds.save_to_disk(str(tmp_path / "hf"))
    src = open_source(DataConfig(source="hf", path=str(tmp_path / "hf")))
    assert src.num_classes == 3 and list(src.ids[:2]) == ["s0", "s1"] and src.load(3).mode == "RGB"
    args = [
        "pretrain",
        "--out",
        str(tmp_path / "out"),
        *TINY,
        "--set",
        "data.source=hf",
        "--set",
        f"data.path={tmp_path / 'hf'}",
        "--set",
        "data.name=hfd",
    ]
    assert main(args) == 0  # rate 0 on real data: clean labels, no manifest needed


def test_missing_data_root_says_how_to_get_it(tmp_path):
    with pytest.raises(UserError, match="ImageFolder root not found.*ILSVRC2012"):
        open_source(DataConfig(source="imagefolder", path=str(tmp_path / "nope")))
    with pytest.raises(UserError, match="webdataset shard not found"):
        open_source(DataConfig(source="webdataset", path=str(tmp_path / "x-{000..001}.tar")))
