"""What ran: library versions and the git commit of the nmlbench source, for checkpoints and results."""
from __future__ import annotations

import functools
import os
import platform
import subprocess
from pathlib import Path


@functools.cache
def versions() -> dict[str, str]:
    """Versions of the libraries that decide a result (imported lazily: they are heavy)."""
    import numpy
    import open_clip
    import peft
    import safetensors
    import timm
    import torch

    import nmlbench

    return {
        "nmlbench": nmlbench.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "timm": timm.__version__,
        "open_clip": open_clip.__version__,
        "peft": peft.__version__,
        "numpy": numpy.__version__,
        "safetensors": safetensors.__version__,
    }


@functools.cache
def git_sha() -> str | None:
    """The commit of the nmlbench source tree when it is a git checkout, else None."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    sha = out.stdout.strip()
    return sha if len(sha) == 40 else None


def slurm_job_id() -> str | None:
    return os.environ.get("SLURM_JOB_ID")
