"""Evaluation grid: (model, method, task, seed) cells -> result records; finished cells are skipped.

    from nmlbench.eval import evaluate
    paths = evaluate(["nmlbench-out/ckpt/tinyresnet.mini_sym10_s0"], ["lp", "nmtune"], "mini", [0])

Cells that train on the same ID task share one fit: an OOD task's head is the one trained on its
`train_task` (selected on that task's val split), so a job is (model, train task, methods, seeds)
and it writes a record for the ID task and for each requested OOD task.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from nmlbench import tracking
from nmlbench.config import dump_config, stable_key
from nmlbench.errors import UserError
from nmlbench.eval.config import (
    EvalConfig,
    load_eval_config,
    method_config,
    method_config_dict,
    resolve_device,
)
from nmlbench.eval.job import fit_and_record, open_task_data
from nmlbench.io import check_output, write_text
from nmlbench.models import check_models, load_backbone, model_identity
from nmlbench.results.io import is_complete, make_run_id, record_path, safe_name
from nmlbench.tuning import ALL_METHODS, DENSE_METHODS, TUNERS

# The last loaded backbone: consecutive jobs of one model (one per ID task) reuse it in-process.
_LOADED: dict[tuple[str, bool, str, int], Any] = {}

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalOptions:
    """Everything about a grid besides models, methods, suite and seeds."""

    tasks: tuple[str, ...] = ()  # explicit tasks instead of (or narrowing) a suite
    preset: str | None = None  # tuner preset; None: "mini" for the mini suite, else "reference"
    config_path: str | None = None
    overrides: tuple[str, ...] = ()
    data_root: str | None = None
    download: bool = False
    launcher: str = "none"
    slurm: Any = None  # nmlbench.launch.SlurmConfig


@dataclass(frozen=True)
class Job:
    """One unit of work: a model, the ID task whose splits train the heads, the tasks it reports."""

    model: str
    train_task: str
    report_tasks: tuple[str, ...]
    methods: tuple[str, ...]
    seeds: tuple[int, ...]
    suite: str
    root: str
    options: EvalOptions = field(default_factory=EvalOptions)
    # The settings resolved once for the whole grid: a preset or --config file edited while the grid
    # runs must not change (or stop) the jobs still to come, here or on a SLURM node.
    cfg: EvalConfig | None = None

    @property
    def cells(self) -> int:
        """Its (method, tuning seed) cells: one fit each, the unit a study's progress counts."""
        return len(self.methods) * len(self.seeds)


def tasks_api() -> Any:
    """The task stage's module (imported lazily so tests can stand in a small fake)."""
    return importlib.import_module("nmlbench.tasks")


def resolve_suite(suite: str | None) -> Any:
    """The suite object for a name or YAML path; None for an explicit task list ("custom")."""
    return tasks_api().get_suite(suite) if suite and suite != "custom" else None


def resolve_tasks(s: Any, tasks: tuple[str, ...]) -> list[Any]:
    """Task specs for a suite (`resolve_suite`'s result) and/or explicit tasks (names or YAML paths)."""
    api = tasks_api()
    specs = [api.get_task(t) for t in (*s.id_tasks, *s.ood_tasks)] if s is not None else []
    if tasks:
        wanted = [api.get_task(t) for t in tasks]
        if s is not None:
            keys = {x.key for x in specs}
            missing = [t for t, w in zip(tasks, wanted, strict=True) if w.key not in keys]
            if missing:
                raise UserError(
                    f"task(s) {', '.join(missing)} are not in suite {s.name!r}; drop --suite or the task"
                )
        specs = wanted
    if not specs:
        raise UserError("no tasks to evaluate; pass --suite NAME or --task T[,T]")
    seen: dict[str, str] = {}
    for spec in specs:
        if spec.key in seen:
            raise UserError(f"task {spec.ref!r} is given twice (also as {seen[spec.key]!r}); list it once")
        seen[spec.key] = spec.ref
    return specs


def plan_jobs(
    models: list[str],
    methods: list[str],
    suite: str,
    seeds: list[int],
    root: str,
    options: EvalOptions,
    cfg: EvalConfig | None = None,
) -> list[Job]:
    """Group tasks by the ID task that trains them; one job per (model, train task), and per method
    too on a dense train task: its methods share nothing (no feature cache), and minutes-long detector
    fits as separate jobs keep parallel workers (study, submitit, SLURM) evenly busy.

    Jobs carry task refs (built-in names or absolute YAML paths), never file stems, so a user's task
    is found again wherever the job runs, and the resolved settings (`cfg`, read now if not given).
    """
    api = tasks_api()
    cfg = cfg or resolve_config(options, suite)
    s = resolve_suite(suite)  # read once: the task list and the results folder both come from it
    groups: dict[str, list[str]] = {}
    for spec in resolve_tasks(s, options.tasks):
        train = api.resolve_train_task(spec).ref if spec.domain == "ood" else spec.ref
        groups.setdefault(train, []).append(spec.ref)
    # results folder: a built-in suite's name, a user suite's name + short key, or 'custom'
    label = "custom" if s is None else getattr(s, "label", s.name)
    train_specs = {train: api.get_task(train) for train in groups}
    for spec in train_specs.values():
        check_method_kinds(methods, spec)
    dense = {train: bool(getattr(spec, "dense", False)) for train, spec in train_specs.items()}
    return [
        Job(m, train, tuple(refs), batch, tuple(seeds), label, root, options, cfg)
        for m in models
        for train, refs in groups.items()
        for batch in ([(x,) for x in methods] if dense[train] else [tuple(methods)])
    ]


def check_method_kinds(methods: list[str], train_spec: Any) -> None:
    """Dense methods (det-*) train detectors on detection/segmentation tasks; the others classify."""
    for m in methods:
        dense_method = getattr(TUNERS.get(m), "consumes", None) == "dense"
        if dense_method != bool(getattr(train_spec, "dense", False)):
            fits, want = "classification", ", ".join(DENSE_METHODS)
            if dense_method:
                fits, want = "dense", "lp, mlp, nmtune, ..."
            raise UserError(
                f"method {m!r} is for {fits} tasks but task {train_spec.name!r} is "
                f"{getattr(train_spec, 'type', 'classification')}; use {want} for it (or split the suite)"
            )


def expand_methods(methods: list[str], suite: str | None, tasks: tuple[str, ...]) -> list[str]:
    """`all` = every classification method, or every dense method when every task is dense."""
    if list(methods) != ["all"]:
        return list(methods)
    specs = resolve_tasks(resolve_suite(suite), tasks)
    return list(DENSE_METHODS if all(getattr(s, "dense", False) for s in specs) else ALL_METHODS)


def preflight(jobs: list[Job]) -> None:
    """Load every split the jobs will read and check its labels, before anything is written."""
    from nmlbench.eval.job import load_task_data

    api = tasks_api()
    done: set[str] = set()
    for job in jobs:
        if job.train_task in done:
            continue
        done.add(job.train_task)
        load_task_data(job, api)  # raises on a missing file or a label out of range


def check_methods(jobs: list[Job], cfg: EvalConfig) -> None:
    """Every method can run on every model (LoRA needs attention blocks, LEVI tap points) before the
    first record is written; else `--method lp,lora` on a CNN would write LP records, then fail."""
    methods = list(dict.fromkeys(m for j in jobs for m in j.methods))
    if not picky_methods(methods):
        return
    device = resolve_device(cfg.device)
    for model in dict.fromkeys(j.model for j in jobs):
        backbone = _backbone(model, cfg, device)  # kept in _LOADED: the first job reuses it
        check_methods_on(backbone, methods, cfg)


def picky_methods(methods: Any) -> list[str]:
    """The methods that can refuse a model (their tuner overrides `check_backbone`)."""
    from nmlbench.tuning.base import Tuner

    return [m for m in methods if TUNERS.get(m).check_backbone is not Tuner.check_backbone]


def check_methods_on(backbone: Any, methods: Any, cfg: EvalConfig) -> None:
    """UserError (one line) from the first method that cannot run on `backbone`. Only its
    architecture matters, so `nmlbench run` checks a random init before pretraining it."""
    for method in picky_methods(methods):
        TUNERS.get(method)(method_config(cfg, TUNERS.get(method).config_key)).check_backbone(backbone)


def run_job(job: Job) -> list[str]:
    """Run every unfinished (method, seed) of `job`; returns the record paths (as strings)."""
    cfg = job.cfg or resolve_config(job.options, job.suite)
    backbone = None
    data = None
    config_written = False
    out: list[str] = []
    task_labels = [tasks_api().get_task(t).label for t in job.report_tasks]
    model = model_label(job.model, cfg)
    finished = 0
    for method in job.methods:
        tuner = TUNERS.get(method)(method_config(cfg, TUNERS.get(method).config_key))
        key = config_key(cfg, tuner, model_modality(job.model, cfg))
        for seed in job.seeds:
            paths = [
                record_path(job.root, job.suite, make_run_id(model, method, t, seed, key))
                for t in task_labels
            ]
            finished += 1  # reported once the cell is done: a study's progress counts cells
            if all(is_complete(p) for p in paths):
                log.info("skip %s %s %s s%d: finished", job.model, method, job.train_task, seed)
                out += [str(p) for p in paths]
                tracking.report_fits(job_name(job), finished, job.cells)
                continue
            if backbone is None:
                backbone = _backbone(job.model, cfg, resolve_device(cfg.device))
                data = open_task_data(job, backbone, cfg)
            tuner.check_backbone(backbone)
            record = fit_and_record
            if tuner.consumes == "dense":
                from nmlbench.dense.job import fit_and_record_dense as record
            out += [str(p) for p in record(tuner, method, seed, data, paths, cfg)]
            if not config_written:  # beside the first record, never before: a refused grid writes nothing
                write_text(config_path(job.root, job.suite, cfg), dump_config(cfg))
                config_written = True
            tracking.report_fits(job_name(job), finished, job.cells)
    return out


def job_name(job: Job) -> str:
    """A job's name in progress reports: model, train task, methods (unique within a grid)."""
    return f"{job.model} | {job.train_task} | {','.join(job.methods)}"


def _backbone(ref: str, cfg: EvalConfig, device: str) -> Any:
    weights = Path(ref) / "model.safetensors"
    stamp = weights.stat().st_mtime_ns if weights.is_file() else 0  # a rewritten checkpoint reloads
    key = (ref, cfg.pretrained, cfg.image_size, cfg.text, device, stamp)
    if key not in _LOADED:
        _LOADED.clear()  # keep one model in memory
        _LOADED[key] = load_backbone(
            ref, pretrained=cfg.pretrained, image_size=cfg.image_size, text=cfg.text
        ).to(device)
    return _LOADED[key]


def model_label(ref: str, cfg: EvalConfig) -> str:
    """`<display name>-<identity key>`: what the model is (weights or library+arch+tag+pretrained, and
    image size), never a short name that two models share (two `ckpt/run` folders, pretrained or not)."""
    ident = model_identity(ref, cfg.pretrained, cfg.image_size, text=cfg.text)
    return f"{ident.name}-{ident.key[:8]}"


def model_modality(ref: str, cfg: EvalConfig) -> str:
    """The inputs a model reads: text for transformers models (hf:NAME, tinytext, text checkpoints)."""
    from nmlbench.models.textload import TEXT_LIBRARY

    ident = model_identity(ref, cfg.pretrained, cfg.image_size, text=cfg.text)
    return "text" if ident.block.get("library") == TEXT_LIBRARY else "image"


def config_key(cfg: EvalConfig, tuner: Any, modality: str = "image") -> str:
    return stable_key(method_config_dict(cfg, tuner.config_key, tuner.consumes, modality))


def resolve_config(options: EvalOptions, suite: str | None) -> EvalConfig:
    """Preset <- --config file <- --set overrides, read from disk now."""
    preset = options.preset or default_preset(suite or "custom")
    return load_eval_config(preset, options.config_path, options.overrides)


def default_preset(suite: str) -> str:
    """The built-in mini suites have their short schedules; every other suite the reference's."""
    return suite if suite in ("mini", "mini-text", "mini-dense") else "reference"


def config_path(root: str, suite: str, cfg: EvalConfig) -> Path:
    """The resolved settings beside the records (each record also holds its method's section)."""
    return Path(root) / "results" / safe_name(suite) / "configs" / f"{stable_key(cfg)}.yaml"


def evaluate(
    models: list[str],
    methods: list[str],
    suite: str | None,
    seeds: list[int],
    root: str | Path | None = None,
    options: EvalOptions | None = None,
) -> list[Path]:
    """Evaluate every (model, method, task, seed) cell; returns the record paths.

    Args:
        models: checkpoint dirs, timm names or `open_clip:<model>[:<pretrained>]`.
        methods: names in TUNERS, or ["all"].
        suite: "mini", "paper", "imagenet-shifts", ... or None with `options.tasks`.
        seeds: tuning seeds.
        root: output root (default $NMLBENCH_ROOT or ./nmlbench-out).
        options: tasks, preset, overrides, data root, download, launcher.
    """
    from nmlbench.paths import output_root

    options = options or EvalOptions()
    methods = expand_methods(list(methods), suite, options.tasks)
    for m in methods:
        TUNERS.get(m)  # unknown method -> did-you-mean, before any work
    if not models:
        raise UserError("no model given; pass --model REF (checkpoint dir, timm name or open_clip:NAME)")
    cfg = resolve_config(options, suite)  # validates presets and overrides before any work
    root_s = str(check_output(output_root(root), folder=True))  # a root that can never be written: now
    jobs = plan_jobs(list(models), methods, suite or "custom", list(seeds), root_s, options, cfg)
    check_models(models, cfg.pretrained, cfg.image_size, cfg.text)
    preflight(jobs)  # every task's data read and checked: bad input writes nothing
    check_methods(jobs, cfg)
    if options.launcher == "none":
        resolve_device(cfg.device)  # an absent GPU is refused here, not inside the first job
        results = [run_job(j) for j in tqdm(jobs, desc="evaluate", unit="job")]
    else:
        from nmlbench.launch import run_jobs

        results = run_jobs(
            run_job,
            jobs,
            launcher=options.launcher,
            folder=Path(root_s) / "jobs" / "evaluate",
            slurm=options.slurm or cfg.slurm,
            name="nmlbench-evaluate",
        )
    return [Path(p) for paths in results for p in paths]
