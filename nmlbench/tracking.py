"""Training curves to TensorBoard and/or Weights & Biases on request, and step progress for a parent.

    nmlbench pretrain --noise 10% --tensorboard          # event files under $NMLBENCH_ROOT/tb/
    nmlbench evaluate ... --tensorboard runs/ --wandb my-project

Tracking never changes a number, so it is never part of a config that is hashed (a checkpoint's
identity, a result's key): the settings are CLI flags carried by `TrackOptions`, and reach worker
processes and SLURM jobs through the environment (`activated()` sets it, `active()` reads it).
wandb is optional: imported only when asked for, with a one-line error when it is not installed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nmlbench.errors import UserError
from nmlbench.paths import output_root

ENV_TENSORBOARD = "NMLBENCH_TENSORBOARD"  # the TensorBoard root (runs below it)
ENV_WANDB = "NMLBENCH_WANDB"  # the W&B project
ENV_WANDB_DIR = "NMLBENCH_WANDB_DIR"  # where wandb keeps its local files (under the output root)


@dataclass(frozen=True)
class TrackOptions:
    """Where curves go; all None: nowhere (the default)."""

    tensorboard: str | None = None  # TensorBoard root; a run writes to <root>/<kind>/<name>
    wandb: str | None = None  # W&B project
    wandb_dir: str | None = None  # wandb's local files (it writes <dir>/wandb/)

    def env(self) -> dict[str, str | None]:
        return {ENV_TENSORBOARD: self.tensorboard, ENV_WANDB: self.wandb, ENV_WANDB_DIR: self.wandb_dir}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The `--tensorboard [DIR]` and `--wandb PROJECT` flags every training verb shares."""
    p.add_argument(
        "--tensorboard",
        nargs="?",
        const="",
        default=None,
        metavar="DIR",
        help="write training curves as TensorBoard event files (default DIR: <output root>/tb)",
    )
    p.add_argument(
        "--wandb",
        default=None,
        metavar="PROJECT",
        help="log training curves to this Weights & Biases project (needs `pip install wandb`)",
    )


def from_args(args: argparse.Namespace, root: str | Path | None) -> TrackOptions:
    """Validate the flags (before anything is written) and resolve the directories to absolute paths."""
    tb, project = getattr(args, "tensorboard", None), getattr(args, "wandb", None)
    if project is not None:
        if not project.strip():
            raise UserError("--wandb needs a project name, e.g. --wandb nmlbench")
        require_wandb()
    if tb is not None and importlib.util.find_spec("tensorboard") is None:  # a dependency, unless left out
        raise UserError("--tensorboard: the tensorboard package is not installed; `pip install tensorboard`")
    base = output_root(root)
    tb_dir = None if tb is None else str(Path(tb or base / "tb").resolve())
    if tb_dir is not None:
        from nmlbench.io import check_output

        check_output(tb_dir, folder=True)  # not after the manifest and the first checkpoint
    return TrackOptions(tb_dir, project, str(base.resolve()) if project else None)


def require_wandb() -> Any:
    """The wandb module, or a one-line UserError when it is not installed (it is optional)."""
    try:
        return importlib.import_module("wandb")
    except ImportError:
        raise UserError(
            "--wandb: the wandb package is not installed; `pip install wandb`, or drop --wandb"
        ) from None


@contextlib.contextmanager
def activated(opts: TrackOptions) -> Iterator[None]:
    """Make `opts` the active settings here and in every process started inside the block."""
    old = {k: os.environ.get(k) for k in opts.env()}
    try:
        _set_env(opts.env())
        yield
    finally:
        _set_env(old)


def _set_env(values: dict[str, str | None]) -> None:
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def active() -> TrackOptions:
    env = os.environ
    return TrackOptions(
        env.get(ENV_TENSORBOARD) or None, env.get(ENV_WANDB) or None, env.get(ENV_WANDB_DIR) or None
    )


class Curves:
    """One run's scalar curves (TensorBoard writer and/or W&B run); does nothing when neither is on.

    `start_step` is the step a resumed run continues from: TensorBoard is told to drop what an
    earlier attempt logged after it (`purge_step`), so the curve continues instead of doubling back.
    """

    def __init__(
        self,
        opts: TrackOptions,
        kind: str,
        name: str,
        start_step: int = 0,
        state_dir: Path | None = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        self._tb: Any = None
        self._wb: Any = None
        if opts.tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # imported only when asked for

            self._tb = SummaryWriter(str(Path(opts.tensorboard) / kind / name), purge_step=start_step + 1)
        if opts.wandb:
            wandb = require_wandb()
            self._wb = wandb.init(
                project=opts.wandb,
                name=name,
                group=kind,
                dir=opts.wandb_dir,
                id=_wandb_id(state_dir, start_step),
                resume="allow",
                config=config or {},
            )

    @property
    def enabled(self) -> bool:
        return self._tb is not None or self._wb is not None

    def log(self, scalars: dict[str, float | None], step: int) -> None:
        values = {k: float(v) for k, v in scalars.items() if v is not None}
        if self._tb is not None:
            for tag, v in values.items():
                self._tb.add_scalar(tag, v, step)
        if self._wb is not None:
            self._wb.log(values, step=step)

    def flush(self) -> None:
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self._wb is not None:
            self._wb.finish()
            self._wb = None


def open_curves(
    kind: str,
    name: str | None,
    start_step: int = 0,
    state_dir: Path | None = None,
    config: dict[str, Any] | None = None,
) -> Curves:
    """Curves for run `name` under the active settings (a no-op object when none, or no name)."""
    opts = active() if name else TrackOptions()
    return Curves(opts, kind, name or "", start_step, state_dir, config)


def _wandb_id(state_dir: Path | None, start_step: int) -> str:
    """A resumed run continues its W&B run (id kept in its work dir); a fresh start opens a new one."""
    path = state_dir / "wandb_id" if state_dir is not None else None
    if path is not None and start_step > 0 and path.is_file():
        return path.read_text(encoding="utf-8").strip()
    run_id = secrets.token_hex(8)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(run_id, encoding="utf-8")
    return run_id


# -- the tuning cell being fitted (set by the evaluation job, read by the tuning loop) ------------

_CELL: list[str] = []


@contextlib.contextmanager
def cell(name: str) -> Iterator[None]:
    """Name the curves of tuning runs inside the block (one run per evaluation cell)."""
    _CELL.append(name)
    try:
        yield
    finally:
        _CELL.pop()


def current_cell() -> str | None:
    return _CELL[-1] if _CELL else None


# -- step progress of a pretraining run, for a parent process that shows the study's stages -------

ProgressSink = Callable[[str, int, int, int], None]  # (run name, steps done, total steps, resumed at)
_SINK: list[ProgressSink] = []


def set_progress_sink(sink: ProgressSink | None) -> None:
    """Where pretraining runs in this process report their steps (None: nowhere)."""
    _SINK[:] = [sink] if sink is not None else []


# -- finished (method, seed) cells of an evaluation job, for the same parent ----------------------

_FIT_SINK: list[ProgressSink] = []


def set_fit_sink(sink: ProgressSink | None) -> None:
    """Where evaluation jobs in this process report their finished cells (None: nowhere)."""
    _FIT_SINK[:] = [sink] if sink is not None else []


def report_fits(job: str, done: int, total: int) -> None:
    """An evaluation job has `done` of its `total` cells finished (a skipped, finished cell counts)."""
    if _FIT_SINK:
        _FIT_SINK[0](job, done, total, 0)


class StepReporter:
    """Reports a run's step count to the sink at most every `every_s` seconds (and at the end)."""

    def __init__(self, name: str, start: int, total: int, every_s: float = 0.5) -> None:
        self.sink = _SINK[0] if _SINK and name else None  # no name: not the reporting rank
        self.name, self.start, self.total, self.every_s = name, start, total, every_s
        self._last = 0.0
        if self.sink is not None:
            self.sink(name, start, total, start)

    def __call__(self, step: int) -> None:
        if self.sink is None:
            return
        now = time.monotonic()
        if now - self._last >= self.every_s or step >= self.total:
            self._last = now
            self.sink(self.name, step, self.total, self.start)
