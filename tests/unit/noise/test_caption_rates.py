"""Caption manifests report both realized rates: donor changed, and caption text changed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nmlbench.cli import main
from nmlbench.noise import NoiseConfig, SourceSpec, apply_noise, read_manifest
from nmlbench.noise.audit import audit


@pytest.mark.parametrize("kind", ["caption_derangement", "caption_pair_swap"])
def test_templated_captions_change_text_less_often_than_donors(
    tmp_path: Path, out_root: Path, kind: str, capsys: pytest.CaptureFixture
) -> None:
    texts = [f"a photo of a {c}" for c in np.arange(200) % 4]  # templated: 4 distinct captions
    f = tmp_path / "cc.parquet"
    pd.DataFrame({"key": [f"k{i:03d}" for i in range(200)], "text": texts}).to_parquet(f)
    spec = SourceSpec(type="captions", path=str(f), id_column="key", caption_column="text")
    p = apply_noise(spec, NoiseConfig(kind=kind, rate=0.3, seed=0), root=out_root)
    df, meta = read_manifest(p)
    by_id = dict(zip(df["sample_id"], df["caption_sha256"], strict=True))
    changed = int((df["donor_id"].map(by_id) != df["caption_sha256"]).sum())
    moved = int((df["donor_id"] != df["sample_id"]).sum())
    assert meta["n_corrupted"] == moved and meta["realized_rate"] == moved / 200
    assert meta["n_text_changed"] == changed and meta["realized_text_rate"] == changed / 200
    assert 0 < changed < moved  # a donor with the same template leaves the text unchanged
    rep = audit(p)
    assert rep["realized_text_rate"] == changed / 200 and rep["realized_rate"] == moved / 200
    assert main(["noise", "audit", str(p)]) == 0
    assert f"text changed {changed / 200:.4%} ({changed} samples)" in capsys.readouterr().out
    edited = json.loads((p.parent / "manifest.json").read_text())
    edited["n_text_changed"] += 1
    (p.parent / "manifest.json").write_text(json.dumps(edited))
    assert main(["noise", "audit", str(p)]) == 2 and "n_text_changed" in capsys.readouterr().err


def test_distinct_captions_change_text_whenever_the_donor_changes(tmp_path: Path, out_root: Path) -> None:
    f = tmp_path / "cc.parquet"
    pd.DataFrame(
        {"key": [f"k{i}" for i in range(50)], "text": [f"caption {i}" for i in range(50)]}
    ).to_parquet(f)
    spec = SourceSpec(type="captions", path=str(f), id_column="key", caption_column="text")
    _, meta = read_manifest(
        apply_noise(spec, NoiseConfig(kind="caption_derangement", rate=0.2), root=out_root)
    )
    assert meta["n_text_changed"] == meta["n_corrupted"] == 10
