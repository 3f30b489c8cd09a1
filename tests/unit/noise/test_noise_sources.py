"""Each reader on small data written in the real on-disk formats; audits against changed sources."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from noise_fixtures import write_imagefolder, write_shards

from nmlbench.errors import UserError
from nmlbench.noise import NoiseConfig, SourceSpec, apply_noise, read_manifest
from nmlbench.noise.audit import audit
from nmlbench.noise.sources import fingerprint, read_source

SYM = NoiseConfig(kind="symmetric_label", rate=0.25, seed=0)
CAP = NoiseConfig(kind="caption_derangement", rate=0.4, seed=0)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_imagefolder(tmp_path: Path, out_root: Path) -> None:
    root = write_imagefolder(tmp_path / "imagenet" / "train")
    spec = SourceSpec(type="imagefolder", path=str(root))
    t = read_source(spec, "label")
    assert t.classes == ("n00000000", "n00000001", "n00000002") and len(t) == 12  # README.txt skipped
    assert t.ids[0].as_py() == "n00000000/img_0.png" and t.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    p = apply_noise(spec, SYM, root=out_root)
    assert p.parent.parent.name == "imagenet-train" and read_manifest(p)[1]["n_corrupted"] == 3
    assert audit(p)["source_check"]["n_checked"] == 12
    (root / "n00000001" / "img_0.png").unlink()
    with pytest.raises(UserError, match="no longer matches its source.*1 manifest ids are missing"):
        audit(p)
    shutil.move(root / "n00000002" / "img_1.JPEG", root / "n00000001" / "img_9.JPEG")
    with pytest.raises(UserError, match="no longer matches"):
        audit(p)


def test_imagefolder_bad(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        read_source(SourceSpec(type="imagefolder", path=str(tmp_path / "nope")), "label")
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(UserError, match="no samples"):
        read_source(SourceSpec(type="imagefolder", path=str(tmp_path / "empty")), "label")


@pytest.mark.parametrize("fmt", ["csv", "tsv", "parquet", "jsonl"])
def test_label_tables(tmp_path: Path, fmt: str) -> None:
    df = pd.DataFrame({"path": ["b.jpg", "a.jpg", "c.jpg", "d.jpg"], "y": ["cat", "dog", "cat", "emu"]})
    f = tmp_path / f"labels.{fmt}"
    {
        "csv": lambda: df.to_csv(f, index=False),
        "tsv": lambda: df.to_csv(f, sep="\t", index=False),
        "parquet": lambda: df.to_parquet(f),
        "jsonl": lambda: df.to_json(f, orient="records", lines=True),
    }[fmt]()
    t = read_source(SourceSpec(type="labels", path=str(f), id_column="path", label_column="y"), "label")
    assert t.ids.to_pylist() == ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]
    assert t.classes == ("cat", "dog", "emu") and t.labels.tolist() == [1, 0, 0, 2]


def test_label_table_bad_input(tmp_path: Path) -> None:
    f = tmp_path / "l.csv"
    f.write_text("id,label\na,0\nb,7\n")
    with pytest.raises(UserError, match="label 7 .* outside 0..2 for 3 classes"):
        read_source(SourceSpec(type="labels", path=str(f), num_classes=3), "label")
    f.write_text("id,label\na,0\nb,1\na,1\n")
    with pytest.raises(UserError, match="1 duplicate sample id.*'a'"):
        read_source(SourceSpec(type="labels", path=str(f)), "label")
    f.write_text("id,label\n")
    with pytest.raises(UserError, match="no samples"):
        read_source(SourceSpec(type="labels", path=str(f)), "label")
    f.write_text("id,lbl\na,0\n")
    with pytest.raises(UserError, match="no column 'label'.*--label-column"):
        read_source(SourceSpec(type="labels", path=str(f)), "label")
    with pytest.raises(UserError, match="unknown format"):
        read_source(SourceSpec(type="labels", path=str(f.rename(tmp_path / "l.xlsx"))), "label")


def test_caption_table(tmp_path: Path, out_root: Path) -> None:
    f = tmp_path / "cc.parquet"
    pd.DataFrame(
        {"key": [f"k{i}" for i in range(10)], "text": [f"caption {i}" for i in range(10)]}
    ).to_parquet(f)
    spec = SourceSpec(type="captions", path=str(f), id_column="key", caption_column="text")
    t = read_source(spec, "caption")
    assert t.caption_sha256[0].as_py() == sha("caption 0") and t.labels is None
    p = apply_noise(spec, CAP, root=out_root)
    df, meta = read_manifest(p)
    assert meta["n_corrupted"] == 4 and (df["donor_id"] != df["sample_id"]).sum() == 4
    pd.DataFrame(
        {"key": [f"k{i}" for i in range(10)], "text": [f"caption {i}" for i in range(9)] + ["edited"]}
    ).to_parquet(f)
    with pytest.raises(UserError, match="1 captions differ.*'k9'"):
        audit(p)


@pytest.mark.parametrize("ext", ["txt", "json"])
def test_webdataset_captions(tmp_path: Path, out_root: Path, ext: str) -> None:
    pattern = write_shards(tmp_path / "cc12m", caption_ext=ext)
    spec = SourceSpec(type="wds", path=pattern)
    t = read_source(spec, "caption")
    assert len(t) == 10 and t.ids[3].as_py() == "000000003"
    assert t.caption_sha256[3].as_py() == sha("a photo of thing number 3")
    p = apply_noise(spec, CAP, root=out_root)
    assert p.parent.parent.name == "cc12m" and read_manifest(p)[1]["n_corrupted"] == 4
    assert audit(p)["source_check"]["status"] == "ok"


def test_webdataset_labels_and_missing_shard(tmp_path: Path) -> None:
    pattern = write_shards(tmp_path / "in1k", caption_ext="json", with_cls=False)
    t = read_source(SourceSpec(type="wds", path=pattern), "label")  # json "label" key
    assert t.labels.tolist() == [i % 3 for i in range(10)]
    pattern = write_shards(tmp_path / "in1k-cls", with_cls=True)
    assert read_source(SourceSpec(type="wds", path=pattern), "label").labels.tolist() == [
        i % 3 for i in range(10)
    ]
    with pytest.raises(UserError, match="shard .*shards-000002.tar.* does not exist"):
        read_source(
            SourceSpec(type="wds", path=str(tmp_path / "in1k" / "shards-{000000..000002}.tar")), "label"
        )
    with pytest.raises(UserError, match="has no .cls"):
        read_source(SourceSpec(type="wds", path=write_shards(tmp_path / "nolab", with_cls=False)), "label")


def test_hf_save_to_disk(tmp_path: Path, out_root: Path) -> None:
    import datasets

    feats = datasets.Features(
        {
            "id": datasets.Value("string"),
            "caption": datasets.Value("string"),
            "label": datasets.ClassLabel(names=["ant", "bee", "cow"]),
        }
    )
    ds = datasets.Dataset.from_dict(
        {
            "id": [f"s{i}" for i in range(12)],
            "caption": [f"c{i}" for i in range(12)],
            "label": [i % 3 for i in range(12)],
        },
        features=feats,
    )
    datasets.DatasetDict({"train": ds, "test": ds.select(range(4))}).save_to_disk(str(tmp_path / "hfds"))
    spec = SourceSpec(type="hf", path=str(tmp_path / "hfds"))
    t = read_source(spec, "label")
    assert t.classes == ("ant", "bee", "cow") and len(t) == 12 and t.ids[1].as_py() == "s1"
    assert read_source(spec, "caption").caption_sha256[0].as_py() == sha("c0")
    assert len(read_source(SourceSpec(type="hf", path=str(tmp_path / "hfds"), split="test"), "label")) == 4
    p = apply_noise(spec, SYM, root=out_root)
    assert read_manifest(p)[1]["n_corrupted"] == 3 and audit(p)["source_check"]["status"] == "ok"
    ds.remove_columns("id").save_to_disk(str(tmp_path / "noid"))
    assert (
        read_source(SourceSpec(type="hf", path=str(tmp_path / "noid")), "label").ids[0].as_py() == "000000000"
    )
    with pytest.raises(UserError, match="no split 'val'"):
        read_source(SourceSpec(type="hf", path=str(tmp_path / "hfds"), split="val"), "label")


def test_mini_reader(fake_mini) -> None:
    t = read_source(SourceSpec(type="mini"), "label")
    assert len(t) == 300 and t.labels is not None and t.caption_sha256 is not None
    assert t.ids.to_pylist() == sorted(fake_mini.ids.tolist())
    assert fingerprint(t) == fingerprint(read_source(SourceSpec(type="mini"), "caption"))


def test_unknown_source_type() -> None:
    with pytest.raises(UserError, match="unknown source type 'imgfolder'; did you mean 'imagefolder'"):
        read_source(SourceSpec(type="imgfolder", path="x"), "label")


def test_source_is_never_modified(tmp_path: Path, out_root: Path) -> None:
    pattern = write_shards(tmp_path / "cc")
    before = {p.name: p.read_bytes() for p in (tmp_path / "cc").iterdir()}
    apply_noise(SourceSpec(type="wds", path=pattern), CAP, root=out_root)
    assert {p.name: p.read_bytes() for p in (tmp_path / "cc").iterdir()} == before
    assert (
        json.loads((out_root / "noisy" / "cc" / "cap40-s0" / "manifest.json").read_text())["source"]["type"]
        == "wds"
    )
