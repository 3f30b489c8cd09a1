"""Caption noise kinds for image-text pairs: `caption_derangement` (ours) and `caption_pair_swap` (ref).

Both return, for every sample, the row whose caption it now carries (its *donor*).
"""

from __future__ import annotations

import numpy as np

from nmlbench.errors import UserError
from nmlbench.noise.base import NOISE, NoiseKind, NoiseResult, SampleTable, exact_count
from nmlbench.noise.label import check_corrupts_something


@NOISE.register("caption_derangement")
class CaptionDerangement(NoiseKind):
    """Exactly round(r*N) samples exchange captions among themselves; none keeps its own.

    The chosen samples are permuted at random and the permutation's fixed points are then moved
    (rotated among themselves, or one swapped into another cycle), so no chosen sample is its own
    donor and the corrupted count is exact.
    """

    target = "caption"
    short = "cap"

    def apply(self, table: SampleTable, rate: float, rng: np.random.Generator) -> NoiseResult:
        n = len(table)
        k = exact_count(rate, n)
        check_corrupts_something(rate, k, n)
        if k == 1:
            raise UserError(
                f"rate {rate:g} of {n} samples corrupts one caption, which has no other caption "
                "to take; use a rate giving 0 or at least 2 samples"
            )
        donors = np.arange(n, dtype=np.int64)
        if k == 0:
            return NoiseResult(donors=donors, selected=0, eligible=n)
        rows = rng.choice(n, size=k, replace=False)
        perm = rng.permutation(k)
        fixed = np.flatnonzero(perm == np.arange(k))
        if len(fixed) >= 2:
            perm[fixed] = np.roll(fixed, -1)  # a cycle through the fixed points has no fixed point
        elif len(fixed) == 1:  # swap its image with another element's: both stay non-fixed
            i = int(fixed[0])
            j = int(rng.integers(0, k - 1))
            j += j >= i
            perm[i], perm[j] = perm[j], i
        donors[rows] = rows[perm]
        return NoiseResult(donors=donors, selected=k, eligible=n)


def _apply_swaps(donors: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """Apply transpositions (a[t], b[t]) in order, vectorised over runs that touch disjoint rows.

    Swaps that share no row commute, so each maximal run of pairwise-disjoint swaps is applied at
    once; the sequential result is reproduced exactly, with no Python loop over samples.
    """
    # A run of disjoint random swaps lasts ~sqrt(N) draws (birthday bound): size blocks to match.
    block = int(min(8192, max(64, 4 * np.sqrt(len(donors)))))
    t, total = 0, len(a)
    while t < total:
        end = min(t + block, total)
        idx = np.stack([a[t:end], b[t:end]], axis=1).ravel()  # (2m,) rows in swap order
        _, first = np.unique(idx, return_index=True)
        seen_before = np.ones(len(idx), dtype=bool)
        seen_before[first] = False  # True where a row already appeared earlier in this block
        clash = np.flatnonzero(seen_before.reshape(-1, 2).any(axis=1))
        stop = t + int(clash[0]) if len(clash) else end  # clash[0] >= 1: a draw's two rows differ
        sa, sb = a[t:stop], b[t:stop]
        donors[sa], donors[sb] = donors[sb], donors[sa].copy()
        t = stop


@NOISE.register("caption_pair_swap")
class CaptionPairSwap(NoiseKind):
    """The reference convention, seeded: round(r*N) times, swap the captions of two random samples.

    Pairs are drawn with replacement across draws, so about 2r of samples end up corrupted and some
    swaps undo others; the realized rate is reported in the sidecar.
    """

    target = "caption"
    short = "capswap"

    def apply(self, table: SampleTable, rate: float, rng: np.random.Generator) -> NoiseResult:
        n = len(table)
        k = exact_count(rate, n)
        check_corrupts_something(rate, k, n)
        if n < 2 and k:
            raise UserError("pair_swap needs at least 2 samples")
        donors = np.arange(n, dtype=np.int64)
        a = rng.integers(0, n, size=k)
        b = rng.integers(0, n - 1, size=k)
        b += b >= a  # two distinct rows per draw, as random.sample(pool, 2) in the reference
        _apply_swaps(donors, a, b)
        return NoiseResult(donors=donors, selected=k, eligible=n, extra={"swaps": k})
