"""Stage 6: result records -> tables and figures. Reads JSON only; imports no torch."""

from __future__ import annotations
