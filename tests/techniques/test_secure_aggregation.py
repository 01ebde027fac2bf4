import numpy as np
import pytest

from zoo.techniques.secure_aggregation import secure_sum, secure_weighted_average


def _updates(k=5, p=2000, seed=0):
    return np.random.default_rng(seed).normal(size=(k, p))


def test_secure_weighted_average_matches_plain():
    deltas = _updates()
    w = np.array([10.0, 50.0, 30.0, 5.0, 80.0])
    got = secure_weighted_average(deltas, w)
    want = (w[:, None] * deltas).sum(0) / w.sum()
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_masked_update_uncorrelated_with_true_update():
    deltas = _updates()
    _, masked = secure_sum(list(deltas), return_masked=True)
    for true, m in zip(deltas, masked):
        corr = np.corrcoef(true, m.view(np.int64).astype(np.float64))[0, 1]
        assert abs(corr) < 0.1, corr


def test_dropout_recovered_and_refused():
    deltas = _updates()
    got = secure_sum(list(deltas), dropped=(1, 3))
    np.testing.assert_allclose(got, deltas[[0, 2, 4]].sum(0), atol=1e-5)
    with pytest.raises(ValueError, match="refused"):
        secure_sum(list(deltas), dropped=(0, 1, 3))
