"""The noise-kind contract: the `NOISE` registry, `NoiseConfig`, the sample table, exact counts.

A *kind* is code (a registered class: how labels or captions are corrupted); a *recipe* is data
(a YAML file in noise_recipes/ naming a kind, a rate, a seed and the kind's parameters).
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from nmlbench.config import bounded, from_mapping, rate_field, seed_field
from nmlbench.errors import UserError
from nmlbench.registry import Registry

# Bump when the same inputs and seed would give a different manifest (recorded in every sidecar).
GENERATOR_VERSION = 1

NOISE: Registry[type[NoiseKind]] = Registry("noise kind")

# Short names accepted wherever a kind is named ("sym", "asym", "caption") and their variants.
KIND_ALIASES: dict[str, dict[str, str]] = {
    "sym": {"": "symmetric_label"},
    "asym": {
        "": "pairflip_label",
        "pairflip": "pairflip_label",
        "group": "group_label",
        "confusion": "confusion_label",
        "subset": "subset_label",
    },
    "caption": {
        "": "caption_derangement",
        "derangement": "caption_derangement",
        "pair_swap": "caption_pair_swap",
    },
}


@dataclass(frozen=True)
class NoiseConfig:
    """One noise run: a kind, its parameters, the rate and the seed (a recipe file holds the same)."""

    kind: str  # a key of NOISE, e.g. "symmetric_label"
    rate: float = rate_field()  # fraction of eligible samples corrupted, in [0, 1)
    seed: int = seed_field(0)  # the manifest is a pure function of (source, kind, params, rate, seed)
    params: dict[str, Any] = field(default_factory=dict)  # the kind's own options (see its Params)
    name: str | None = None  # recipe name used in the output directory; derived from kind+rate if None
    version: int = bounded(1, ge=1)  # recipe version: bump when a recipe's meaning changes
    changelog: str = ""  # one line: what changed in this version

    def __post_init__(self) -> None:
        if not isinstance(self.rate, (int, float)) or not 0.0 <= self.rate < 1.0:
            raise ValueError(f"noise rate must be in [0, 1), got {self.rate!r}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")


def exact_count(rate: float, n: int) -> int:
    """round(rate * n), halves rounded up (Python's round() would round 2.5 to 2)."""
    return int(math.floor(rate * n + 0.5 + 1e-9))


def resolve_kind(kind: str, variant: str | None = None) -> str:
    """'sym' / 'asym' + variant / 'caption' + variant / a full kind name -> a registered kind name."""
    if kind in KIND_ALIASES:
        variants = KIND_ALIASES[kind]
        if (variant or "") not in variants:
            known = ", ".join(v for v in variants if v)
            raise UserError(f"unknown {kind} variant {variant!r}; choose one of: {known}")
        return variants[variant or ""]
    if variant:
        raise UserError(f"a variant ({variant!r}) only applies to 'asym' or 'caption', not {kind!r}")
    if kind not in NOISE:
        raise UserError(NOISE.unknown_message(kind) + ", sym, asym, caption")
    return kind


@dataclass(frozen=True)
class SampleTable:
    """What noise is applied to: unique ids sorted ascending, with clean labels and/or caption hashes.

    Built with `make_table`, which validates and sorts, so two tables of the same data are equal
    whatever order the source listed the samples in.
    """

    ids: pa.Array  # large_string (N,), sorted, unique
    labels: np.ndarray | None = None  # int64 (N,) in [0, len(classes))
    classes: tuple[str, ...] | None = None
    caption_sha256: pa.Array | None = None  # string (N,), hex sha256 of each caption's UTF-8 text

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def num_classes(self) -> int:
        return len(self.classes or ())


def make_table(
    ids: Any, labels: Any = None, classes: Any = None, caption_sha256: Any = None, where: str = "source"
) -> SampleTable:
    """Validate (non-empty, unique ids, labels in range) and sort by id; raise UserError otherwise."""
    ids = _as_array(ids, pa.large_string())
    if len(ids) == 0:
        raise UserError(f"{where} has no samples; point it at a non-empty dataset")
    if ids.null_count:
        raise UserError(f"{where} has {ids.null_count} samples without an id; fill the id column")
    order = None
    if len(ids) > 1 and not pc.all(pc.less(ids[:-1], ids[1:])).as_py():  # strictly increasing: done
        order = pc.sort_indices(ids)
        ids = ids.take(order)
        dup = pc.equal(ids[1:], ids[:-1])
        if pc.any(dup).as_py():
            first = ids[int(pc.index(dup, True).as_py())].as_py()
            raise UserError(
                f"{where} has {pc.sum(dup).as_py()} duplicate sample id(s), e.g. {first!r}; "
                "ids must be unique"
            )
    for what, col in (("labels", labels), ("caption hashes", caption_sha256)):
        if col is not None and len(col) != len(ids):
            raise UserError(f"{where}: {len(col)} {what} for {len(ids)} ids; every sample needs one")
    if labels is not None:
        labels = _check_labels(np.asarray(labels), classes, where)
        labels = labels if order is None else labels[order.to_numpy()]
        classes = tuple(str(c) for c in classes)
    if caption_sha256 is not None:
        caption_sha256 = _as_array(caption_sha256, pa.string())
        caption_sha256 = caption_sha256 if order is None else caption_sha256.take(order)
    return SampleTable(ids=ids, labels=labels, classes=classes, caption_sha256=caption_sha256)


def _as_array(values: Any, type_: pa.DataType) -> pa.Array:
    """One contiguous pyarrow array of `type_` from a list, numpy array, Array or ChunkedArray."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not isinstance(values, pa.Array):
        values = pa.array(np.asarray(values, dtype=object) if isinstance(values, np.ndarray) else values)
    return values.cast(type_)


def _check_labels(labels: np.ndarray, classes: Any, where: str) -> np.ndarray:
    if classes is None:
        raise UserError(f"{where}: labels need class names; this is a bug in the reader")
    if labels.dtype.kind not in "iu":
        raise UserError(f"{where}: labels must be integers, got dtype {labels.dtype}")
    labels = labels.astype(np.int64, copy=False)
    bad = (labels < 0) | (labels >= len(classes))
    if bad.any():
        i = int(np.argmax(bad))
        raise UserError(
            f"{where}: label {labels[i]} (sample #{i}) is outside 0..{len(classes) - 1} "
            f"for {len(classes)} classes; fix the label or the class count"
        )
    return labels


@dataclass(frozen=True)
class NoiseResult:
    """What a kind returns: per-sample targets as indices into the sorted table."""

    noisy_labels: np.ndarray | None = None  # int64 (N,) label kinds
    donors: np.ndarray | None = None  # int64 (N,) caption kinds: row whose caption each row now carries
    selected: int = 0  # samples the kind chose to corrupt (may exceed the realized count)
    eligible: int = 0  # samples the rate applies to
    extra: dict[str, Any] = field(default_factory=dict)  # kind-specific figures for the sidecar


class NoiseKind(ABC):
    """A registered way to corrupt a sample table. Subclasses declare `Params`, a frozen dataclass."""

    target: ClassVar[str]  # "label" or "caption"
    short: ClassVar[str]  # prefix of derived recipe names: "sym" -> "sym10"
    version: ClassVar[int] = 1  # bump when the same inputs would give different output

    @dataclass(frozen=True)
    class Params:
        pass

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = from_mapping(self.Params, params, f"noise kind {type(self).__name__} params")

    def resolved_params(self) -> dict[str, Any]:
        """Parameters as recorded in the sidecar (files replaced by their content hash where relevant)."""
        return dataclasses.asdict(self.params)

    def is_default(self) -> bool:
        return self.params == self.Params()

    def check(self, table: SampleTable) -> None:
        """Raise UserError if this kind cannot apply to `table`."""
        if self.target == "label" and table.labels is None:
            raise UserError(
                f"{type(self).__name__} needs class labels but the source has none; "
                "use --type caption or a source with labels"
            )
        if self.target == "caption" and table.caption_sha256 is None:
            raise UserError(
                f"{type(self).__name__} needs captions but the source has none; "
                "use --type sym/asym or a source with captions"
            )

    @abstractmethod
    def apply(self, table: SampleTable, rate: float, rng: np.random.Generator) -> NoiseResult:
        """Corrupt exactly round(rate * eligible) samples of `table`."""
