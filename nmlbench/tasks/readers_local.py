"""Readers for data that is generated or already on disk: `mini`, `npz`, `image_folder`."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from torchvision.datasets import ImageFolder

from nmlbench.errors import UserError
from nmlbench.readers.base import decoding
from nmlbench.readers.files import open_npz
from nmlbench.tasks.spec import TaskSpec
from nmlbench.tasks.split import TASK_READERS, Split, missing_data, read_params, resolve_names


def _ids(spec: TaskSpec, split: str, n: int) -> np.ndarray:
    return np.array([f"{spec.name}/{split}/{i:06d}" for i in range(n)])


def _under(root: Path, rel: str, spec: TaskSpec) -> Path:
    """Where a data path of a task points: absolute as written; relative, a built-in task's under the
    data root, and a user task's beside its YAML file (else under the data root, if only there)."""
    p = Path(rel).expanduser()
    if p.is_absolute():
        return p
    if spec.builtin or not spec.origin:
        return root / p
    beside = Path(spec.origin).parent / p
    return root / p if not beside.exists() and (root / p).exists() else beside


@TASK_READERS.register("mini")
def read_mini(spec: TaskSpec, split: str, root: Path, download: bool) -> Split:
    """The built-in mini benchmark: params `generator`, `domain` (real|sketch|painting|clipart), `seed`."""
    from nmlbench.mini import load_generated
    from nmlbench.mini.data import generator

    p = read_params(spec, {"generator": None, "domain": "real", "seed": 0}, required=["generator"])
    images, labels = load_generated(p["generator"], p["domain"], split, root, int(p["seed"]))
    return Split(labels, generator(p["generator"]).classes, _ids(spec, split, len(labels)), images=images)


def _as_rgb(images: np.ndarray, where: Path) -> np.ndarray:
    if images.dtype != np.uint8:
        raise UserError(f"{where}: images must be uint8, got {images.dtype}; convert them first")
    if images.ndim == 3:  # grayscale (N, H, W)
        return np.repeat(images[..., None], 3, axis=-1)
    if images.ndim == 4 and images.shape[-1] == 1:
        return np.repeat(images, 3, axis=-1)
    if images.ndim == 4 and images.shape[-1] == 3:
        return images
    raise UserError(f"{where}: images must be (N, H, W[, 1|3]) uint8, got shape {images.shape}")


@TASK_READERS.register("npz")
def read_npz(spec: TaskSpec, split: str, root: Path, download: bool) -> Split:
    """numpy archives: params `files: {split: path}` (relative to the data root) and array keys."""
    p = read_params(spec, {"files": None, "images_key": "images", "labels_key": "labels",
                           "classes_key": "classes"}, required=["files"])
    if split not in p["files"]:
        raise UserError(f"task {spec.name!r}: params.files has no entry for split {split!r}; "
                        f"add one or derive it with derived_splits")
    path = _under(root, p["files"][split], spec)
    if not path.is_file():
        raise missing_data(spec, path, False)
    z = open_npz(path)
    with z, decoding(f"npz archive {path}", "write it again with numpy.savez"):
        for key in (p["images_key"], p["labels_key"]):
            if key not in z.files:
                raise UserError(f"{path}: no array {key!r} (has {z.files}); fix the file or params")
        images = _as_rgb(z[p["images_key"]], path)
        raw = z[p["labels_key"]]
        names = [str(c) for c in z[p["classes_key"]]] if p["classes_key"] in z.files else None
    if raw.dtype.kind not in "iu":
        raise UserError(f"{path}: labels must be integers, got {raw.dtype}; write integer class indices")
    labels = raw.astype(np.int64)
    if len(labels) != len(images):
        raise UserError(f"{path}: {len(images)} images but {len(labels)} labels; every image needs one label")
    classes = resolve_names(spec.classes, spec) or names or [str(i) for i in range(spec.num_classes)]
    bad = np.flatnonzero((labels < 0) | (labels >= len(classes)))
    if len(bad):
        raise UserError(f"{path}: label {labels[bad[0]]} (sample {bad[0]}) is outside 0..{len(classes) - 1} "
                        f"for {len(classes)} classes; fix the labels or the task's classes")
    return Split(labels, classes, _ids(spec, split, len(labels)), images=images)


class _FixedClassFolder(ImageFolder):
    """ImageFolder with fixed class folders, so a split missing some class folders keeps label ids."""

    def __init__(self, root: str, folders: list[str]) -> None:
        self._fixed = folders  # folders[i] holds the images of class i
        super().__init__(root, allow_empty=True)

    def find_classes(self, directory: str) -> tuple[list[str], dict[str, int]]:
        return self._fixed, {c: i for i, c in enumerate(self._fixed)}


def _from_list(spec: TaskSpec, root: Path, list_file: Path, split: str) -> Split:
    """`relative/path label` lines (the DomainNet txt format); class names from the parent folders."""
    if not list_file.is_file():
        raise missing_data(spec, list_file, False)
    paths, labels = [], []
    with decoding(f"list file {list_file}", "save it as UTF-8 'relative/path label' lines"):
        text = list_file.read_text(encoding="utf-8")
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            parts = line.rsplit(maxsplit=1)
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                raise UserError(f"{list_file}:{n}: expected 'relative/path label', got {line!r}")
            paths.append(root / parts[0])
            labels.append(int(parts[1]))
    names = resolve_names(spec.classes, spec)
    if names is None:
        by_label = {y: Path(pth).parent.name for pth, y in zip(paths, labels, strict=True)}
        names = [by_label.get(i, str(i)) for i in range(max(by_label) + 1)]
    return Split(np.array(labels), names, _ids(spec, split, len(labels)),
                 get_image=lambda i: open_image(paths[i]))


@TASK_READERS.register("image_folder")
def read_image_folder(spec: TaskSpec, split: str, root: Path, download: bool) -> Split:
    """Per-split class-folder trees (`root/<split dir>/<class>/<image>`), or per-split list files."""
    p = read_params(spec, {"root": None, "split_dirs": {}, "list_files": {}, "folders": "names"},
                    required=["root"])
    if p["folders"] not in ("names", "index"):
        raise UserError(f"task {spec.name!r}: params.folders must be 'names' or 'index', "
                        f"not {p['folders']!r}")
    base = _under(root, p["root"], spec)
    if split in p["list_files"]:
        return _from_list(spec, base, base / p["list_files"][split], split)
    folder = base / p["split_dirs"].get(split, split)
    if not folder.is_dir():
        raise missing_data(spec, folder, False)
    names = resolve_names(spec.classes, spec)
    if p["folders"] == "index":  # e.g. ImageNetV2: class i lives in folder "i"
        ds = _FixedClassFolder(str(folder), [str(i) for i in range(len(names or []) or spec.num_classes)])
    else:
        ds = _FixedClassFolder(str(folder), names) if names else ImageFolder(str(folder))
    ids = np.array([f"{spec.name}/{split}/{Path(s).relative_to(folder).as_posix()}" for s, _ in ds.samples])
    return Split(np.array(ds.targets, dtype=np.int64), names or ds.classes, ids,
                 get_image=lambda i: open_image(ds.samples[i][0]))


def open_image(path: str | Path) -> Image.Image:
    """A task image, decoded now: a damaged file is one UserError naming it, not a traceback
    from deep inside feature extraction (PIL opens lazily and would fail at the first `convert`)."""
    with decoding(f"image {path}", "replace or remove the file"):
        with Image.open(path) as img:
            return img.convert("RGB")
