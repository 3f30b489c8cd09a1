"""Model references: resolution order, ambiguity, pretrained weights, image size and identity keys."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import open_clip
import pytest
import timm
import torch
from ckpt_files import write_checkpoint
from PIL import Image

from nmlbench.errors import UserError
from nmlbench.eval.config import load_eval_config
from nmlbench.models import load_backbone, zoo
from nmlbench.models.fetch import fetch_weights
from nmlbench.models.refs import model_identity, parse_ref

# names timm and open_clip both know (9 with timm 1.0 / open_clip 3.3: convnext_*, swin_base_..., ...)
BOTH = sorted(set(timm.list_models()) & set(open_clip.list_models()))


def test_the_libraries_share_names() -> None:
    assert {"convnext_tiny", "swin_base_patch4_window7_224"} <= set(BOTH)


@pytest.mark.parametrize("name", BOTH)
def test_a_name_both_libraries_know_is_refused_with_both_spellings(name: str) -> None:
    with pytest.raises(UserError) as e:
        model_identity(name, pretrained=None, image_size=None)
    assert f"timm:{name}" in str(e.value) and f"open_clip:{name}" in str(e.value)


def test_ambiguous_bare_name_never_builds_a_random_open_clip_tower() -> None:
    """Breakage 3: `convnext_tiny` used to load a random-init open_clip ConvNeXt with a log warning."""
    for pretrained in (None, False):
        with pytest.raises(UserError, match="timm:convnext_tiny or open_clip:convnext_tiny"):
            load_backbone("convnext_tiny", pretrained=pretrained)
    with pytest.raises(UserError, match="ambiguous"):
        zoo.resolve_model("convnext_tiny")  # `nmlbench pretrain --model` infers the objective with it
    assert zoo.resolve_model("timm:convnext_tiny").library == "timm"
    assert zoo.resolve_model("open_clip:convnext_tiny").library == "open_clip"


@pytest.mark.parametrize(
    ("ref", "library", "arch", "tag"),
    [
        ("timm:convnext_tiny", "timm", "convnext_tiny", None),
        ("timm:resnet50.a1_in1k", "timm", "resnet50", "a1_in1k"),
        ("timm:hf-hub:timm/resnet18.a1_in1k", "timm", "hf-hub:timm/resnet18.a1_in1k", None),
        ("open_clip:convnext_tiny", "open_clip", "convnext_tiny", None),
        ("open_clip:RN50/openai", "open_clip", "RN50", "openai"),
        ("open_clip:RN50:openai", "open_clip", "RN50", "openai"),  # the older spelling still works
        ("open_clip:hf-hub:org/repo", "open_clip", "hf-hub:org/repo", None),
        ("RN50", "open_clip", "RN50", None),  # only open_clip knows it
        ("resnet18", "timm", "resnet18", None),  # only timm knows it
        ("tinyvit", "timm", "nmlbench_tinyvit", None),  # zoo alias
    ],
)
def test_references_resolve(ref: str, library: str, arch: str, tag: str | None) -> None:
    m = parse_ref(ref)
    assert (m.library, m.arch, m.tag) == (library, arch, tag)


@pytest.mark.parametrize(
    ("ref", "match"),
    [
        ("hf-hub:timm/resnet18.a1_in1k", "timm:hf-hub:timm/resnet18.a1_in1k or open_clip:hf-hub:"),
        ("open_clip:RN50/nosuchtag", "no pretrained tag 'nosuchtag'; known: openai"),
        ("timm:resnet50.nosuchtag", "no pretrained tag 'nosuchtag'"),
        ("timm:resnet5O", "did you mean"),
        ("runs/ckpt/tinyvit.mini_sym0_s0", "no checkpoint directory at runs/ckpt"),
    ],
)
def test_bad_references_get_one_line(ref: str, match: str) -> None:
    with pytest.raises(UserError, match=match):
        parse_ref(ref)


def test_explicit_prefixes_load_from_their_library() -> None:
    a = load_backbone("timm:test_vit", pretrained=False)
    b = load_backbone(f"open_clip:{zoo.TINY_CLIP_NAME}", pretrained=False)
    assert (a.library, a.arch, a.provenance["pretrained"]) == ("timm", "test_vit", False)
    assert (b.library, b.provenance["tag"]) == ("open_clip", None)


@pytest.mark.parametrize("ref", ["test_vit", "timm:test_vit", "open_clip:RN50", "clip-rn50"])
def test_unreachable_pretrained_weights_are_an_error_with_the_fix(ref: str) -> None:
    """Offline (tests/conftest.py): open_clip without a tag used to give tag None = random init."""
    with pytest.raises(UserError, match="--set pretrained=false") as e:
        load_backbone(ref)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("ref", ["tinyresnet", "tinyclip", "open_clip:convnext_tiny"])
def test_a_model_without_library_weights_is_not_silently_random(ref: str) -> None:
    with pytest.raises(UserError, match="has no pretrained weights.*--set pretrained=false"):
        load_backbone(ref, pretrained=None)


def test_open_clip_without_a_tag_takes_the_first_listed_tag() -> None:
    ident = model_identity("open_clip:ViT-B-16", pretrained=None, image_size=None)
    assert ident.block["tag"] == open_clip.list_pretrained_tags_by_model("ViT-B-16")[0]
    assert ident.name == f"open_clip:ViT-B-16/{ident.block['tag']}"


def test_a_tag_with_pretrained_false_is_a_contradiction() -> None:
    with pytest.raises(UserError, match="drop the tag"):
        model_identity("open_clip:RN50/openai", pretrained=False, image_size=None)


def test_random_init_is_seeded() -> None:
    a = load_backbone("timm:test_vit", pretrained=False, seed=0)
    b = load_backbone("timm:test_vit", pretrained=False, seed=0)
    c = load_backbone("timm:test_vit", pretrained=False, seed=1)
    assert a.key == b.key != c.key
    assert a.provenance["checkpoint_sha256"] == b.provenance["checkpoint_sha256"]
    assert a.provenance["key"] == b.provenance["key"] != c.provenance["key"]


def _key(ref: str, pretrained: bool | None = None, image_size: int | None = None) -> str:
    return model_identity(ref, pretrained=pretrained, image_size=image_size).key


def test_identity_keys_differ_by_what_changes_the_numbers() -> None:
    """Breakage 4: pretrained vs random init (and tag, image size) were one result key."""
    keys = {
        _key("timm:resnet50"),
        _key("timm:resnet50", pretrained=False),
        _key("timm:resnet50.a2_in1k"),
        _key("timm:resnet50", image_size=112),
        _key("open_clip:RN50/openai"),
        _key("open_clip:RN50/yfcc15m"),
        _key("open_clip:RN50", pretrained=False),
    }
    assert len(keys) == 7 and all(len(k) == 16 for k in keys)
    # same model under other spellings: same key
    assert _key("timm:resnet50") == _key("resnet50") == _key("timm:resnet50.a1_in1k", pretrained=True)
    assert _key("timm:resnet50", image_size=224) == _key("timm:resnet50")
    assert _key("open_clip:RN50:openai") == _key("RN50") == _key("clip-rn50")


def test_identity_is_cheap_and_matches_the_loaded_provenance() -> None:
    ident = model_identity("timm:test_vit", pretrained=False, image_size=64)
    bb = load_backbone("timm:test_vit", pretrained=False, image_size=64)
    assert bb.provenance["key"] == ident.key and bb.name == ident.name == "timm:test_vit"
    assert {k: v for k, v in bb.provenance.items() if k != "checkpoint_sha256"} == {
        k: v for k, v in ident.block.items() if k != "checkpoint_sha256"
    }
    assert ident.block["checkpoint_sha256"] is None  # no weights were loaded for the identity


def test_checkpoints_of_one_name_in_two_folders_differ(tmp_path: Path) -> None:
    a = write_checkpoint(tmp_path / "a" / "tinyresnet.mini_sym0_s0", seed=0)
    b = write_checkpoint(tmp_path / "b" / "tinyresnet.mini_sym0_s0", seed=1)
    ia, ib = model_identity(a, None, None), model_identity(b, None, None)
    assert ia.name == ib.name and ia.key != ib.key
    assert model_identity(str(a), False, None).key == ia.key  # checkpoints ignore `pretrained`
    assert model_identity(a, None, 64).key != ia.key
    assert model_identity(a, None, 32).key == ia.key  # 32 is the checkpoint's own size
    shutil.copytree(a, tmp_path / "copy")
    assert model_identity(tmp_path / "copy", None, None).key == ia.key  # the same weights elsewhere


def test_checkpoint_provenance_carries_the_record_fields(tmp_path: Path) -> None:
    ckpt = write_checkpoint(tmp_path / "tinyresnet.mini_sym10_s0", data="mini", pretrain_key="b" * 16)
    bb = load_backbone(ckpt)
    p = bb.provenance
    assert p["key"] == model_identity(ckpt, None, None).key
    assert (p["data"], p["pretrain_key"], p["pretrained"], p["tag"], p["image_size"]) == (
        "mini",
        "b" * 16,
        None,
        None,
        32,
    )
    assert p["noise"]["recipe"] == "sym10" and p["pretrain_seed"] == 0
    old = load_backbone(write_checkpoint(tmp_path / "old"))  # written before data/pretrain_key existed
    assert old.provenance["data"] is None and old.provenance["pretrain_key"] is None


def test_image_size_reaches_transforms_and_the_model() -> None:
    """A 32 px setting on a 224 px timm ViT gives 32 px tensors and a model that runs on them."""
    bb = load_backbone("timm:vit_tiny_patch16_224", pretrained=False, image_size=32)
    img = Image.new("RGB", (50, 40))
    assert bb.eval_transform()(img).shape == (3, 32, 32)
    assert bb.train_transform()(img).shape == (3, 32, 32)
    assert bb.features(torch.zeros(2, 3, 32, 32)).shape == (2, bb.feature_dim) == (2, 192)
    native = load_backbone("timm:vit_tiny_patch16_224", pretrained=False)
    assert native.image_size == 224 and native.key != bb.key  # feature caches keep the sizes apart
    assert native.provenance["checkpoint_sha256"] != bb.provenance["checkpoint_sha256"]  # pos. embedding


def test_image_size_on_checkpoints_of_both_libraries(tmp_path: Path) -> None:
    vit = write_checkpoint(tmp_path / "v", arch="nmlbench_tinyvit")
    bb = load_backbone(vit, image_size=64)
    assert bb.image_size == 64 and bb.features(torch.zeros(1, 3, 64, 64)).shape == (1, 64)
    clip = load_backbone(write_checkpoint(tmp_path / "c", library="open_clip"), image_size=64)
    assert clip.eval_transform()(Image.new("RGB", (9, 9))).shape == (3, 64, 64)
    assert clip.features(torch.zeros(1, 3, 64, 64)).shape == (1, 64)


def test_eval_config_pretrained_is_tri_state() -> None:
    assert load_eval_config("mini").pretrained is None and load_eval_config("mini").image_size is None
    assert load_eval_config("mini", overrides=["pretrained=false"]).pretrained is False
    assert load_eval_config("mini", overrides=["pretrained=auto", "image_size=32"]).image_size == 32
    with pytest.raises(UserError, match="image_size"):
        load_eval_config("mini", overrides=["image_size=0"])


def _hub_cache(cache: Path, repo: str, files: dict[str, dict[str, torch.Tensor]]) -> None:
    """A Hugging Face hub cache entry in its on-disk layout (refs/main -> snapshots/<rev>/)."""
    from safetensors.torch import save_file

    rev = "0" * 40
    root = cache / f"models--{repo.replace('/', '--')}"
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(rev)
    (root / "snapshots" / rev).mkdir(parents=True)
    for name, state in files.items():
        save_file(state, str(root / "snapshots" / rev / name))


def test_cached_pretrained_weights_load_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real timm path: weights found in the local HF cache load with the network off."""
    import huggingface_hub

    torch.manual_seed(7)
    state = {k: v.contiguous() for k, v in timm.create_model("test_vit").state_dict().items()}
    _hub_cache(tmp_path, "timm/test_vit.r160_in1k", {"model.safetensors": state})
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    fetch_weights("timm:test_vit")  # found in the cache: no error
    bb = load_backbone("timm:test_vit")
    assert (bb.provenance["pretrained"], bb.provenance["tag"]) == (True, "r160_in1k")
    loaded = bb.encoder.model.state_dict()
    assert torch.equal(loaded["blocks.0.attn.qkv.weight"], state["blocks.0.attn.qkv.weight"])


@pytest.mark.parametrize("ref", ["timm:test_vit", "open_clip:RN50", "timm:hf-hub:timm/test_vit.r160_in1k"])
def test_fetch_weights_fails_early_with_the_fix(ref: str, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(UserError, match="cannot get pretrained weights.*--set pretrained=false"):
        fetch_weights(ref)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # one line, not open_clip's too
    fetch_weights("tinyresnet", pretrained=False)  # random init needs nothing


def test_a_size_the_model_cannot_take_is_one_line_at_load() -> None:
    with pytest.raises(UserError, match="does not run at image_size=30.*divisible by patch size"):
        load_backbone("timm:test_vit", pretrained=False, image_size=30)
