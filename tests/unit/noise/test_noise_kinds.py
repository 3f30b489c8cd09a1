"""Noise kinds: exact counts, no kept labels, no fixed points, group/confusion/subset targets, determinism."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import yaml

from nmlbench.errors import UserError
from nmlbench.noise import NOISE, resolve_kind
from nmlbench.noise.base import exact_count, make_table
from nmlbench.noise.caption import _apply_swaps


def table(n: int, c: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return make_table(
        [f"id{i:07d}" for i in rng.permutation(n)],
        labels=rng.integers(0, c, n),
        classes=[f"k{i}" for i in range(c)],
        caption_sha256=[f"{i:064x}" for i in range(n)],
    )


def run(kind: str, t, rate: float, seed: int = 0, **params):
    return NOISE.get(kind)(params).apply(t, rate, np.random.default_rng(seed))


@pytest.mark.parametrize(
    "n,c,rate",
    [
        (1000, 10, 0.1),
        (1000, 10, 0.3),
        (777, 2, 0.45),
        (5000, 1000, 0.05),
        (20000, 1000, 0.05),
        (333, 7, 0.0),
        (1001, 100, 0.025),
    ],
)
def test_symmetric_exact_count_and_no_kept_label(n: int, c: int, rate: float) -> None:
    t = table(n, c)
    r = run("symmetric_label", t, rate)
    flipped = r.noisy_labels != t.labels
    assert flipped.sum() == exact_count(rate, n) == r.selected
    assert ((r.noisy_labels >= 0) & (r.noisy_labels < c)).all()


def test_exact_count_rounds_half_up() -> None:
    assert exact_count(0.05, 20000) == 1000 and exact_count(0.5, 5) == 3 and exact_count(0.25, 10) == 3
    assert exact_count(0.1, 1281167) == 128117


def test_symmetric_is_uniform_over_other_classes() -> None:
    t = table(20000, 4)
    r = run("symmetric_label", t, 0.9)
    flipped = r.noisy_labels != t.labels
    offsets = (r.noisy_labels[flipped] - t.labels[flipped]) % 4
    counts = np.bincount(offsets, minlength=4)
    assert counts[0] == 0 and counts[1:].min() > 0.3 * flipped.sum()  # ~1/3 each


def test_include_true_class_keeps_some_labels() -> None:
    t = table(10000, 5)
    r = run("symmetric_label", t, 0.5, include_true_class=True)
    assert r.selected == 5000
    kept = 5000 - (r.noisy_labels != t.labels).sum()
    assert 800 < kept < 1200  # about 1/C of the chosen samples draw their own label


@pytest.mark.parametrize("c,rate", [(10, 0.2), (3, 0.4), (1000, 0.05)])
def test_pairflip_exact(c: int, rate: float) -> None:
    t = table(4000, c)
    r = run("pairflip_label", t, rate)
    flipped = r.noisy_labels != t.labels
    assert flipped.sum() == exact_count(rate, 4000)
    assert (r.noisy_labels[flipped] == (t.labels[flipped] + 1) % c).all()


def test_group_flips_within_group(tmp_path: Path) -> None:
    groups = {"a": ["k0", "k1", "k2"], "b": ["k3", "k4"], "c": ["k5"]}  # k5 alone: never eligible
    path = tmp_path / "groups.yaml"
    path.write_text(yaml.safe_dump(groups))
    t = table(6000, 6)
    for rate in (0.1, 0.35):
        r = run("group_label", t, rate, groups=str(path))
        flipped = r.noisy_labels != t.labels
        eligible = (t.labels != 5).sum()
        assert r.eligible == eligible and flipped.sum() == exact_count(rate, eligible)
        gid = np.array([0, 0, 0, 1, 1, 2])
        assert (gid[r.noisy_labels] == gid[t.labels]).all() and not flipped[t.labels == 5].any()
        assert set(np.unique(r.noisy_labels[flipped & (t.labels == 0)])) == {1, 2}


def test_group_csv_and_bad_group_files(tmp_path: Path) -> None:
    t = table(100, 4)
    good = tmp_path / "g.csv"
    good.write_text("class,group\nk0,x\nk1,x\n2,y\nk3,y\n")  # names or indices
    assert (run("group_label", t, 0.5, groups=str(good)).noisy_labels != t.labels).sum() == 50
    short = tmp_path / "short.csv"
    short.write_text("class,group\nk0,x\nk1,x\nk2,y\n")
    with pytest.raises(UserError, match="covers 3 of 4 classes"):
        run("group_label", t, 0.1, groups=str(short))
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("x: [k0, k1, nope]\ny: [k2, k3]\n")
    with pytest.raises(UserError, match="'nope' is neither a class name"):
        run("group_label", t, 0.1, groups=str(unknown))
    with pytest.raises(UserError, match="does not exist"):
        run("group_label", t, 0.1, groups=str(tmp_path / "missing.yaml"))


def test_confusion_goes_to_most_confused_class(tmp_path: Path) -> None:
    m = np.eye(4) * 50
    m[0, 2], m[1, 3], m[2, 0], m[2, 1] = 5, 9, 4, 4  # class 2 ties -> lowest index; class 3 has none
    path = tmp_path / "conf.npy"
    np.save(path, m)
    t = table(4000, 4)
    r = run("confusion_label", t, 0.2, confusion=str(path))
    flipped = r.noisy_labels != t.labels
    assert r.eligible == (t.labels != 3).sum() and flipped.sum() == exact_count(0.2, r.eligible)
    target = np.array([2, 3, 0, -1])
    assert (r.noisy_labels[flipped] == target[t.labels[flipped]]).all()
    csv = tmp_path / "conf.csv"
    np.savetxt(csv, m[:3, :3], delimiter=",")
    with pytest.raises(UserError, match=r"shape \(3, 3\) but the source has 4 classes"):
        run("confusion_label", t, 0.2, confusion=str(csv))


@pytest.mark.parametrize("within", [False, True])
def test_subset_only_touches_subset(within: bool) -> None:
    t = table(5000, 10)
    r = run("subset_label", t, 0.3, classes=("k1", "k2", "7"), within_subset=within)
    flipped = r.noisy_labels != t.labels
    in_sub = np.isin(t.labels, [1, 2, 7])
    assert r.eligible == in_sub.sum() and flipped.sum() == exact_count(0.3, in_sub.sum())
    assert not flipped[~in_sub].any()
    if within:
        assert np.isin(r.noisy_labels[flipped], [1, 2, 7]).all()
    else:
        assert not np.isin(r.noisy_labels[flipped], [1, 2, 7]).all()


@pytest.mark.parametrize("n,rate", [(1000, 0.1), (1000, 0.002), (5, 0.4), (10007, 0.5), (300, 0.99)])
def test_derangement_exact_and_no_fixed_point(n: int, rate: float) -> None:
    t = table(n, 3)
    for seed in range(5):
        r = run("caption_derangement", t, rate, seed=seed)
        moved = r.donors != np.arange(n)
        assert moved.sum() == exact_count(rate, n)
        assert np.array_equal(np.sort(r.donors[moved]), np.flatnonzero(moved))  # a permutation of the chosen


def test_derangement_of_one_sample_is_refused() -> None:
    with pytest.raises(UserError, match="corrupts one caption"):
        run("caption_derangement", table(10, 2), 0.1)


def test_pair_swap_matches_reference_loop() -> None:
    """Vectorised swaps give exactly what the reference's sequential loop gives for the same draws."""
    for n, k in [(2, 5), (50, 200), (5000, 2500)]:
        rng = np.random.default_rng(n)
        a = rng.integers(0, n, k)
        b = rng.integers(0, n - 1, k)
        b += b >= a
        fast, slow = np.arange(n), list(range(n))
        _apply_swaps(fast, a, b)
        for x, y in zip(a.tolist(), b.tolist(), strict=True):
            slow[x], slow[y] = slow[y], slow[x]
        assert fast.tolist() == slow


def test_pair_swap_realized_rate_near_twice_nominal() -> None:
    t = table(20000, 2)
    r = run("caption_pair_swap", t, 0.05)
    realized = (r.donors != np.arange(20000)).mean()
    assert r.extra["swaps"] == 1000 and 0.08 < realized <= 0.1
    assert sorted(r.donors.tolist()) == list(range(20000))  # a permutation: captions are only exchanged


@pytest.mark.parametrize(
    "kind", ["symmetric_label", "pairflip_label", "caption_derangement", "caption_pair_swap"]
)
def test_same_seed_same_noise(kind: str) -> None:
    t = table(2000, 10)
    a, b, c = (run(kind, t, 0.2, seed=s) for s in (1, 1, 2))
    key = "noisy_labels" if kind.endswith("label") else "donors"
    assert np.array_equal(getattr(a, key), getattr(b, key)) and not np.array_equal(
        getattr(a, key), getattr(c, key)
    )


def test_kind_aliases_and_unknown_kinds() -> None:
    assert resolve_kind("sym") == "symmetric_label" and resolve_kind("asym") == "pairflip_label"
    assert resolve_kind("asym", "group") == "group_label" and resolve_kind("caption") == "caption_derangement"
    assert resolve_kind("caption", "pair_swap") == "caption_pair_swap"
    with pytest.raises(UserError, match="did you mean 'symmetric_label'"):
        resolve_kind("symetric_label")
    with pytest.raises(UserError, match="unknown asym variant 'grup'"):
        resolve_kind("asym", "grup")
    with pytest.raises(UserError, match="unknown key.*include_true_clas"):
        NOISE.get("symmetric_label")({"include_true_clas": True})


def test_bad_tables() -> None:
    with pytest.raises(UserError, match="no samples"):
        make_table([], labels=[], classes=["a"])
    with pytest.raises(UserError, match="2 duplicate sample id"):
        make_table(["a", "b", "a", "b"], labels=[0, 0, 0, 0], classes=["x"])
    with pytest.raises(UserError, match="label 5 .* outside 0..2"):
        make_table(["a", "b"], labels=[0, 5], classes=["x", "y", "z"])
    with pytest.raises(UserError, match="label -1"):
        make_table(["a", "b"], labels=[-1, 0], classes=["x", "y"])


def test_sorting_makes_order_irrelevant() -> None:
    ids = [f"s{i}" for i in range(100)]
    labels = np.arange(100) % 4
    perm = random.Random(0).sample(range(100), 100)
    t1 = make_table(ids, labels=labels, classes=list("abcd"))
    t2 = make_table([ids[i] for i in perm], labels=labels[perm], classes=list("abcd"))
    assert t1.ids.equals(t2.ids) and np.array_equal(t1.labels, t2.labels)
    assert np.array_equal(
        run("symmetric_label", t1, 0.3).noisy_labels, run("symmetric_label", t2, 0.3).noisy_labels
    )
