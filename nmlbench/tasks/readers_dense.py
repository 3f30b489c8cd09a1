"""Readers of dense tasks (detection, instance segmentation): `coco` and the built-in `mini_dense`.

A dense reader maps (spec, split, data root, download) to a `DenseSplit` in the task's own categories;
`load_dense_split` checks it and puts an OOD split into its train task's categories.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from nmlbench.dense.coco import DenseSplit, read_coco
from nmlbench.errors import UserError
from nmlbench.paths import data_root as _data_root
from nmlbench.registry import Registry
from nmlbench.tasks.readers_local import _under
from nmlbench.tasks.spec import TaskSpec, get_task, resolve_train_task
from nmlbench.tasks.split import missing_data, read_params

DenseReader = Callable[[TaskSpec, str, Path, bool], DenseSplit]
DENSE_READERS: Registry[DenseReader] = Registry("dense task reader")


def _masks(spec: TaskSpec) -> bool:
    return spec.type == "instance_segmentation"


@DENSE_READERS.register("coco")
def read_coco_task(spec: TaskSpec, split: str, root: Path, download: bool) -> DenseSplit:
    """A COCO-layout folder: params `images` and `annotations` are path templates in which `{split}`
    is the COCO split name that `split_map` gives for ours (train -> train, test -> val)."""
    p = read_params(spec, {"images": "coco/{split}2017",
                           "annotations": "coco/annotations/instances_{split}2017.json",
                           "split_map": {"train": "train", "test": "val"}})
    if split not in p["split_map"]:
        raise UserError(f"task {spec.name!r}: params.split_map has no entry for split {split!r}; add one")
    name = str(p["split_map"][split])
    annotations = _under(root, str(p["annotations"]).replace("{split}", name), spec)
    images = _under(root, str(p["images"]).replace("{split}", name), spec)
    for where in (annotations, images):
        if not where.exists():
            raise missing_data(spec, where, False)
    return read_coco(annotations, images, masks=_masks(spec), task=spec.name)


@DENSE_READERS.register("mini_dense")
def read_mini_dense(spec: TaskSpec, split: str, root: Path, download: bool) -> DenseSplit:
    """The built-in mini dense task: params `domain` (real|sketch) and `seed`; built on first use."""
    from nmlbench.dense.scenes import SPLIT_SIZES, ensure_mini_dense

    p = read_params(spec, {"domain": "real", "seed": 0})
    if p["domain"] not in SPLIT_SIZES:
        raise UserError(f"task {spec.name!r}: params.domain must be one of {sorted(SPLIT_SIZES)}, "
                        f"not {p['domain']!r}")
    if split not in SPLIT_SIZES[p["domain"]]:
        raise UserError(f"task {spec.name!r}: the mini dense {p['domain']} data has splits "
                        f"{sorted(SPLIT_SIZES[p['domain']])}, not {split!r}")
    folder = ensure_mini_dense(root, p["domain"], int(p["seed"]))
    return read_coco(folder / "annotations" / f"instances_{split}.json", folder / "images" / split,
                     masks=_masks(spec), task=spec.name)


def _read(spec: TaskSpec, split: str, root: Path, download: bool) -> DenseSplit:
    out = DENSE_READERS.get(spec.reader)(spec, split, root, download)
    if len(out.classes) != spec.num_classes:
        raise UserError(f"task {spec.name!r}: the spec says {spec.num_classes} categories but split "
                        f"{split!r} has {len(out.classes)}; fix num_classes in "
                        f"{spec.origin or 'the task YAML'} or the annotations")
    if len(out) == 0:
        raise UserError(f"task {spec.name!r}: split {split!r} is empty; check the data")
    return out


def load_dense_split(spec: TaskSpec | str, split: str, data_root: str | Path | None = None,
                     download: bool = False) -> DenseSplit:
    """One split of a dense task; an OOD split comes in its train task's categories (by name)."""
    spec = get_task(spec)
    if not spec.dense:
        raise UserError(f"task {spec.name!r} is a classification task; load it with load_split")
    if split not in spec.split_names:
        raise UserError(f"task {spec.name!r} has splits {list(spec.split_names)}, not {split!r}"
                        + ("; OOD tasks are evaluated on 'test' only" if spec.domain == "ood" else ""))
    if spec.reader not in DENSE_READERS:
        raise UserError(f"task {spec.name!r}: {DENSE_READERS.unknown_message(spec.reader)}")
    root = _data_root(data_root)
    out = _read(spec, split, root, download)
    if spec.domain == "ood":
        train = resolve_train_task(spec)
        if not train.dense:
            raise UserError(f"task {spec.name!r}: train_task {train.name!r} must be a dense task")
        # The categories are the same in every split of a task: read the smallest (test) one.
        ref = _read(train, train.split_names[-1], root, download)
        out = out.to_label_space(ref.classes, ref.cat_ids)
    return out
