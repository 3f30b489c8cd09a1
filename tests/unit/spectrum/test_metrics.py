"""Spectrum metrics against a direct numpy SVD, both centrings, and the metric definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nmlbench.errors import UserError
from nmlbench.spectrum.metrics import analyse, preprocess, singular_values, spectrum_metrics


@pytest.mark.parametrize("shape", [(300, 24), (57, 57), (12, 40)])
@pytest.mark.parametrize("centring", ["row", "column", "none"])
@pytest.mark.parametrize("l2", [True, False])
def test_singular_values_match_numpy_svd(shape: tuple[int, int], centring: str, l2: bool) -> None:
    rng = np.random.default_rng(sum(shape))
    x = (rng.normal(size=shape) * np.linspace(3, 0.1, shape[1]) + 0.7).astype(np.float32)  # a common mean
    ref = np.linalg.svd(preprocess(x, centring, l2), compute_uv=False)
    got = singular_values(x, centring, l2)
    assert got.shape == (min(shape),)
    assert np.all(np.diff(got) <= 0)
    big = ref > ref[0] * 1e-6  # below this the Gram route only resolves sqrt(eps)-sized values
    np.testing.assert_allclose(got[big], ref[big], rtol=1e-9)
    np.testing.assert_allclose(got[~big], ref[~big], atol=ref[0] * 1e-6)


def test_chunking_does_not_change_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    import nmlbench.spectrum.metrics as m

    x = np.random.default_rng(1).normal(size=(1000, 16))
    whole = singular_values(x, "column")
    monkeypatch.setattr(m, "_CHUNK_ROWS", 7)
    np.testing.assert_allclose(singular_values(x, "column"), whole, rtol=1e-12)


def test_row_and_column_centring_differ_as_defined() -> None:
    x = np.random.default_rng(2).normal(size=(50, 6)) + np.arange(6)  # per-feature offsets
    row, col = preprocess(x, "row"), preprocess(x, "column")
    np.testing.assert_allclose(row.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(col.mean(axis=0), 0, atol=1e-12)
    assert analyse(x, "row").rank == 5  # removing each row's mean drops one direction
    assert not np.allclose(singular_values(x, "row"), singular_values(x, "column"))


def test_metric_definitions_on_a_known_spectrum() -> None:
    sigma = np.array([4.0, 2.0, 1.0, 1.0])
    m = spectrum_metrics(sigma, top_k=(1, 2, 10))
    p = sigma / 8.0
    assert m["sve"] == pytest.approx(-(p * np.log(p)).sum())
    assert m["lsvr_ratio"] == 0.5 and m["lsvr_neglog"] == pytest.approx(math.log(2))
    assert m["effective_rank"] == pytest.approx(math.exp(m["sve"]))
    assert m["top_k_energy"] == {"1": pytest.approx(16 / 22), "2": pytest.approx(20 / 22), "10": 1.0}
    assert m["rank"] == 4
    flat = spectrum_metrics(np.ones(8))
    assert flat["sve"] == pytest.approx(math.log(8)) and flat["effective_rank"] == pytest.approx(8)


def test_record_matches_the_schema() -> None:
    from nmlbench.leaderboard.schema import schema_errors

    rec = analyse(np.random.default_rng(3).normal(size=(40, 10)), "column", top_k=(1, 5)).to_record()
    assert schema_errors(rec, "spectrum") == []
    assert rec["centring"] == "column" and len(rec["singular_values"]) == 10


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((0, 3)), "non-empty"),
        (np.zeros(5), "non-empty"),
        (np.full((4, 2), np.nan), "NaN"),
        (np.zeros((5, 3)), "all singular values are zero"),
    ],
)
def test_bad_features_are_user_errors(bad: np.ndarray, match: str) -> None:
    with pytest.raises(UserError, match=match):
        analyse(bad)


def test_unknown_centring_and_top_k() -> None:
    with pytest.raises(UserError, match="unknown centring"):
        analyse(np.ones((3, 2)), centring="mean")
    with pytest.raises(UserError, match="top-k"):
        analyse(np.eye(3), top_k=(0,))
