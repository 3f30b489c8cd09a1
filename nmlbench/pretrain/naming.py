"""What a pretraining run is called and what identifies it: model, names, folders, `pretrain_key`.

Kept apart from the training loop (train.py): everything here is a pure function of the config
(and of the manifest's sidecar for names), used before anything is trained or written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nmlbench.errors import UserError
from nmlbench.models.text import TINY_TEXT
from nmlbench.models.zoo import ModelSpec, resolve_model
from nmlbench.paths import output_root
from nmlbench.pretrain import checkpoint as ck
from nmlbench.pretrain.config import PretrainConfig
from nmlbench.pretrain.noisy import manifest_meta, name_part


def model_spec(cfg: PretrainConfig) -> ModelSpec:
    spec = resolve_model(cfg.model)
    if spec.library == "transformers" and cfg.objective == "supervised":
        if spec.arch != TINY_TEXT:
            raise UserError(
                f"model {cfg.model!r}: nmlbench pretrains the text model tinytext; "
                "evaluate other transformers models with `nmlbench evaluate --model hf:NAME`"
            )
        return spec
    return resolve_model(cfg.model, "open_clip" if cfg.objective == "clip" else "timm")


def is_text(cfg: PretrainConfig) -> bool:
    return model_spec(cfg).library == "transformers"


def image_size(cfg: PretrainConfig) -> int:
    """The training resolution: `cfg.image_size`, else the model's own."""
    return cfg.image_size or model_spec(cfg).image_size


def run_name(cfg: PretrainConfig, root: str | Path | None = None) -> str:
    """`<tag>.<dataset>_<recipe>_s<seed>[<suffix>]`, e.g. 'tinyresnet.mini_pairflip20_s0'.

    The recipe is the manifest's own (see `recipe_name`): 'clean' without a manifest, 'sym10' for
    the mini manifests made on demand, 'pairflip20' / 'group20-3f9a1c' / ... for `data.manifest`.
    """
    recipe = name_part(cfg, manifest_meta(cfg, root))
    return f"{model_spec(cfg).tag}.{cfg.data.name}_{recipe}_s{cfg.seed}{cfg.name_suffix}"


def checkpoint_dir(cfg: PretrainConfig, root: str | Path | None = None) -> Path:
    return output_root(root) / "ckpt" / run_name(cfg, root)


def work_dir(cfg: PretrainConfig, root: str | Path | None = None) -> Path:
    return output_root(root) / "ckpt" / ".partial" / run_name(cfg, root)


def _strip_runtime(cfg: PretrainConfig) -> str:
    from nmlbench.config import to_dict

    d = to_dict(cfg)
    for key in ("slurm", "threads", "device"):
        d.pop(key, None)
    d["data"].pop("num_workers", None)
    return json.dumps(d, sort_keys=True)


# Settings that never change the weights (or only name them): left out of `pretrain_key`.
_NOT_RECIPE = (
    "slurm",
    "threads",
    "device",
    "ckpt_every_steps",
    "keep_checkpoints",
    "log_every_steps",
    "name_suffix",
    "seed",
)
_NOT_RECIPE_DATA = ("num_workers", "manifest", "name")
_STREAM_ONLY = ("shard_sampling", "samples_per_epoch", "shuffle_buffer")


def pretrain_key(cfg: PretrainConfig, data_fingerprint: str, recipe: dict[str, Any]) -> str:
    """16 hex: the resolved pretraining recipe, the same for every pretraining seed of it.

    The config minus runtime settings, plus the data's fingerprint and the manifest's identity
    (kind, params, rate, versions) instead of the manifest's path. `data.path` stays in: some
    fingerprints cover ids and labels but not pixels.
    The pretraining seed is left out on purpose: records carry it as `pretrain_seed`, and the
    report groups the seeds of one recipe by this key. `device` is out too ("auto" is not a
    recipe); the precision setting stays in.
    """
    from nmlbench.config import stable_key, to_dict

    d = to_dict(cfg)
    for key in _NOT_RECIPE:
        d.pop(key, None)
    for key in _NOT_RECIPE_DATA:
        d["data"].pop(key, None)
    if not is_text(cfg):  # a setting of text models only: image runs keep the keys they had
        d["aug"].pop("token_drop", None)
    if cfg.data.source == "webdataset":  # a streamed epoch's batches depend on the readers per process
        d["data"]["readers"] = max(1, cfg.data.num_workers)
    else:  # settings of streamed sources only (refused elsewhere): keys of other runs stay as they were
        for key in _STREAM_ONLY:
            d["data"].pop(key, None)
    if d["noise"].get("seed") == cfg.seed:  # seed=None means "the pretraining seed": the same run
        d["noise"]["seed"] = None
    return stable_key({"config": d, "data": data_fingerprint, "noise": recipe}, 16)


def _same_config(path: Path, cfg: PretrainConfig, raw: dict[str, Any] | None = None) -> bool:
    """True if the checkpoint at `path` (its config.yaml, or `raw` already read from it) is this run's."""
    import yaml

    from nmlbench.config import from_mapping

    try:
        if raw is None:
            raw = yaml.safe_load((path / ck.CONFIG).read_text(encoding="utf-8"))
        old = from_mapping(PretrainConfig, raw, str(path))
    except (OSError, ValueError, TypeError, yaml.YAMLError, UserError):
        return False
    return _strip_runtime(old) == _strip_runtime(cfg)
