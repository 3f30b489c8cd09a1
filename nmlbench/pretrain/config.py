"""The pretraining config: one frozen dataclass tree, loaded from a preset YAML plus `--set` overrides."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

from nmlbench.config import bounded, load_config, rate_field, seed_field
from nmlbench.errors import UserError
from nmlbench.launch.slurm import SlurmConfig
from nmlbench.registry import Registry


@dataclass(frozen=True)
class DataConfig:
    """Where the pretraining images (and labels or captions) come from.

    Attributes:
        source: "mini" (built-in, in memory), "imagefolder" (ImageNet layout), "npz" (a numpy
            archive as tasks read it), "webdataset" (tar shards; image + cls or txt/json), "hf" (a
            Hugging Face dataset: save_to_disk folder, parquet/arrow file or folder, or hf-hub:NAME).
        name: dataset name in checkpoint names and in `ensure_manifest(dataset=...)`.
        path: data root, npz file, shard pattern ("shards/{000000..000099}.tar") or HF dataset;
            relative paths are under the data root (--data-root / $NMLBENCH_DATA).
        manifest: noise manifest (parquet) for non-mini data; "{rate}" and "{seed}" are filled in
            (rate as in '10'); mini manifests are created on demand.
        max_corrupt_share: fail when more than this share of the samples cannot be decoded.
        *_key: columns (HF), arrays (npz) or json keys / extensions (shards); None takes the
            format's default (as `nmlbench noise` reads it), a named one must exist.
    """

    source: Literal["mini", "mini-text", "imagefolder", "npz", "webdataset", "hf"] = "mini"
    name: str = "mini"
    path: str | None = None
    manifest: str | None = None
    split: str = "train"  # HF datasets: the split to read
    image_key: str | None = None  # HF column (image/img) / npz array (images) / shard exts "jpg;png"
    label_key: str | None = None  # HF column / npz array / shard json key (label(s); shards: else .cls)
    caption_key: str | None = None  # HF column / npz array / shard json key (caption(s); shards: else .txt)
    id_key: str | None = None  # HF column / npz array (id(s), else row number); shards: __key__
    # integer labels without class names: the class count (else max + 1)
    num_classes: int | None = bounded(None, ge=2)
    max_corrupt_share: float = bounded(0.001, ge=0, le=1)
    num_workers: int = bounded(0, ge=0)
    # webdataset shards only (see docs/cluster.md, "Streaming shards"): how an epoch is read
    shard_sampling: Literal["partition", "resampled"] = "partition"
    samples_per_epoch: int = bounded(0, ge=0)  # 0: the shards' sample count
    shuffle_buffer: int = bounded(1000, ge=1)  # samples per reader

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_corrupt_share <= 1.0:
            raise ValueError("max_corrupt_share must be in [0, 1]")
        if self.source != "webdataset":  # indexed sources read every sample once by construction
            for key, default in _STREAM_DEFAULTS.items():
                if getattr(self, key) != default:
                    raise ValueError(
                        f"{key} applies to webdataset shards only (source is {self.source!r}); remove it"
                    )


_STREAM_DEFAULTS = {"shard_sampling": "partition", "samples_per_epoch": 0, "shuffle_buffer": 1000}


@dataclass(frozen=True)
class NoiseSpec:
    """Which noise manifest to train on: kind "sym" (labels) or "caption" (image-text pairs)."""

    kind: Literal["auto", "sym", "caption"] = "auto"  # auto: sym for supervised, caption for clip
    rate: float = rate_field(0.0)
    seed: int | None = seed_field(None)  # None: the pretraining seed


@dataclass(frozen=True)
class OptimConfig:
    """Optimizer (timm's create_optimizer_v2) and a step-wise cosine schedule (timm's)."""

    opt: str = "adamw"
    lr: float = bounded(1e-3, gt=0)
    weight_decay: float = bounded(0.05, ge=0)
    momentum: float = bounded(0.9, ge=0, lt=1)
    batch_size: int = bounded(128, ge=1)  # per process; the global batch is batch_size x world size
    epochs: int = bounded(10, ge=1)  # length of the lr schedule
    # stop (and export) early on the same schedule, e.g. the epoch-16 CLIP
    stop_epoch: int | None = bounded(None, ge=1)
    warmup_steps: int = bounded(0, ge=0)
    min_lr: float = bounded(0.0, ge=0)
    label_smoothing: float = bounded(0.0, ge=0, lt=1)  # supervised only
    grad_clip: float | None = bounded(None, gt=0)

    def __post_init__(self) -> None:
        if self.batch_size <= 0 or self.epochs <= 0 or self.lr <= 0:
            raise ValueError("batch_size, epochs and lr must be positive")
        if self.stop_epoch is not None and not 0 < self.stop_epoch <= self.epochs:
            raise ValueError("stop_epoch must be in 1..epochs")
        check_optimizer(self.opt)


# Names that need no import of timm to check; anything else is looked up in timm's registry.
_COMMON_OPTIMIZERS = frozenset({"adamw", "adam", "sgd", "momentum", "nesterov", "lamb", "lars", "rmsprop"})


def check_optimizer(opt: str) -> None:
    """`opt` must name one of timm's optimizers (create_optimizer_v2; a `lookahead_` prefix is allowed)."""
    name = opt.lower().split("_")[-1]
    if name in _COMMON_OPTIMIZERS:
        return
    from timm.optim import list_optimizers

    known = list_optimizers()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"opt {opt!r} is not a timm optimizer{hint}; known: {', '.join(known)}")


@dataclass(frozen=True)
class AugConfig:
    """Training augmentation; mini-resnet uses scale (0.8, 1) crops + flips [ours]."""

    scale_min: float = bounded(0.08, gt=0, le=1)
    hflip: float = bounded(0.5, ge=0, le=1)
    color_jitter: float = bounded(0.0, ge=0)  # brightness, contrast and saturation strength
    token_drop: float = bounded(0.1, ge=0, lt=1)  # text models: share of words masked per sample [ours]


@dataclass(frozen=True)
class PretrainConfig:
    """One pretraining run. `noise.rate` is a single rate; `--noise 0,10,30%` makes one config each."""

    model: str = "tinyresnet"  # MODELS alias, timm name or open_clip config name
    objective: Literal["supervised", "clip"] = "supervised"
    data: DataConfig = field(default_factory=DataConfig)
    noise: NoiseSpec = field(default_factory=NoiseSpec)
    optim: OptimConfig = field(default_factory=OptimConfig)
    aug: AugConfig = field(default_factory=AugConfig)
    # Training resolution (crops, and `img_size` for architectures with a fixed input such as ViTs);
    # None: the model's own (zoo / timm pretrained cfg). Recorded in checkpoint.json for evaluation.
    image_size: int | None = bounded(None, ge=1)
    seed: int = seed_field(0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["fp32", "bf16"] = "bf16"  # bf16 autocast on GPU only; CPU always fp32
    channels_last: bool = True  # NHWC convolution weights and inputs, on GPU and CPU (0.86x step time on CPU)
    threads: int = bounded(1, ge=1)  # torch CPU threads per process
    ckpt_every_steps: int = bounded(200, ge=1)
    keep_checkpoints: int = bounded(2, ge=1)
    log_every_steps: int = bounded(10, ge=1)
    name_suffix: str = ""  # appended to the checkpoint name, to keep variants apart
    slurm: SlurmConfig = field(default_factory=SlurmConfig)

    def __post_init__(self) -> None:
        if self.image_size is not None and self.image_size <= 0:
            raise ValueError(f"image_size must be a positive number of pixels, got {self.image_size}")
        if self.ckpt_every_steps <= 0 or self.keep_checkpoints <= 0 or self.log_every_steps <= 0:
            raise ValueError("ckpt_every_steps, keep_checkpoints and log_every_steps must be positive")
        wanted = {"sym": "supervised", "caption": "clip"}.get(self.noise.kind, self.objective)
        if wanted != self.objective:
            raise ValueError(
                f"noise.kind {self.noise.kind!r} needs objective {wanted!r}, not {self.objective!r}; "
                "set noise.kind=auto or pick a preset for this objective"
            )

    @property
    def noise_kind(self) -> str:
        if self.noise.kind != "auto":
            return self.noise.kind
        return "caption" if self.objective == "clip" else "sym"

    @property
    def noise_seed(self) -> int:
        return self.seed if self.noise.seed is None else self.noise.seed


PRESETS: Registry[Path] = Registry("pretraining preset")


def _register_presets() -> None:
    folder = resources.files("nmlbench.pretrain") / "presets"
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".yaml"):
            PRESETS.add(entry.name[: -len(".yaml")], Path(str(entry)))


_register_presets()


def load_pretrain_config(preset: str | None, config: str | None, overrides: list[str]) -> PretrainConfig:
    """A preset (by name) or a YAML file, then `--set` overrides; config files may `include:` a preset."""
    if preset and config:
        raise UserError("pass either --preset or --config, not both (a config file can `include:` a preset)")
    path = PRESETS.get(preset) if preset else (Path(config) if config else PRESETS.get("mini-resnet"))
    return load_config(PretrainConfig, path, overrides)
