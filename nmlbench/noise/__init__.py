"""Stage 1: inject exact, seeded label or caption noise and record it in an audited manifest.

from nmlbench.noise import ensure_manifest, read_manifest, noisy_labels_for
path = ensure_manifest("mini", "sym", "10%", seed=0)
df, meta = read_manifest(path)
"""

from __future__ import annotations

from nmlbench.noise import caption as _caption  # noqa: F401  (registers the caption kinds)
from nmlbench.noise import label as _label  # noqa: F401  (registers the label kinds)
from nmlbench.noise.apply import apply_noise as apply_noise
from nmlbench.noise.apply import ensure_manifest as ensure_manifest
from nmlbench.noise.apply import load_recipe as load_recipe
from nmlbench.noise.base import NOISE as NOISE
from nmlbench.noise.base import NoiseConfig as NoiseConfig
from nmlbench.noise.base import resolve_kind as resolve_kind
from nmlbench.noise.manifest import donor_ids_for as donor_ids_for
from nmlbench.noise.manifest import noisy_labels_for as noisy_labels_for
from nmlbench.noise.manifest import read_manifest as read_manifest
from nmlbench.noise.sources import SOURCES as SOURCES
from nmlbench.noise.sources import SourceSpec as SourceSpec
