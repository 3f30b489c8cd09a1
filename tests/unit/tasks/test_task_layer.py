"""Task definitions, suites, readers on real on-disk formats, derived splits, OOD label mapping, errors."""
from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torchvision
from PIL import Image

from nmlbench.errors import UserError
from nmlbench.tasks import TASK_READERS, get_suite, get_task, list_tasks, load_split
from nmlbench.tasks import cli as tasks_cli
from nmlbench.tasks.readers_dense import DENSE_READERS
from nmlbench.tasks.split import resolve_names

PAPER_ID = {"cifar10", "cifar100", "food101", "flowers102", "oxford-pets", "stanford-cars", "fgvc-aircraft",
            "dtd", "stl10", "caltech101", "eurosat", "svhn", "pcam", "resisc45"}


def test_every_builtin_task_is_complete() -> None:
    names = list_tasks()
    assert PAPER_ID <= set(names) and {"country211", "rendered-sst2", "imagenet-1k"} <= set(names)
    for name in names:
        spec = get_task(name)
        readers = DENSE_READERS if spec.dense else TASK_READERS  # dense tasks read COCO-format boxes/masks
        assert spec.name == name and spec.version >= 1 and spec.reader in readers, name
        assert spec.source and spec.license and spec.description, name
        if spec.domain == "ood":
            assert get_task(spec.train_task).domain == "id"


def test_suites() -> None:
    paper = get_suite("paper")
    assert set(paper.id_tasks) == PAPER_ID and len(paper.ood_tasks) == 4
    assert {get_task(t).train_task for t in paper.ood_tasks} == {"domainnet-real", "domainnet-sketch"}
    assert paper.tasks[14:16] == ("domainnet-real", "domainnet-sketch")  # train tasks come before OOD
    shifts = get_suite("imagenet-shifts")
    assert shifts.id_tasks == ("imagenet-1k",) and len(shifts.ood_tasks) == 4
    assert {get_task(t).class_mask for t in shifts.ood_tasks} >= {"timm:imagenet_r_synsets",
                                                                  "timm:imagenet_a_synsets"}
    with pytest.raises(UserError, match="did you mean 'paper'"):
        get_suite("papr")


def test_imagenet_masks_come_from_timm_and_fit_imagenet_1k() -> None:
    full = resolve_names("timm:imagenet_synsets", get_task("imagenet-1k"))
    for task in ("imagenet-r", "imagenet-a"):
        spec = get_task(task)
        mask = resolve_names(spec.class_mask, spec)
        assert len(mask) == 200 and spec.num_classes == 1000 and set(mask) <= set(full)


def test_unknown_task_and_bad_yaml(write_yaml) -> None:
    with pytest.raises(UserError, match="did you mean 'cifar10'"):
        get_task("cifar01")
    with pytest.raises(UserError, match="does not exist"):
        get_task("nowhere/task.yaml")
    bad = write_yaml("bad", {"version": 1, "reader": "npz", "num_classes": 3, "labels": 3})
    with pytest.raises(UserError, match="unknown key"):
        get_task(bad)
    ood = write_yaml("ood", {"version": 1, "reader": "npz", "num_classes": 3, "domain": "ood"})
    with pytest.raises(UserError, match="train_task"):
        get_task(ood)
    with pytest.raises(UserError, match="has splits"):
        load_split("mini-objects-sketch", "train")


def _npz(colour_images, path: Path, labels: np.ndarray, classes=("x", "y", "z"), gray: bool = False) -> None:
    images = colour_images(labels)
    np.savez(path, images=images[..., 0] if gray else images, labels=labels, classes=np.array(classes))


def test_user_npz_task_with_ood_sibling_by_yaml_alone(colour_images, tmp_path: Path, write_yaml) -> None:
    """The worked example of docs/tasks.md: an npz task, a carved val split, and an OOD sibling."""
    data = tmp_path / "data"
    data.mkdir()
    _npz(colour_images, data / "train.npz", np.arange(60) % 3)
    _npz(colour_images, data / "test.npz", np.arange(15) % 3)
    _npz(colour_images, data / "shifted.npz", np.array([2, 1, 0, 2]), classes=("z", "y", "x"), gray=True)
    write_yaml("toy", {"version": 1, "reader": "npz", "num_classes": 3,
                       "params": {"files": {"train": "train.npz", "test": "test.npz"}},
                       "derived_splits": {"val": {"from": "train", "fraction": 0.2}},
                       "description": "toy", "source": "local", "license": "CC0"})
    shifted = write_yaml("toy-shifted", {"version": 1, "reader": "npz", "num_classes": 3, "domain": "ood",
                                         "train_task": "toy.yaml",
                                         "params": {"files": {"test": "shifted.npz"}}})
    spec = get_task(tmp_path / "toy.yaml")
    train, val = load_split(spec, "train", data), load_split(spec, "val", data)
    assert (len(train), len(val)) == (48, 12)
    assert np.bincount(val.labels).tolist() == [4, 4, 4]  # stratified
    assert not set(train.ids) & set(val.ids)
    assert np.array_equal(load_split(spec, "val", data).ids, val.ids)  # deterministic
    img, label = train[0]
    assert img.mode == "RGB" and img.size == (8, 8) and abs(np.asarray(img).mean() - (label * 40 + 24.5)) < 6
    ood = load_split(get_task(str(shifted)), "test", data)
    assert ood.classes == ["x", "y", "z"]
    assert ood.labels.tolist() == [0, 1, 2, 0]  # 'z','y','x','z' mapped into the train task's label space
    assert ood.images.shape == (4, 8, 8, 3)


def test_npz_errors(colour_images, tmp_path: Path, write_yaml) -> None:
    _npz(colour_images, tmp_path / "train.npz", np.arange(6) % 3)
    spec = get_task(write_yaml("four", {"version": 1, "reader": "npz", "num_classes": 4,
                                        "params": {"files": {"train": "train.npz", "test": "absent.npz"}}}))
    with pytest.raises(UserError, match="spec says 4 classes but"):
        load_split(spec, "train", tmp_path)
    with pytest.raises(UserError, match=r"no data at .*absent\.npz"):
        load_split(spec, "test", tmp_path)
    _npz(colour_images, tmp_path / "bad.npz", np.array([0, 1, 5]))
    spec = get_task(write_yaml("range", {"version": 1, "reader": "npz", "num_classes": 3,
                                         "params": {"files": {"train": "bad.npz"}}}))
    with pytest.raises(UserError, match="outside 0..2"):
        load_split(spec, "train", tmp_path)
    spec = get_task(write_yaml("typo", {"version": 1, "reader": "npz", "num_classes": 3,
                                        "params": {"file": "train.npz"}}))
    with pytest.raises(UserError, match="unknown params"):
        load_split(spec, "train", tmp_path)


def test_image_folder_tree_keeps_label_ids_when_a_split_lacks_a_class(image_tree: Path, write_yaml) -> None:
    spec = get_task(write_yaml("folder", {"version": 1, "reader": "image_folder", "num_classes": 3,
                                          "classes": ["a", "b", "c"], "params": {"root": str(image_tree)},
                                          "derived_splits": {"val": {"from": "train", "fraction": 0.25}}}))
    train, test = load_split(spec, "train"), load_split(spec, "test")
    val = load_split(spec, "val")
    assert len(train) == 9 and len(val) == 3 and len(test) == 4
    for img, y in val:  # a carved subset still reads its own files
        assert abs(np.asarray(img).mean() - (y * 40 + 24.5)) < 6
    assert test.classes == ["a", "b", "c"] and sorted(set(test.labels)) == [0, 1]
    assert test.ids[0] == "folder/test/a/0.png" and test.images is None
    img, y = test[3]
    assert img.mode == "RGB" and y == 1 and abs(np.asarray(img).mean() - 64.5) < 6
    plain = get_task(write_yaml("plain", {"version": 1, "reader": "image_folder", "num_classes": 3,
                                          "params": {"root": str(image_tree)}}))
    with pytest.raises(UserError, match="spec says 3 classes but"):
        load_split(plain, "test")  # ImageFolder alone finds only 2 classes there
    with pytest.raises(UserError, match="no data at"):
        load_split(plain, "val")


def test_image_folder_list_files_and_index_folders(colour_images, tmp_path: Path, write_yaml) -> None:
    """DomainNet's `path label` lists, and ImageNetV2's class-index folder names."""
    root = tmp_path / "dn"
    lines = []
    for y, cls in enumerate(["apple", "bee"]):
        (root / "real" / cls).mkdir(parents=True)
        (root / "1" if y else root / "0").mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(colour_images(np.full(2, y))):
            Image.fromarray(img).save(root / "real" / cls / f"{i}.jpg")
            Image.fromarray(img).save(root / str(y) / f"{i}.png")
            lines.append(f"real/{cls}/{i}.jpg {y}")
    (root / "real_test.txt").write_text("\n".join(lines) + "\n")
    lists = {"test": "real_test.txt"}
    spec = get_task(write_yaml("dn", {"version": 1, "reader": "image_folder", "num_classes": 2,
                                      "params": {"root": str(root), "list_files": lists}}))
    split = load_split(spec, "test")
    assert split.classes == ["apple", "bee"] and split.labels.tolist() == [0, 0, 1, 1]
    assert split[2][0].size == (8, 8)
    idx = get_task(write_yaml("v2", {"version": 1, "reader": "image_folder", "num_classes": 2,
                                     "classes": ["apple", "bee"],
                                     "params": {"root": str(root), "split_dirs": {"test": "."},
                                                "folders": "index"}}))
    split = load_split(idx, "test")
    assert split.classes == ["apple", "bee"] and split.labels.tolist() == [0, 0, 1, 1]
    (root / "bad.txt").write_text("real/apple/0.jpg\n")
    bad = get_task(write_yaml("dnbad", {"version": 1, "reader": "image_folder", "num_classes": 2,
                                        "params": {"root": str(root), "list_files": {"test": "bad.txt"}}}))
    with pytest.raises(UserError, match=r"bad\.txt:1"):
        load_split(bad, "test")


def test_ood_class_mask_maps_into_train_space(image_tree: Path, tmp_path: Path, write_yaml) -> None:
    (tmp_path / "names.txt").write_text("a\nb\nc\n")
    write_yaml("base", {"version": 1, "reader": "image_folder", "num_classes": 3, "classes": "names.txt",
                        "params": {"root": str(image_tree)}})
    spec = get_task(write_yaml("sub", {"version": 1, "reader": "image_folder", "num_classes": 3,
                                       "domain": "ood", "train_task": "base.yaml", "classes": ["b", "c"],
                                       "class_mask": ["b", "c"],
                                       "params": {"root": str(image_tree), "split_dirs": {"test": "train"}}}))
    split = load_split(spec, "test")
    assert split.classes == ["a", "b", "c"] and split.class_subset.tolist() == [1, 2]
    assert sorted(set(split.labels.tolist())) == [1, 2]  # folders b, c hold labels 1, 2 of the train space


def test_torchvision_cifar10_from_its_pickle_batches(cifar10_tree: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # Our batches are real-format but not the official bytes, so torchvision's md5 check is bypassed.
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *a, **k: True)
    spec = get_task("cifar10")
    train = load_split(spec, "train", cifar10_tree)
    val = load_split(spec, "val", cifar10_tree)
    test = load_split(spec, "test", cifar10_tree)
    assert len(train) == 90 and len(val) == 10 and len(test) == 10
    assert np.bincount(val.labels).tolist() == [1] * 10  # stratified: one per class
    assert train.classes[0] == "airplane" and test.labels.tolist() == [(i + 5) % 10 for i in range(10)]
    assert test.ids[3] == "cifar10/test/000003"
    img, y = test[0]
    assert img.size == (32, 32) and img.mode == "RGB" and y == 5


def test_torchvision_missing_dataset_says_where_and_how(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"no data at .*svhn; rerun with --download"):
        load_split("svhn", "test", tmp_path)
    with pytest.raises(UserError, match=r"no data at .*domainnet.*ai\.bu\.edu"):
        load_split("domainnet-real-sketch", "test", tmp_path)


def test_hf_dataset_from_save_to_disk(colour_images, tmp_path: Path, write_yaml) -> None:
    import datasets

    feats = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["u", "v"]),
                               "domain": datasets.Value("string")})
    labels = np.array([0, 1, 0, 1, 1, 0])
    rows = {"image": [Image.fromarray(x) for x in colour_images(labels)], "label": labels.tolist(),
            "domain": ["real", "real", "real", "sketch", "sketch", "sketch"]}
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows, features=feats),
                               "validation": datasets.Dataset.from_dict(rows, features=feats)})
    dd.save_to_disk(str(tmp_path / "hfsub"))
    spec = get_task(write_yaml("hfds", {"version": 1, "reader": "hf", "num_classes": 2,
                                        "params": {"path": "someone/ds", "subdir": "hfsub",
                                                   "splits": {"val": "validation"},
                                                   "filter": {"domain": "sketch"}},
                                        "splits": ["train", "val"]}))
    split = load_split(spec, "val", tmp_path)
    assert split.classes == ["u", "v"] and split.labels.tolist() == [1, 1, 0]
    img, y = split[0]
    assert img.mode == "RGB" and y == 1
    with pytest.raises(UserError, match=r"no data at .*resisc45; rerun with --download"):
        load_split("resisc45", "train", tmp_path / "empty")
    with pytest.raises(UserError, match="could not download 'timm/resisc45'"):  # offline in tests
        load_split("resisc45", "train", tmp_path / "empty", download=True)
    assert not (tmp_path / "empty" / "resisc45").exists()  # nothing half-written


def test_tasks_cli_lists_suites(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="nmlbench")
    tasks_cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(["tasks", "list", "--suite", "mini"])
    assert args.func(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:7] == ["name", "key", "domain", "modality", "type", "classes", "version"]
    assert len(lines) == 19
    assert any("ood<-mini-objects" in line for line in lines)
    args = parser.parse_args(["tasks", "show", "imagenet-r"])
    assert args.func(args) == 0
    assert "class_mask: timm:imagenet_r_synsets" in capsys.readouterr().out


def test_builtin_defs_ship_inside_the_package() -> None:
    assert (Path(str(resources.files("nmlbench.tasks"))) / "defs" / "cifar10.yaml").is_file()
