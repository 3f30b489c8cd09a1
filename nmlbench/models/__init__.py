"""Backbones: tiny registered models (`zoo`), references and identity (`refs`), weights on this machine
(`fetch`), the loader (`load`) and its parts (`encoder`, `augment`)."""

from __future__ import annotations

from nmlbench.models.augment import AugmentConfig as AugmentConfig
from nmlbench.models.encoder import PooledEncoder as PooledEncoder
from nmlbench.models.fetch import check_models as check_models
from nmlbench.models.fetch import fetch_weights as fetch_weights
from nmlbench.models.info import read_checkpoint_info as read_checkpoint_info
from nmlbench.models.load import Backbone as Backbone
from nmlbench.models.load import load_backbone as load_backbone
from nmlbench.models.refs import ModelIdentity as ModelIdentity
from nmlbench.models.refs import model_identity as model_identity
