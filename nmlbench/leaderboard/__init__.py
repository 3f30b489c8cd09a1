"""Leaderboard: validated submissions, aggregated tables and a static web page."""

from __future__ import annotations

from nmlbench.leaderboard.schema import schema_errors as schema_errors
from nmlbench.leaderboard.schema import validate_record as validate_record
from nmlbench.leaderboard.schema import validator as validator
