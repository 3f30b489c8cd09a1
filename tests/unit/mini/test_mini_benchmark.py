"""The built-in mini benchmark: sizes, determinism, captions, label spaces, learnability, cache, CLI."""
from __future__ import annotations

import argparse

import numpy as np
import pytest
from PIL import Image

from nmlbench.errors import UserError
from nmlbench.mini import MINI_VERSION, load_generated, load_upstream, mini_dir
from nmlbench.mini import cli as mini_cli
from nmlbench.mini import data as D
from nmlbench.mini import generators as G
from nmlbench.mini import render as R
from nmlbench.tasks import get_suite, get_task, load_split


def test_upstream_is_imagenet_shaped_in_miniature() -> None:
    up = load_upstream()
    assert len(up) >= 20_000 and len(up.classes) >= 100
    assert up.images.shape == (len(up), 32, 32, 3) and up.images.dtype == np.uint8
    assert up.labels.dtype == np.int64 and set(np.unique(up.labels)) == set(range(len(up.classes)))
    assert len(np.unique(up.ids)) == len(up) and up.ids[0].startswith("up/c")
    assert len(up.captions) == len(up)
    assert up.images.std() > 20  # not blank


def test_upstream_cache_equals_fresh_generation() -> None:
    up = load_upstream()
    n = D.UPSTREAM_CHUNK
    images, captions = G.upstream(D._rng(0, "upstream", 0), up.labels[:n])
    assert np.array_equal(images, up.images[:n]) and np.array_equal(captions, up.captions[:n])


def test_captions_mention_the_label_attributes() -> None:
    up = load_upstream()
    for cap, y in zip(up.captions[:3000], up.labels[:3000], strict=True):
        colour, shape = up.classes[y].split(" ")
        assert f" {colour} " in cap and f" {shape} " in cap, (cap, up.classes[y])
    assert len(set(up.captions[:3000])) > 2500  # captions describe more than the label


@pytest.mark.parametrize("name,domain", [("objects", "real"), ("objects", "sketch"), ("glyphs", "real"),
                                         ("satellite", "real"), ("count", "real")])
def test_same_seed_same_arrays_other_seed_differs(name: str, domain: str) -> None:
    a, b = D.generate_task(name, domain, seed=0), D.generate_task(name, domain, seed=0)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    c = D.generate_task(name, domain, seed=1)
    assert not np.array_equal(a["train_images"], c["train_images"])
    assert not np.array_equal(a["train_images"][:50], a["test_images"][:50])  # splits are distinct draws


def test_every_mini_task_has_its_sizes_and_classes() -> None:
    suite = get_suite("mini")
    assert len(suite.id_tasks) == 14 and len(suite.ood_tasks) == 4
    for name in suite.tasks:
        spec = get_task(name)
        for split in spec.split_names:
            s = load_split(spec, split)
            assert len(s) == D.SPLIT_SIZES[split]
            assert len(s.classes) == spec.num_classes and s.images.shape == (len(s), 32, 32, 3)
            assert len(np.unique(s.ids)) == len(s)
            if split == "train":
                assert np.bincount(s.labels, minlength=spec.num_classes).min() > 0
        assert spec.split_names == (("train", "val", "test") if spec.domain == "id" else ("test",))


def test_ood_tasks_share_the_label_space_of_their_train_task() -> None:
    suite = get_suite("mini")
    for name in suite.ood_tasks:
        spec = get_task(name)
        assert spec.train_task in suite.id_tasks
        ood, train = load_split(spec, "test"), load_split(spec.train_task, "train")
        assert ood.classes == train.classes
        assert not np.array_equal(ood.images, load_split(spec.train_task, "test").images)  # shifted rendering


def _probe_accuracy(name: str) -> tuple[float, float]:
    """Ridge-regression linear probe on standardised raw pixels; penalty picked on val."""
    tr, va, te = (load_split(name, s) for s in ("train", "val", "test"))
    flat = [s.images.reshape(len(s), -1).astype(np.float64) / 255 for s in (tr, va, te)]
    mu, sd = flat[0].mean(0), flat[0].std(0) + 1e-3
    x, xv, xt = ((f - mu) / sd for f in flat)
    y = np.eye(len(tr.classes))[tr.labels]
    gram = x @ x.T
    best = (-1.0, 0.0)
    for lam in (1e1, 1e2, 1e3, 1e4):
        alpha = np.linalg.solve(gram + lam * np.eye(len(x)), y)
        val = float(((xv @ x.T @ alpha).argmax(1) == va.labels).mean())
        test = float(((xt @ x.T @ alpha).argmax(1) == te.labels).mean())
        best = max(best, (val, test))
    return best[1], 1.0 / len(tr.classes)


@pytest.mark.parametrize("name", get_suite("mini").id_tasks)
def test_linear_probe_on_raw_pixels_is_above_chance(name: str) -> None:
    acc, chance = _probe_accuracy(name)
    n = D.SPLIT_SIZES["test"]
    # One-sided binomial test at p < 0.01 (normal approximation): the task is learnable from pixels.
    assert acc > chance + 2.33 * np.sqrt(chance * (1 - chance) / n), (name, acc, chance)


def test_renderer_draws_every_shape_distinctly() -> None:
    n = len(R.SHAPES) + len(R.EXTRA_SHAPES)
    obj = R.Objects(shape=np.arange(n), cx=np.full(n, 16.0), cy=np.full(n, 16.0), radius=np.full(n, 10.0),
                    angle=np.zeros(n), colour=np.ones((n, 3)), texture=np.zeros(n, int),
                    present=np.ones(n, bool))
    masks = R.coverage(R.shape_sdf(obj, *R.local_coords(obj)))
    area = masks.sum(axis=(1, 2))
    assert (area > 30).all() and (area < 32 * 32 * 0.8).all()
    flat = masks.reshape(n, -1)
    diff = np.abs(flat[:, None] - flat[None]).sum(-1) + np.eye(n) * 1e9
    assert diff.min() > 10  # no two shapes render the same mask


def test_blur_keeps_the_mean_and_smooths() -> None:
    rng = np.random.default_rng(0)
    img = rng.random((2, 32, 32, 3)).astype(np.float32)
    out = R.blur(img, 1.1)
    assert abs(out.mean() - img.mean()) < 1e-2 and out.std() < img.std() / 2


def test_cache_is_reused_and_a_corrupt_file_is_regenerated(monkeypatch: pytest.MonkeyPatch) -> None:
    images, _ = load_generated("colours", "real", "val")
    path = mini_dir() / "tasks" / "colours-real.npz"
    assert path.is_file() and path.parent.parent.name == "seed0"
    assert path.parent.parent.parent.name == f"mini-v{MINI_VERSION}"
    path.write_bytes(b"not an npz")
    again, _ = load_generated("colours", "real", "val")
    assert np.array_equal(images, again)

    def boom(*a: object, **k: object) -> None:
        raise AssertionError("regenerated although cached")

    monkeypatch.setattr(D, "generate_task", boom)
    load_generated("colours", "real", "val")


def test_bad_generator_domain_and_split_are_user_errors() -> None:
    with pytest.raises(UserError, match="did you mean 'colours'"):
        D.generate_task("colors", "real")
    with pytest.raises(UserError, match="no 'sketch' rendering"):
        D.generate_task("glyphs", "sketch")
    with pytest.raises(UserError, match="splits"):
        load_generated("colours", "real", "dev")


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="nmlbench")
    mini_cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(list(argv))
    return args.func(args)


def test_cli_build_info_show(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli("mini", "build") == 0
    out = capsys.readouterr().out
    assert "upstream: 20000 images, 100 classes" in out and "objects-painting" in out
    assert (mini_dir() / "info.json").is_file()
    assert _cli("mini", "info") == 0
    assert "built" in capsys.readouterr().out
    png = tmp_path / "grid.png"
    assert _cli("mini", "show", "--out", str(png), "--per-row", "4") == 0
    with Image.open(png) as im:
        assert im.size[1] == 19 * (32 * 2 + 4)  # upstream + 18 task rows
    with pytest.raises(UserError):
        _cli("mini", "show", "--out", str(png), "--per-row", "0")
