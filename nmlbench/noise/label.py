"""Label noise kinds: symmetric, and the asymmetric pairflip / group / confusion / subset.

Every kind picks exactly round(r * N_eligible) samples uniformly without replacement and changes
their label; all work is vectorised numpy (1.28 M labels in well under a second). A rate > 0 that
would corrupt nothing (no eligible sample, or too few for the rate) is an error naming why, never
a manifest that silently carries no noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from nmlbench.config import bounded
from nmlbench.errors import UserError
from nmlbench.io import sha256_file
from nmlbench.noise.base import NOISE, NoiseKind, NoiseResult, SampleTable, exact_count


def _select(eligible: np.ndarray, rate: float, rng: np.random.Generator, why_none: str = "") -> np.ndarray:
    """Exactly round(rate * len(eligible)) rows of `eligible`, uniformly without replacement.

    Args:
        why_none: why a sample may not be eligible, for the error when none is.
    """
    k = exact_count(rate, len(eligible))
    check_corrupts_something(rate, k, len(eligible), why_none)
    return eligible[rng.choice(len(eligible), size=k, replace=False)] if k else eligible[:0]


def check_corrupts_something(rate: float, k: int, n_eligible: int, why_none: str = "") -> None:
    """UserError when a rate > 0 would corrupt no sample: none is eligible, or round(r*N) is 0."""
    if rate <= 0 or k > 0:
        return
    if n_eligible == 0:
        raise UserError(f"no sample is eligible, so nothing would be corrupted: {why_none}")
    raise UserError(
        f"rate {rate:g} of {n_eligible} eligible samples rounds to 0 corrupted samples; "
        f"use a rate of at least {0.5 / n_eligible:.3g} or more data"
    )


def _result(table: SampleTable, rows: np.ndarray, new: np.ndarray, eligible: int) -> NoiseResult:
    noisy = table.labels.copy()
    noisy[rows] = new
    return NoiseResult(noisy_labels=noisy, selected=len(rows), eligible=eligible)


@NOISE.register("symmetric_label")
class SymmetricLabel(NoiseKind):
    """Each chosen sample gets a label drawn uniformly from the C-1 *other* classes.

    `include_true_class: true` draws from all C classes, as the reference code's helpers do, so
    about 1/C of the chosen samples keep their label (effective rate r*(C-1)/C).
    """

    target = "label"
    short = "sym"

    @dataclass(frozen=True)
    class Params:
        include_true_class: bool = False  # true reproduces the reference's r*(C-1)/C convention

    def apply(self, table: SampleTable, rate: float, rng: np.random.Generator) -> NoiseResult:
        c = table.num_classes
        if c < 2:
            raise UserError(f"symmetric label noise needs at least 2 classes, the source has {c}")
        rows = _select(np.arange(len(table)), rate, rng)
        if self.params.include_true_class:
            new = rng.integers(0, c, size=len(rows))
        else:  # a uniform non-zero offset mod C is a uniform draw over the other C-1 classes
            new = (table.labels[rows] + rng.integers(1, c, size=len(rows))) % c
        return _result(table, rows, new, len(table))


@NOISE.register("pairflip_label")
class PairflipLabel(NoiseKind):
    """Class c flips to c+1 mod C (the classic asymmetric 'pair flip')."""

    target = "label"
    short = "pairflip"

    @dataclass(frozen=True)
    class Params:
        offset: int = bounded(1)  # c -> (c + offset) mod C

    def apply(self, table: SampleTable, rate: float, rng: np.random.Generator) -> NoiseResult:
        c = table.num_classes
        if c < 2 or self.params.offset % c == 0:
            raise UserError(f"pairflip needs >= 2 classes and an offset that is not a multiple of {c}")
        rows = _select(np.arange(len(table)), rate, rng)
        return _result(table, rows, (table.labels[rows] + self.params.offset) % c, len(table))


def _read_class_file(path: str, what: str) -> Path:
    p = Path(path).expanduser()
    if not path:
        raise UserError(f"{what} noise needs a file; pass --{what} FILE")
    if not p.is_file():
        raise UserError(f"{what} file {p} does not exist; pass an existing file with --{what}")
    return p


def _class_index(value: Any, classes: tuple[str, ...], where: str) -> int:
    """A class given by name, or by index when it is an integer (or an all-digit non-name string)."""
    s = str(value).strip()
    if s in classes:
        return classes.index(s)
    if s.lstrip("-").isdigit() and 0 <= int(s) < len(classes):
        return int(s)
    raise UserError(
        f"{where}: class {s!r} is neither a class name nor an index in 0..{len(classes) - 1}; "
        "fix the file or the --classes list"
    )


def load_groups(path: Path, classes: tuple[str, ...]) -> np.ndarray:
    """Group id per class from YAML/JSON ({group: [classes]}) or CSV/TSV (columns class, group)."""
    if path.suffix.lower() in (".csv", ".tsv", ".txt"):
        sep = "\t" if path.suffix.lower() == ".tsv" else ","
        df = pd.read_csv(path, sep=sep, dtype=str)
        if not {"class", "group"} <= set(df.columns):
            raise UserError(f"group file {path} needs columns 'class' and 'group', has {list(df.columns)}")
        pairs = list(zip(df["class"], df["group"], strict=True))
    else:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise UserError(f"group file {path} must map each group name to a list of classes")
        pairs = [(m, g) for g, members in data.items() for m in (members or [])]
    group_of = np.full(len(classes), -1, dtype=np.int64)
    names = {g: i for i, g in enumerate(sorted({str(g) for _, g in pairs}))}
    for member, g in pairs:  # loops over classes (<= ~22k), never over samples
        ci = _class_index(member, classes, f"group file {path}")
        if group_of[ci] >= 0:
            raise UserError(f"group file {path} puts class {classes[ci]!r} in two groups; list it once")
        group_of[ci] = names[str(g)]
    missing = np.flatnonzero(group_of < 0)
    if len(missing):
        raise UserError(
            f"group file {path} covers {len(classes) - len(missing)} of {len(classes)} classes "
            f"(missing e.g. {classes[missing[0]]!r}); it must assign every class to a group"
        )
    return group_of


@NOISE.register("group_label")
class GroupLabel(NoiseKind):
    """A chosen sample flips to another class of its group (e.g. CIFAR-100 superclass, WordNet parent).

    Samples whose group has a single class cannot flip and are not eligible.
    """

    target = "label"
    short = "group"

    @dataclass(frozen=True)
    class Params:
        groups: str = ""  # YAML/JSON {group: [class, ...]} or CSV/TSV with columns class,group

    def resolved_params(self) -> dict[str, Any]:
        path = _read_class_file(self.params.groups, "groups")
        return {"groups": str(self.params.groups), "groups_sha256": sha256_file(path)}

    def apply(self, table: SampleTable, rate: float, rng: np.random.Generator) -> NoiseResult:
        group_of = load_groups(_read_class_file(self.params.groups, "groups"), table.classes)
        order = np.argsort(group_of, kind="stable")  # classes laid out group by group
        sizes = np.bincount(group_of)
        start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        pos_in_group = np.empty(len(group_of), dtype=np.int64)
        pos_in_group[order] = np.arange(len(group_of)) - start[group_of[order]]
        g = group_of[table.labels]
        why = f"every class present in the data is alone in its group in {self.params.groups}"
        rows = _select(
            np.flatnonzero(sizes[g] >= 2), rate, rng, why + "; put classes that can swap in one group"
        )
        gs = g[rows]
        shift = rng.integers(1, np.maximum(sizes[gs], 2))  # uniform over the other members
        new = order[start[gs] + (pos_in_group[table.labels[rows]] + shift) % sizes[gs]]
        return _result(table, rows, new, int((sizes[g] >= 2).sum()))


def load_confusion(path: Path, num_classes: int) -> np.ndarray:
    """A C x C confusion matrix (rows: true class) from .npy, or CSV/TSV/TXT of numbers."""
    try:
        m = (
            np.load(path)
            if path.suffix.lower() == ".npy"
            else np.loadtxt(path, delimiter="\t" if path.suffix.lower() == ".tsv" else ",", ndmin=2)
        )
    except ValueError as e:
        raise UserError(
            f"confusion file {path} is not a numeric matrix ({e}); write C rows of C numbers"
        ) from None
    if m.shape != (num_classes, num_classes):
        raise UserError(
            f"confusion matrix {path} has shape {m.shape} but the source has {num_classes} "
            f"classes; pass a {num_classes}x{num_classes} matrix"
        )
    if not np.isfinite(m).all() or (m < 0).any():
        raise UserError(f"confusion matrix {path} has negative or non-finite entries; use counts or rates")
    return m.astype(np.float64)


@NOISE.register("confusion_label")
class ConfusionLabel(NoiseKind):
    """A chosen sample flips to the class a reference model confuses its class with most.

    Ties go to the lowest class index; classes whose row has no off-diagonal mass are not eligible.
    """

    target = "label"
    short = "confusion"

    @dataclass(frozen=True)
    class Params:
        confusion: str = ""  # .npy or CSV/TSV: C x C, rows = true class, columns = predicted class

    def resolved_params(self) -> dict[str, Any]:
        path = _read_class_file(self.params.confusion, "confusion")
        return {"confusion": str(self.params.confusion), "confusion_sha256": sha256_file(path)}

    def apply(self, table: SampleTable, rate: float, rng: np.random.Generator) -> NoiseResult:
        m = load_confusion(_read_class_file(self.params.confusion, "confusion"), table.num_classes)
        np.fill_diagonal(m, -np.inf)
        target = np.argmax(m, axis=1)
        ok = m[np.arange(len(m)), target] > 0
        eligible = np.flatnonzero(ok[table.labels])
        why = (
            f"no class present in the data has an off-diagonal entry > 0 in {self.params.confusion}; "
            "give the matrix some confusions"
        )
        rows = _select(eligible, rate, rng, why)
        return _result(table, rows, target[table.labels[rows]], len(eligible))


@NOISE.register("subset_label")
class SubsetLabel(NoiseKind):
    """Noise only on samples of the given classes (the paper's 'corrupt only related classes').

    A chosen sample gets a label drawn uniformly from the other C-1 classes, or from the other
    subset classes with `within_subset: true`.
    """

    target = "label"
    short = "subset"

    @dataclass(frozen=True)
    class Params:
        classes: tuple[str, ...] = ()  # class names or indices that receive noise
        within_subset: bool = False  # true: new labels stay inside the subset

    def apply(self, table: SampleTable, rate: float, rng: np.random.Generator) -> NoiseResult:
        if not self.params.classes:
            raise UserError("subset noise needs classes; pass --classes NAME,NAME,... (names or indices)")
        sub = np.unique([_class_index(v, table.classes, "--classes") for v in self.params.classes])
        c = table.num_classes
        pool = sub if self.params.within_subset else np.arange(c)
        if len(pool) < 2:
            raise UserError("subset noise needs at least 2 classes to flip between; list more classes")
        in_sub = np.isin(table.labels, sub)
        names = ", ".join(table.classes[i] for i in sub[:5]) + (", ..." if len(sub) > 5 else "")
        why = f"no sample has a class in the subset [{names}]; list classes that occur in the data"
        rows = _select(np.flatnonzero(in_sub), rate, rng, why)
        rank = np.full(c, -1, dtype=np.int64)
        rank[pool] = np.arange(len(pool))
        true_rank = rank[table.labels[rows]]  # position of the true class in the pool (always inside)
        new = pool[(true_rank + rng.integers(1, len(pool), size=len(rows))) % len(pool)]
        return _result(table, rows, new, int(in_sub.sum()))
