"""Stage 4 driver: tune every method on every task and write result records."""

from __future__ import annotations

from nmlbench.eval.metrics import compute_metrics as compute_metrics
from nmlbench.eval.metrics import macro_f1 as macro_f1
from nmlbench.eval.metrics import top1 as top1
from nmlbench.eval.run import EvalOptions as EvalOptions
from nmlbench.eval.run import evaluate as evaluate
