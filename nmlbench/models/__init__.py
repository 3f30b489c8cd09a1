"""Backbones: tiny registered models (`zoo`) and the loader every evaluation method uses (`load`)."""

from __future__ import annotations

from nmlbench.models.load import AugmentConfig as AugmentConfig
from nmlbench.models.load import Backbone as Backbone
from nmlbench.models.load import PooledEncoder as PooledEncoder
from nmlbench.models.load import load_backbone as load_backbone
from nmlbench.models.load import read_checkpoint_info as read_checkpoint_info
