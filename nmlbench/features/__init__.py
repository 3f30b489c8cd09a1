"""Stage 3: frozen-backbone features, extracted once per (model, task, split, transform) and cached."""

from __future__ import annotations

from nmlbench.features.cache import SplitRef as SplitRef
from nmlbench.features.extract import CachedViews as CachedViews
from nmlbench.features.extract import FeatureConfig as FeatureConfig
from nmlbench.features.extract import FeatureStore as FeatureStore
from nmlbench.features.extract import FreshViews as FreshViews
from nmlbench.features.extract import SeededViews as SeededViews
from nmlbench.features.extract import split_ref as split_ref
