"""Spectrum analysis of frozen features: SVE, LSVR, effective rank, top-k energy (docs/spectrum.md)."""

from __future__ import annotations

from nmlbench.spectrum.metrics import SpectrumMetrics as SpectrumMetrics
from nmlbench.spectrum.metrics import analyse as analyse
from nmlbench.spectrum.metrics import singular_values as singular_values
from nmlbench.spectrum.metrics import spectrum_metrics as spectrum_metrics
