from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # cocotask.py: the tiny COCO task writer
sys.path.insert(0, str(Path(__file__).parents[1] / "unit" / "badinput"))  # harness.py: bad-input contract
sys.path.insert(0, str(Path(__file__).parents[1] / "unit" / "leaderboard"))  # lb_fakes.py: fake records
