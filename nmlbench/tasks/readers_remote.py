"""Readers that can download on request: `torchvision` datasets and Hugging Face `hf` datasets.

Nothing is downloaded unless `download=True` (CLI `--download`); absent data is a UserError that
names the expected folder and the flag.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from nmlbench.errors import UserError
from nmlbench.io import atomic_dir
from nmlbench.tasks.spec import TaskSpec
from nmlbench.tasks.split import TASK_READERS, Split, missing_data, read_params, resolve_names

# Where torchvision datasets keep their labels without decoding images (first match wins).
_LABEL_ATTRS = ("targets", "_labels", "labels", "y")


def _torchvision_labels(ds: object) -> np.ndarray:
    for attr in _LABEL_ATTRS:
        if hasattr(ds, attr):
            return np.asarray(getattr(ds, attr), dtype=np.int64)
    if hasattr(ds, "_samples"):  # StanfordCars: (path, label) pairs
        return np.array([s[1] for s in ds._samples], dtype=np.int64)
    # Last resort (e.g. PCAM): decode once with a progress bar.
    return np.array([int(ds[i][1]) for i in tqdm(range(len(ds)), desc="reading labels")], dtype=np.int64)


def _torchvision_classes(ds: object, spec: TaskSpec) -> list[str]:
    names = resolve_names(spec.classes, spec)
    if names:
        return names
    for attr in ("classes", "categories"):
        if getattr(ds, attr, None):
            return [str(c) for c in getattr(ds, attr)]
    return [str(i) for i in range(spec.num_classes)]


@TASK_READERS.register("torchvision")
def read_torchvision(spec: TaskSpec, split: str, root: Path, download: bool) -> Split:
    """A torchvision dataset class: params `dataset`, `subdir`, `split_kwargs: {split: {ctor kwargs}}`."""
    import torchvision.datasets as tvd

    p = read_params(spec, {"dataset": None, "subdir": spec.name, "split_kwargs": {}}, required=["dataset"])
    cls = getattr(tvd, p["dataset"], None)
    if cls is None:
        raise UserError(f"task {spec.name!r}: torchvision has no dataset {p['dataset']!r}; "
                        "fix params.dataset")
    if split not in p["split_kwargs"]:
        raise UserError(f"task {spec.name!r}: params.split_kwargs has no entry for split {split!r}")
    folder = root / p["subdir"]
    try:
        ds = cls(root=str(folder), download=download, **p["split_kwargs"][split])
    except ImportError as e:
        raise UserError(f"task {spec.name!r} needs an optional package: {e}; pip install it") from None
    except ValueError as e:  # torchvision's verify_str_arg: a split or option it does not know
        raise UserError(f"task {spec.name!r}: torchvision {p['dataset']} rejected "
                        f"{p['split_kwargs'][split]}: {str(e).splitlines()[0]}") from None
    except (RuntimeError, FileNotFoundError, OSError) as e:
        if download:
            raise UserError(f"task {spec.name!r}: download into {folder} failed ({e}); "
                            f"fetch it by hand from {spec.source}") from None
        raise missing_data(spec, folder, True) from None
    labels = _torchvision_labels(ds)
    ids = np.array([f"{spec.name}/{split}/{i:06d}" for i in range(len(labels))])
    return Split(labels, _torchvision_classes(ds, spec), ids, get_image=lambda i: ds[i][0])


def _hf_dataset_dict(spec: TaskSpec, p: dict, root: Path, download: bool, single: str | None = None):
    """The DatasetDict saved under `data_root/subdir`, made there by `load_dataset` on --download.

    `single`: accept a lone `Dataset` saved with save_to_disk as the split of that name (releases that
    ship one test set), instead of refusing it. A task without a hub `path` cannot be downloaded.
    """
    import datasets

    folder = root / p["subdir"]
    saved = (folder / "dataset_dict.json").is_file() or (single and (folder / "state.json").is_file())
    if not saved:
        if not download or not p["path"]:
            raise missing_data(spec, folder, bool(p["path"]))
        try:
            dd = datasets.load_dataset(p["path"], p["name"], revision=p["revision"],
                                       cache_dir=str(root / "hf-cache"))
        except Exception as e:  # the hub client raises many types; the user needs the one line
            raise UserError(f"task {spec.name!r}: could not download {p['path']!r} from the HF hub "
                            f"({type(e).__name__}); check the network or save it with save_to_disk "
                            f"into {folder}") from None
        with atomic_dir(folder) as tmp:
            dd.save_to_disk(str(tmp))
    dd = datasets.load_from_disk(str(folder))
    if single and isinstance(dd, datasets.Dataset):
        return datasets.DatasetDict({single: dd})
    if not isinstance(dd, datasets.DatasetDict):
        raise UserError(f"{folder}: expected a DatasetDict saved with save_to_disk, found a single Dataset")
    return dd


@TASK_READERS.register("hf")
def read_hf(spec: TaskSpec, split: str, root: Path, download: bool) -> Split:
    """A Hugging Face dataset: `load_from_disk(data_root/subdir)`, filled by `load_dataset` on --download."""
    p = read_params(spec, {"path": None, "name": None, "revision": None, "subdir": spec.name,
                           "splits": {}, "image_column": "image", "label_column": "label",
                           "filter": {}}, required=["path"])
    dd = _hf_dataset_dict(spec, p, root, download)
    hf_split = p["splits"].get(split, split)
    if hf_split not in dd:
        raise UserError(f"task {spec.name!r}: the dataset has splits {list(dd)}, not {hf_split!r}; "
                        f"fix params.splits")
    ds = dd[hf_split]
    for col in (p["image_column"], p["label_column"], *p["filter"]):
        if col not in ds.column_names:
            raise UserError(f"task {spec.name!r}: no column {col!r} (has {ds.column_names}); fix params")
    for col, value in p["filter"].items():  # e.g. {domain: sketch} on a multi-domain dataset
        ds = ds.select(np.flatnonzero(np.asarray(ds[col]) == value))
    feature = ds.features[p["label_column"]]
    classes = resolve_names(spec.classes, spec) or list(getattr(feature, "names", None) or [])
    raw = ds[p["label_column"]]
    if raw and isinstance(raw[0], str):
        index = {c: i for i, c in enumerate(classes)}
        unknown = sorted(set(raw) - set(index))
        if unknown:
            raise UserError(f"task {spec.name!r}: label names {unknown[:3]} are not in the class list")
        raw = [index[c] for c in raw]
    labels = np.asarray(raw, dtype=np.int64)
    classes = classes or [str(i) for i in range(spec.num_classes)]
    ids = np.array([f"{spec.name}/{hf_split}/{i:06d}" for i in range(len(labels))])
    column = p["image_column"]
    return Split(labels, classes, ids, get_image=lambda i: ds[i][column])
