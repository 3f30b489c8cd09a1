"""Checkpoint names carry the manifest's recipe; checkpoint.json carries data name and pretrain_key."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nmlbench.pretrain.config import load_pretrain_config
from nmlbench.pretrain.noisy import apply_manifest, recipe_identity
from nmlbench.pretrain.sources import Source
from nmlbench.pretrain.train import pretrain_key, run_name


def _folder_cfg(root: Path, *sets: str):
    return load_pretrain_config(
        "mini-resnet",
        None,
        ["data.source=imagefolder", "data.name=folder", "data.path=imgs", *sets],
    )


def _real_manifest(root: Path, kind: str, rate: float) -> Path:
    """A real `nmlbench noise` manifest for a 40-sample, 4-class label table."""
    from nmlbench.noise import NoiseConfig, apply_noise
    from nmlbench.noise.sources import SourceSpec

    table = root / "labels.csv"
    if not table.exists():
        rows = "\n".join(f"img{i:03d}.png,{i % 4}" for i in range(40))
        table.write_text("id,label\n" + rows + "\n")
    spec = SourceSpec(type="labels", path=str(table), name="folder", num_classes=4)
    return apply_noise(spec, NoiseConfig(kind=kind, rate=rate, seed=0), root=root)


def test_manifest_recipes_of_one_rate_get_different_names(tmp_path: Path) -> None:
    """Regression: sym / pairflip manifests at 20 % were both named `..._sym20_s0` and collided."""
    names = set()
    for kind in ("symmetric_label", "pairflip_label"):
        manifest = _real_manifest(tmp_path, kind, 0.2)
        cfg = _folder_cfg(tmp_path, "noise.rate=0.2", f"data.manifest={manifest}")
        names.add(run_name(cfg, tmp_path))
    assert names == {"tinyresnet.folder_sym20_s0", "tinyresnet.folder_pairflip20_s0"}


def test_recipe_name_from_sidecar_is_made_safe_and_keeps_a_foreign_noise_seed(tmp_path: Path) -> None:
    man = tmp_path / "m" / "manifest.parquet"
    man.parent.mkdir()
    man.write_bytes(b"")  # run_name reads the sidecar only
    (man.parent / "manifest.json").write_text(json.dumps({"recipe": "my group/20 %", "seed": 3}))
    cfg = _folder_cfg(tmp_path, "noise.rate=0.2", f"data.manifest={man}")
    assert run_name(cfg, tmp_path) == "tinyresnet.folder_my-group-20-n3_s0"


def test_clean_run_without_manifest_is_named_clean_with_noise_kind_none(tmp_path: Path) -> None:
    """Regression: a clean run without a manifest was named `_sym0_` and labelled kind 'sym'."""
    cfg = _folder_cfg(tmp_path)
    assert run_name(cfg, tmp_path) == "tinyresnet.folder_clean_s0"
    ids = np.array([f"x{i}" for i in range(6)])
    source = Source(ids, np.arange(6) % 2, None, 2, "fp")
    targets = apply_manifest(cfg, source, None)
    assert targets.noise == {"kind": "none", "rate": 0.0, "seed": 0, "recipe": "clean"}
    # mini manifests made on demand keep their derived names (sym0 is a real manifest there)
    assert run_name(load_pretrain_config("mini-resnet", None, []), tmp_path) == "tinyresnet.mini_sym0_s0"


def test_pretrain_key_is_the_recipe_without_seed_or_runtime_settings(tmp_path: Path) -> None:
    noise = recipe_identity({"kind": "symmetric_label", "nominal_rate": 0.1, "recipe": "sym10", "seed": 4})
    key = pretrain_key(_folder_cfg(tmp_path, "noise.rate=0.1"), "fp", noise)
    assert len(key) == 16 and int(key, 16) >= 0
    same = [
        _folder_cfg(tmp_path, "noise.rate=0.1", "seed=1"),  # seeds of one recipe share the key
        _folder_cfg(tmp_path, "noise.rate=0.1", "threads=4", "log_every_steps=3", "data.num_workers=2"),
        _folder_cfg(tmp_path, "noise.rate=0.1", "name_suffix=_b", "slurm.partition=gpu"),
    ]
    assert {pretrain_key(c, "fp", noise) for c in same} == {key}
    other = recipe_identity({**noise, "kind": "pairflip_label", "recipe": "pairflip10"})
    assert pretrain_key(_folder_cfg(tmp_path, "noise.rate=0.1"), "fp", other) != key
    assert pretrain_key(_folder_cfg(tmp_path, "noise.rate=0.1"), "fp2", noise) != key
    assert pretrain_key(_folder_cfg(tmp_path, "noise.rate=0.1", "optim.epochs=5"), "fp", noise) != key


@pytest.mark.usefixtures("tiny_mini")
def test_checkpoint_json_has_data_name_and_pretrain_key(tmp_path: Path) -> None:
    from fakes import TINY

    from nmlbench.cli import main

    assert main(["pretrain", "--out", str(tmp_path), *TINY]) == 0
    ck = tmp_path / "ckpt" / "tinyresnet.mini_sym0_s0"
    meta = json.loads((ck / "checkpoint.json").read_text())
    assert meta["data"] == "mini" and len(meta["pretrain_key"]) == 16
    assert meta["name"] == ck.name and meta["noise"]["kind"] == "symmetric_label"
