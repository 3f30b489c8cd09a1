"""Stage 2: pretraining on noisy data (timm supervised, open_clip CLIP), resumable, local or on SLURM.

from nmlbench.pretrain import load_pretrain_config, pretrain
cfg = load_pretrain_config("mini-resnet", None, ["noise.rate=0.1"])
ckpt_dir = pretrain(cfg)          # nmlbench-out/ckpt/tinyresnet.mini_sym10_s0
"""

from __future__ import annotations

from nmlbench.pretrain.config import PRESETS as PRESETS
from nmlbench.pretrain.config import PretrainConfig as PretrainConfig
from nmlbench.pretrain.config import load_pretrain_config as load_pretrain_config
from nmlbench.pretrain.train import checkpoint_dir as checkpoint_dir
from nmlbench.pretrain.train import pretrain as pretrain
from nmlbench.pretrain.train import run_name as run_name

__all__ = ["PRESETS", "PretrainConfig", "checkpoint_dir", "load_pretrain_config", "pretrain", "run_name"]
