"""Reader `mini_text`: the built-in mini text benchmark (nmlbench.minitext), drawn in memory."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from nmlbench.tasks.spec import TaskSpec
from nmlbench.tasks.split import TASK_READERS, Split, read_params


@TASK_READERS.register("mini_text")
def read_mini_text(spec: TaskSpec, split: str, root: Path, download: bool) -> Split:
    """params `generator`, `shift` (plain|synonyms|wire), `seed`; nothing is read from `root`."""
    from nmlbench.minitext import load_texts
    from nmlbench.minitext.data import generator

    p = read_params(spec, {"generator": None, "shift": "plain", "seed": 0}, required=["generator"])
    texts, labels = load_texts(p["generator"], p["shift"], split, int(p["seed"]))
    ids = np.array([f"{spec.name}/{split}/{i:06d}" for i in range(len(labels))])
    return Split(labels, generator(p["generator"]).classes, ids, texts=texts)
