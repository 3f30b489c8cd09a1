"""Manifests: format, byte-identical reruns, reuse, tamper detection, lookup helpers, ensure_manifest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from nmlbench.errors import UserError
from nmlbench.noise import (
    NoiseConfig,
    SourceSpec,
    apply_noise,
    donor_ids_for,
    ensure_manifest,
    noisy_labels_for,
    read_manifest,
)
from nmlbench.noise.audit import audit


def label_csv(path: Path, n: int = 200, c: int = 5, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    pd.DataFrame({"id": [f"img{i:04d}" for i in rng.permutation(n)], "label": rng.integers(0, c, n)}).to_csv(
        path, index=False
    )
    return path


def test_label_manifest_format(tmp_path: Path, out_root: Path) -> None:
    spec = SourceSpec(type="labels", path=str(label_csv(tmp_path / "mydata.csv")), num_classes=5)
    path = apply_noise(spec, NoiseConfig(kind="symmetric_label", rate=0.1, seed=3), root=out_root)
    assert path == out_root / "noisy" / "mydata" / "sym10-s3" / "manifest.parquet"
    tbl = pq.read_table(path)
    assert tbl.schema.names == ["sample_id", "clean_label", "noisy_label", "corrupted"]
    assert [str(t) for t in tbl.schema.types] == ["string", "int64", "int64", "bool"]
    df, meta = read_manifest(path)
    assert df["sample_id"].tolist() == sorted(df["sample_id"])
    assert df["corrupted"].sum() == 20 == meta["n_corrupted"] and meta["realized_rate"] == 0.1
    for key in (
        "recipe",
        "kind",
        "params",
        "seed",
        "nominal_rate",
        "realized_rate",
        "n_samples",
        "n_corrupted",
        "per_class",
        "transitions",
        "source",
        "generator_version",
        "manifest_sha256",
    ):
        assert key in meta
    assert (
        meta["recipe"] == "sym10"
        and meta["source"]["type"] == "labels"
        and len(meta["source"]["fingerprint"]) == 64
    )
    assert sum(v["flipped_out"] for v in meta["per_class"].values()) == 20
    assert sum(t["count"] for t in meta["transitions"]["top"]) <= 20
    assert (path.parent / "config.yaml").is_file()


def test_byte_identical_across_runs_and_row_order(tmp_path: Path) -> None:
    a = label_csv(tmp_path / "a" / "train.csv", seed=0) if (tmp_path / "a").mkdir() is None else None
    df = pd.read_csv(a).sample(frac=1.0, random_state=1)  # same data, other order
    (tmp_path / "b").mkdir()
    df.to_csv(tmp_path / "b" / "train.csv", index=False)
    cfg = NoiseConfig(kind="symmetric_label", rate=0.25, seed=7)
    p1 = apply_noise(SourceSpec(type="labels", path=str(a)), cfg, root=tmp_path / "r1")
    p2 = apply_noise(
        SourceSpec(type="labels", path=str(tmp_path / "b" / "train.csv")), cfg, root=tmp_path / "r2"
    )
    assert p1.read_bytes() == p2.read_bytes()
    m1, m2 = (
        json.loads(p1.with_name("manifest.json").read_text()),
        json.loads(p2.with_name("manifest.json").read_text()),
    )
    m1["source"].pop("path"), m2["source"].pop("path"), m1["source"].pop("spec"), m2["source"].pop("spec")
    assert m1 == m2


def test_reuse_and_conflict(tmp_path: Path, out_root: Path) -> None:
    csv = label_csv(tmp_path / "train.csv")
    spec = SourceSpec(type="labels", path=str(csv))
    cfg = NoiseConfig(kind="symmetric_label", rate=0.1)
    p = apply_noise(spec, cfg, root=out_root)
    mtime = p.stat().st_mtime_ns
    assert apply_noise(spec, cfg, root=out_root) == p and p.stat().st_mtime_ns == mtime  # reused
    label_csv(csv, seed=5)  # the source changes under the same name
    with pytest.raises(UserError, match="made from other inputs.*--overwrite"):
        apply_noise(spec, cfg, root=out_root)
    assert apply_noise(spec, cfg, root=out_root, overwrite=True) == p
    assert audit(p)["source_check"]["status"] == "ok"
    p.write_bytes(p.read_bytes()[:-10])  # a damaged manifest is never reused
    with pytest.raises(UserError, match="damaged one"):
        apply_noise(spec, cfg, root=out_root)
    assert apply_noise(spec, cfg, root=out_root, overwrite=True) == p and read_manifest(p)


def test_tampered_manifest_is_detected(tmp_path: Path, out_root: Path) -> None:
    p = apply_noise(
        SourceSpec(type="labels", path=str(label_csv(tmp_path / "t.csv"))),
        NoiseConfig(kind="symmetric_label", rate=0.2),
        root=out_root,
    )
    df = pq.read_table(p).to_pandas()
    df.loc[0, "noisy_label"] = (df.loc[0, "noisy_label"] + 1) % 5
    df.to_parquet(p, index=False)
    with pytest.raises(UserError, match="does not match the sha256"):
        read_manifest(p)
    with pytest.raises(UserError, match="does not match the sha256"):
        audit(p)


def test_edited_sidecar_is_detected(tmp_path: Path, out_root: Path) -> None:
    p = apply_noise(
        SourceSpec(type="labels", path=str(label_csv(tmp_path / "t.csv"))),
        NoiseConfig(kind="symmetric_label", rate=0.2),
        root=out_root,
    )
    side = p.with_name("manifest.json")
    meta = json.loads(side.read_text())
    meta["n_corrupted"] -= 1
    side.write_text(json.dumps(meta))
    with pytest.raises(UserError, match="sidecar .* disagrees"):
        audit(p)


def test_lookup_helpers(tmp_path: Path, out_root: Path, fake_mini) -> None:
    p = ensure_manifest("mini", "sym", "10%", seed=0, root=out_root)
    df, _ = read_manifest(p)
    ids = np.asarray(fake_mini.ids)[::-1]  # any order
    noisy = noisy_labels_for(p, ids, clean_labels=np.asarray(fake_mini.labels)[::-1])
    assert np.array_equal(noisy, df.set_index("sample_id").loc[ids, "noisy_label"].to_numpy())
    assert (noisy != np.asarray(fake_mini.labels)[::-1]).sum() == 30
    with pytest.raises(UserError, match="1 sample id.*not in the noise manifest.*'up/nope'"):
        noisy_labels_for(p, np.append(ids[:-1], "up/nope"))
    with pytest.raises(UserError, match="299 samples but the noise manifest has 300"):
        noisy_labels_for(p, ids[:-1])
    assert len(noisy_labels_for(p, ids[:10], exact=False)) == 10
    with pytest.raises(UserError, match="clean label"):
        noisy_labels_for(p, ids, clean_labels=np.zeros(len(ids), int) + 99)
    with pytest.raises(UserError, match="for labels, not captions"):
        donor_ids_for(p, ids)


def test_caption_manifest_and_donors(out_root: Path, fake_mini) -> None:
    p = ensure_manifest("mini", "caption", 0.2, seed=1, root=out_root)
    df, meta = read_manifest(p)
    assert df.columns.tolist() == ["sample_id", "caption_sha256", "donor_id", "corrupted"]
    assert meta["recipe"] == "cap20" and meta["kind"] == "caption_derangement" and meta["n_corrupted"] == 60
    donors = donor_ids_for(p, fake_mini.ids)
    moved = donors != np.asarray(fake_mini.ids)
    assert moved.sum() == 60 and set(donors[moved]) == set(np.asarray(fake_mini.ids)[moved])
    assert sum(v["corrupted"] for v in meta["per_class"].values()) == 60
    swap = ensure_manifest("mini", "caption", 0.2, seed=1, root=out_root, variant="pair_swap")
    assert read_manifest(swap)[1]["recipe"] == "capswap20"
    with pytest.raises(UserError, match="for captions, not labels"):
        noisy_labels_for(p, fake_mini.ids)


def test_ensure_manifest_names_and_errors(tmp_path: Path, out_root: Path, fake_mini) -> None:
    assert ensure_manifest("mini", "sym", 0.1, root=out_root).parent.name == "sym10-s0"
    ref = ensure_manifest("mini", "symmetric_label", 0.1, root=out_root, include_true_class=True)
    assert ref.parent.name.startswith("sym10-") and ref.parent.name != "sym10-s0"
    assert ensure_manifest("mini", "asym", 0.2, root=out_root).parent.name == "pairflip20-s0"
    with pytest.raises(UserError, match="did you mean 'mini'"):
        ensure_manifest("minni", "sym", 0.1, root=out_root)
    with pytest.raises(UserError, match="did you mean 'symmetric_label'"):
        ensure_manifest("mini", "symetric_label", 0.1, root=out_root)
    with pytest.raises(UserError, match="outside"):
        ensure_manifest("mini", "sym", "110%", root=out_root)
    with pytest.raises(UserError, match="gives captions, but label noise"):
        apply_noise(
            SourceSpec(type="captions", path=str(_caption_csv(tmp_path))),
            NoiseConfig(kind="symmetric_label", rate=0.1),
            root=out_root,
        )


def _caption_csv(tmp_path: Path) -> Path:
    p = tmp_path / "caps.csv"
    pd.DataFrame({"id": ["a", "b", "c"], "caption": ["x", "y", "z"]}).to_csv(p, index=False)
    return p


def test_real_mini_benchmark(out_root: Path) -> None:
    """The built-in benchmark itself (generated once per session into the shared data cache)."""
    pytest.importorskip("nmlbench.mini")
    from nmlbench.mini import load_upstream

    up = load_upstream()
    p = ensure_manifest("mini", "sym", "10%", root=out_root)
    df, meta = read_manifest(p)
    assert meta["n_samples"] == len(up.ids) and meta["n_corrupted"] == round(0.1 * len(up.ids))
    assert noisy_labels_for(p, up.ids, clean_labels=up.labels).shape == (len(up.ids),)
    assert audit(p)["source_check"]["status"] == "ok"
