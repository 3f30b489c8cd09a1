"""One pretraining run: data + noise manifest -> model -> interval checkpoints -> final checkpoint.

`pretrain(cfg)` is resumable: it continues from the newest complete interval checkpoint of the
same run, so SIGKILL, preemption or a time-out lose at most `ckpt_every_steps` steps.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import timm.optim
import torch
from timm.scheduler import CosineLRScheduler
from tqdm import tqdm

from nmlbench.config import dump_config
from nmlbench.errors import UserError
from nmlbench.io import atomic_path
from nmlbench.launch import dist
from nmlbench.leftovers import sweep_stale
from nmlbench.models.info import CorruptCheckpoint
from nmlbench.models.text import TINY_TEXT
from nmlbench.pretrain import checkpoint as ck
from nmlbench.pretrain.config import PretrainConfig
from nmlbench.pretrain.loader import Sharding, make_loader, steps_per_epoch, tensor_transform
from nmlbench.pretrain.metrics import Metrics
from nmlbench.pretrain.naming import (  # noqa: F401  (run_name, model_spec: re-exported)
    _same_config,
    checkpoint_dir,
    image_size,
    is_text,
    model_spec,
    pretrain_key,
    run_name,
    work_dir,
)
from nmlbench.pretrain.noisy import NoisyTargets, apply_manifest, locate_manifest
from nmlbench.pretrain.objectives import Objective
from nmlbench.pretrain.sources import Source, open_source
from nmlbench.pretrain.stream import Streamed, epoch_samples, table_folder
from nmlbench.pretrain.targets import TargetTable, write_table
from nmlbench.provenance import git_sha, versions

log = logging.getLogger(__name__)


def pick_device(cfg: PretrainConfig) -> torch.device:
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise UserError(
            "the config asks for device 'cuda' but no GPU is visible; use --set device=cpu "
            "or run on a GPU node"
        )
    if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available()):
        return torch.device("cuda", dist.cuda_index(dist.detect().local_rank, torch.cuda.device_count()))
    return torch.device("cpu")


@dataclass
class Run:
    """Everything one process needs while training."""

    cfg: PretrainConfig
    objective: Objective
    model: torch.nn.Module  # possibly DDP-wrapped
    optimizer: torch.optim.Optimizer
    scheduler: CosineLRScheduler
    source: Source
    targets: NoisyTargets
    device: torch.device
    info: dist.DistInfo
    steps_per_epoch: int
    work: Path
    meta: dict[str, Any]
    streamed: Streamed | None  # webdataset sources: the target table and epoch length

    @property
    def layout(self) -> dict[str, int]:
        """What an interval checkpoint's position means: resuming needs the same world and readers."""
        readers = max(1, self.cfg.data.num_workers) if self.streamed else 0
        return {"world_size": self.info.world_size, "readers": readers}


def pretrain(
    cfg: PretrainConfig,
    root: str | Path | None = None,
    data_root: str | Path | None = None,
    resume: str = "latest",
) -> Path:
    """Train (or resume, or skip if finished) one run; returns its checkpoint directory.

    Args:
        resume: "latest" (newest interval checkpoint of this run, if any), "never" (start over)
            or the path of an interval checkpoint directory.
    """
    final = checkpoint_dir(cfg, root)
    if (final / ck.META).is_file():
        ck.check_finished(final)
        if not _same_config(final, cfg):
            raise UserError(
                f"{final} exists with a different config; pass --set name_suffix=_x to keep both, "
                "or delete it"
            )
        log.info("%s is complete; skipping", final)
        return final
    torch.set_num_threads(cfg.threads)
    device = pick_device(cfg)
    info = dist.init(device.type)
    try:
        run = _setup(cfg, root, data_root, device, info)
        start = _restore(run, resume)
        if run.streamed is not None:  # after _restore: `--resume never` empties the work folder
            if info.is_main:
                per_sample = run.targets.captions if run.targets.captions is not None else run.targets.labels
                write_table(run.streamed.table.folder, run.source.ids, per_sample, run.source.shard_index)
            dist.barrier()  # rank 0 wrote the table; the others map it
        if info.is_main:  # leftovers of writes a kill interrupted, once the run is known to go ahead
            for folder in (final.parent, run.work.parent, run.work):
                sweep_stale(folder)
        _train(run, start)
        if info.is_main:
            _export(run, final)
        dist.barrier()
    finally:
        dist.shutdown()
    return final


def _setup(cfg: PretrainConfig, root: Any, data_root: Any, device: torch.device, info: dist.DistInfo) -> Run:
    spec = model_spec(cfg)
    if info.is_main:  # one process creates the manifest, the others then read it
        manifest = locate_manifest(cfg, root)
    dist.barrier()
    if not info.is_main:
        manifest = locate_manifest(cfg, root)
    source = open_source(cfg.data, data_root)
    targets = apply_manifest(cfg, source, manifest)
    torch.manual_seed(cfg.seed)  # same seed -> same initial weights on every rank
    random.seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)
    obj = Objective(
        spec, source.num_classes, cfg.optim.label_smoothing, info.rank, info.world_size, image_size(cfg)
    )
    model = obj.model.to(device)
    if cfg.channels_last:  # GPUs and CPUs alike (oneDNN convolutions): see PretrainConfig
        model = model.to(memory_format=torch.channels_last)
    o = cfg.optim
    optimizer = timm.optim.create_optimizer_v2(
        model, opt=o.opt, lr=o.lr, weight_decay=o.weight_decay, momentum=o.momentum
    )
    streamed, work = None, work_dir(cfg, root)
    samples = len(source.ids)
    if source.shards:
        d = cfg.data
        samples = epoch_samples(samples, d.samples_per_epoch, d.shard_sampling)
    spe = steps_per_epoch(samples, o.batch_size, info.world_size)
    if source.shards:
        clip = targets.captions is not None
        folder = table_folder(work, source, targets.manifest_sha256, clip)
        streamed = Streamed(TargetTable(folder), spe, o.batch_size, d.shard_sampling, d.shuffle_buffer)
    scheduler = CosineLRScheduler(
        optimizer,
        t_initial=spe * o.epochs,
        lr_min=o.min_lr,
        warmup_t=o.warmup_steps,
        warmup_lr_init=o.lr * 1e-3,
        warmup_prefix=True,
        t_in_epochs=False,
    )
    if info.world_size > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    meta = dict(
        obj.meta(),
        name=run_name(cfg, root),
        data=cfg.data.name,
        pretrain_key=pretrain_key(cfg, source.fingerprint, targets.recipe),
        objective=cfg.objective,
        noise=targets.noise,
        manifest_sha256=targets.manifest_sha256,
        manifest_path=targets.manifest_path,
        data_fingerprint=source.fingerprint,
        num_samples=len(source.ids),
        num_classes=source.num_classes,
        classes=source.classes,
        seed=cfg.seed,
        world_size=info.world_size,
        nodes=info.nodes,
        versions=versions(),
        git_sha=git_sha(),
        resumed_from=[],
    )
    parts = (optimizer, scheduler, source, targets, device, info)
    return Run(cfg, obj, model, *parts, spe, work, meta, streamed)


def _restore(run: Run, resume: str) -> dict[str, Any]:
    """Load the interval checkpoint to resume from; returns the position/counters to start at."""
    fresh = {"step": 0, "skipped": 0, "seen": 0}
    if resume == "never":
        if run.info.is_main and run.work.exists():
            shutil.rmtree(run.work)
        dist.barrier()
        return fresh
    if resume == "latest":
        found = ck.newest_good(run.work, _say if run.info.is_main else lambda line: None)
        if found is None:
            return fresh
    else:
        path = Path(resume)
        if not (path / ck.TRAIN_STATE).is_file():
            raise UserError(
                f"--resume {resume}: not an interval checkpoint (no {ck.TRAIN_STATE}); "
                f"use 'latest' or a step-* directory under {run.work}"
            )
        try:
            found = ck.load_interval(path)
        except CorruptCheckpoint as e:
            raise UserError(
                f"--resume {resume}: {ck.problem(e, path)}; resume from another step-* directory, "
                "'latest' or 'never'"
            ) from None
    path, state = found.path, found.state
    if not _same_config(path, run.cfg, found.config):
        raise UserError(f"{path} was written with a different config; use --resume never to start over")
    _check_layout(path, state.get("layout"), run.layout)
    try:  # the hash matched; a mismatch here means config.yaml was edited to look like this run
        unwrapped(run).load_state_dict(found.weights)
        run.optimizer.load_state_dict(state["optimizer"])
        run.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        random.setstate(_to_tuple(state["python_rng"]))
    except (RuntimeError, KeyError, ValueError, TypeError) as e:
        why = " ".join(str(e).split())[:160]
        raise UserError(f"{path} does not fit this run ({why}); use --resume never to start over") from None
    if run.info.is_main:
        _say(f"resuming {run.meta['name']} from step {state['step']} ({path})")
    run.meta["resumed_from"] = [*state.get("resumed_from", []), state["step"]]
    return {k: state[k] for k in fresh}


def _check_layout(path: Path, old: dict[str, int] | None, now: dict[str, int]) -> None:
    """A step number means the same batches only with the same processes (and readers, when streaming)."""
    if old is None or old == now:
        return
    if old.get("world_size") != now["world_size"]:
        raise UserError(
            f"{path} was written by {old.get('world_size')} processes, this run has {now['world_size']}; "
            "resume with the same number of processes, or use --resume never to start over"
        )
    raise UserError(
        f"{path} streamed shards with {old.get('readers')} reader(s) per process, this run with "
        f"{now['readers']}; resume with --set data.num_workers={old.get('readers')} (a streamed epoch's "
        "batches depend on it), or use --resume never to start over"
    )


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)  # on stderr so job logs show it whatever the logging set-up


def _to_tuple(x: Any) -> Any:
    return tuple(_to_tuple(v) for v in x) if isinstance(x, list | tuple) else x


def unwrapped(run: Run) -> torch.nn.Module:
    return run.objective.model


def _train(run: Run, pos: dict[str, Any]) -> None:
    cfg, o = run.cfg, run.cfg.optim
    total = run.steps_per_epoch * (o.stop_epoch or o.epochs)
    step, metrics = pos["step"], Metrics(run, pos, total)
    augment = train_augment(cfg)
    labels = run.targets.labels if run.targets.labels is not None else run.targets.captions
    # rank 0 keeps tqdm's own TQDM_DISABLE handling; a parent showing the steps (nmlbench run) turns it off
    quiet = {} if run.info.is_main and not metrics.reports_progress else {"disable": True}
    bar = tqdm(total=total, initial=step, desc=run.meta["name"], unit="step", **quiet)
    run.model.train()
    while step < total:
        epoch, first = divmod(step, run.steps_per_epoch)
        shard = Sharding(cfg.seed, epoch, run.info.rank, run.info.world_size, first)
        loader, _ = make_loader(
            run.source, labels, augment, o.batch_size, shard, cfg.data.num_workers, run.streamed
        )
        for images, items, skipped in loader:
            metrics.count(len(items), skipped)
            if items:
                loss, extra = _step(run, images, items, step)
                metrics.log(step, epoch, loss, extra)
            step += 1
            bar.update(1)
            metrics.advance(step)
            if step % cfg.ckpt_every_steps == 0 and step < total:
                _save_interval(run, step, metrics)
    bar.close()
    metrics.close()
    run.meta["corrupt_skipped"] = metrics.skipped


def train_augment(cfg: PretrainConfig) -> Any:
    """Images: crops, flips, colour; texts: the model's tokenizer with token dropout."""
    if is_text(cfg):
        from nmlbench.models.text import Tokenize, hashed_tokenizer

        return Tokenize(hashed_tokenizer(), image_size(cfg), TINY_TEXT, cfg.aug.token_drop)
    spec = model_spec(cfg)
    a = cfg.aug
    return tensor_transform(image_size(cfg), spec.mean, spec.std, a.scale_min, a.hflip, a.color_jitter)


def _step(run: Run, images: torch.Tensor, items: list[Any], step: int) -> tuple[float, dict]:
    cfg = run.cfg
    run.scheduler.step_update(step)
    images = images.to(run.device, non_blocking=True)
    if cfg.channels_last and images.ndim == 4:  # token tensors (texts) have no channels
        images = images.contiguous(memory_format=torch.channels_last)
    targets = run.objective.targets(items).to(run.device, non_blocking=True)
    bf16 = run.device.type == "cuda" and cfg.precision == "bf16"
    with torch.autocast(run.device.type, dtype=torch.bfloat16, enabled=bf16):
        loss, extra = run.objective.loss(run.model, images, targets)
    if not torch.isfinite(loss):
        raise RuntimeError(f"loss is {float(loss)} at step {step}; lower optim.lr")
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.optim.grad_clip:
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), cfg.optim.grad_clip)
    run.optimizer.step()
    run.objective.after_step()
    return float(loss.detach()), extra


def _save_interval(run: Run, step: int, metrics: Metrics) -> None:
    metrics.flush()
    if run.info.is_main:
        state = {
            "step": step,
            "skipped": metrics.skipped,
            "seen": metrics.seen,
            "resumed_from": run.meta.get("resumed_from", []),
            "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "python_rng": random.getstate(),
            "layout": run.layout,
        }
        meta = dict(run.meta, step=step, epoch=step // run.steps_per_epoch, complete=False)
        ck.save_checkpoint(ck.interval_dir(run.work, step), unwrapped(run), meta, dump_config(run.cfg), state)
        ck.prune(run.work, run.cfg.keep_checkpoints)
    dist.barrier()


def _export(run: Run, final: Path) -> None:
    """Write the finished checkpoint (with metrics.jsonl/csv) and remove the run's interval checkpoints."""
    jsonl = run.work / "metrics.jsonl"
    csv = run.work / "metrics.csv"
    if jsonl.exists():
        rows = [json.loads(x) for x in jsonl.read_text(encoding="utf-8").splitlines() if x.strip()]
        with atomic_path(csv) as tmp:
            pd.DataFrame(rows).to_csv(tmp, index=False)
    epochs = run.cfg.optim.stop_epoch or run.cfg.optim.epochs
    meta = dict(run.meta, step=run.steps_per_epoch * epochs, epoch=epochs, complete=True)
    ck.save_checkpoint(final, unwrapped(run), meta, dump_config(run.cfg), None, (jsonl, csv))
    shutil.rmtree(run.work, ignore_errors=True)
    log.info("wrote %s", final)
