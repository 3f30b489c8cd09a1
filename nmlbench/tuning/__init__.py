"""Stage 4: the tuning methods, registered in `TUNERS` under their CLI names."""

from __future__ import annotations

from nmlbench.dense import tuners as _dense  # noqa: F401  (registers det-frozen, det-ft, det-lora)
from nmlbench.tuning import levi as _levi  # noqa: F401  (registers levi, levi-lora)
from nmlbench.tuning import linear_probe as _lp  # noqa: F401  (registers lp)
from nmlbench.tuning import lora as _lora  # noqa: F401  (registers ft, lora, nmtune-lora)
from nmlbench.tuning import nmtune as _nmtune  # noqa: F401  (registers nmtune, mlp)
from nmlbench.tuning.base import TUNERS as TUNERS
from nmlbench.tuning.base import FeatureData as FeatureData
from nmlbench.tuning.base import Fitted as Fitted
from nmlbench.tuning.base import ImageData as ImageData
from nmlbench.tuning.base import Tuner as Tuner

#: every registered method, in the order `--method all` runs them
ALL_METHODS = ("lp", "mlp", "nmtune", "nmtune-lora", "lora", "ft", "levi", "levi-lora")
#: the dense methods (detection / instance segmentation tasks), what `--method all` runs on them
DENSE_METHODS = ("det-frozen", "det-ft", "det-lora")
