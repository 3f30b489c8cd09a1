"""Spectrum metrics of a feature matrix: pure numpy on an (N, D) array, no torch.

Singular values come from the eigenvalues of the smaller Gram matrix (X^T X when N >= D), built
in float64 chunk by chunk: for N >> D this is one BLAS product plus a D x D eigensolve, far cheaper
than a full-rank TruncatedSVD and as accurate for every singular value above the noise floor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from nmlbench.errors import UserError

Centring = Literal["row", "column", "none"]
CENTRINGS: tuple[str, ...] = ("row", "column", "none")
DEFAULT_TOP_K: tuple[int, ...] = (1, 10, 100)
_CHUNK_ROWS = 8192  # rows converted to float64 at a time: bounds the extra memory to ~D * 64 KiB


@dataclass(frozen=True)
class SpectrumMetrics:
    """Scalar summaries of a singular-value spectrum (definitions in docs/spectrum.md)."""

    centring: str
    l2_normalise: bool
    n: int
    d: int
    rank: int
    sve: float  # -sum p_i log p_i with p = sigma / sum(sigma)
    lsvr_neglog: float  # -log(sigma_1 / sum(sigma)): our reading of LSVR (grows as sigma_1 loses share)
    lsvr_ratio: float  # sigma_1 / sum(sigma): the plain-ratio reading
    effective_rank: float  # exp(sve), Roy & Vetterli (2007)
    top_k_energy: dict[str, float] = field(default_factory=dict)  # sum_{i<=k} sigma^2 / sum sigma^2
    singular_values: tuple[float, ...] = ()

    def to_record(self, keep_values: bool = True) -> dict[str, Any]:
        """JSON-able dict matching leaderboard/schema/spectrum.v1.json."""
        rec = {k: getattr(self, k) for k in self.__dataclass_fields__}
        rec["top_k_energy"] = dict(self.top_k_energy)
        rec["singular_values"] = list(self.singular_values) if keep_values else []
        return rec


def preprocess(x: np.ndarray, centring: str = "row", l2_normalise: bool = True) -> np.ndarray:
    """L2-normalise rows (reference), then centre each row (`row`, reference) or column (`column`).

    Returns a float64 copy; the input is never modified.
    """
    if centring not in CENTRINGS:
        raise UserError(f"unknown centring {centring!r}; use one of {', '.join(CENTRINGS)}")
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise UserError(f"features must be a non-empty (N, D) matrix, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise UserError("features contain NaN or inf; check the model's outputs before computing a spectrum")
    if l2_normalise:
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = x / np.where(norms > 0, norms, 1.0)
    if centring == "row":
        x = x - x.mean(axis=1, keepdims=True)
    elif centring == "column":
        x = x - x.mean(axis=0, keepdims=True)
    return x


def _gram(x: np.ndarray, centring: str, l2_normalise: bool) -> np.ndarray:
    """The (D, D) Gram matrix of the preprocessed rows, in float64, in one pass over `x`.

    Centring is applied to the Gram matrix rather than to the data, which saves a pass over N x D:
    row centring is X P with P = I - 11^T / D, so G = P G0 P; column centring is G0 - N mu mu^T.
    """
    n, d = x.shape
    g = np.zeros((d, d), dtype=np.float64)
    col_sum = np.zeros(d, dtype=np.float64)
    for s in range(0, n, _CHUNK_ROWS):
        chunk = x[s : s + _CHUNK_ROWS]
        if l2_normalise:  # scale and widen to float64 in a single pass over the chunk
            norms = np.sqrt(np.einsum("ij,ij->i", chunk, chunk, dtype=np.float64))
            block = np.multiply(chunk, (1.0 / np.where(norms > 0, norms, 1.0))[:, None], dtype=np.float64)
        else:
            block = np.asarray(chunk, dtype=np.float64)  # (B, D)
        g += block.T @ block  # numpy routes A.T @ A to BLAS syrk
        if centring == "column":
            col_sum += block.sum(axis=0)
    if centring == "row":
        r = g.sum(axis=1) / d  # (D,): G0 1 / D
        g = g - r[:, None] - r[None, :] + r.sum() / d
    elif centring == "column":
        mu = col_sum / n
        g -= n * np.outer(mu, mu)
    return g


def singular_values(x: np.ndarray, centring: str = "row", l2_normalise: bool = True) -> np.ndarray:
    """All min(N, D) singular values of the preprocessed matrix, descending, float64."""
    if centring not in CENTRINGS:
        raise UserError(f"unknown centring {centring!r}; use one of {', '.join(CENTRINGS)}")
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise UserError(f"features must be a non-empty (N, D) matrix, got shape {x.shape}")
    n, d = x.shape
    if n >= d:
        g = _gram(x, centring, l2_normalise)
    else:  # wide matrix: the (N, N) Gram matrix has the same non-zero eigenvalues
        xp = preprocess(x, centring, l2_normalise)
        g = xp @ xp.T
    if not np.isfinite(g).all():
        raise UserError("features contain NaN or inf; check the model's outputs before computing a spectrum")
    eig = np.linalg.eigvalsh(g)[::-1]
    return np.sqrt(np.clip(eig, 0.0, None))


def spectrum_metrics(sigma: np.ndarray, top_k: Sequence[int] = DEFAULT_TOP_K) -> dict[str, Any]:
    """SVE, both LSVR readings, effective rank and top-k energy of descending singular values."""
    sigma = np.sort(np.asarray(sigma, dtype=np.float64))[::-1]
    total = float(sigma.sum())
    if total <= 0.0:
        raise UserError("all singular values are zero (constant features?); nothing to measure")
    p = sigma / total
    nz = p[p > 0]
    sve = float(-(nz * np.log(nz)).sum())
    energy = np.cumsum(sigma**2) / float((sigma**2).sum())
    # Values below this floor are rounding noise of the Gram route (error ~ sqrt(eps * size) * sigma_1).
    tol = sigma[0] * math.sqrt(np.finfo(np.float64).eps * max(len(sigma), 1)) * 10
    return {
        "rank": int((sigma > tol).sum()),
        "sve": sve,
        "lsvr_neglog": float(-math.log(p[0])),
        "lsvr_ratio": float(p[0]),
        "effective_rank": float(math.exp(sve)),
        "top_k_energy": {
            str(k): min(1.0, float(energy[min(k, len(energy)) - 1])) for k in sorted(set(top_k))
        },
    }


def analyse(
    x: np.ndarray,
    centring: str = "row",
    l2_normalise: bool = True,
    top_k: Sequence[int] = DEFAULT_TOP_K,
) -> SpectrumMetrics:
    """Preprocess `x` (N, D), take its singular values and summarise them."""
    if any(int(k) < 1 for k in top_k):
        raise UserError(f"top-k values must be >= 1, got {list(top_k)}")
    sigma = singular_values(x, centring, l2_normalise)
    m = spectrum_metrics(sigma, top_k)
    return SpectrumMetrics(
        centring=centring,
        l2_normalise=l2_normalise,
        n=int(x.shape[0]),
        d=int(x.shape[1]),
        singular_values=tuple(float(s) for s in sigma),
        **m,
    )
