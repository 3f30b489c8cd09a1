"""nmlbench: how label and caption noise in pre-training data changes downstream behaviour."""
from __future__ import annotations

__version__ = "0.1.0"

from nmlbench.errors import UserError as UserError
from nmlbench.rates import parse_rate as parse_rate
from nmlbench.registry import Registry as Registry
