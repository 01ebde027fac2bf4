"""Forecasting and anomaly tasks: MASE, sMAPE and AUROC against hand-computed examples and scikit-learn."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from zoo.data import eval_batches
from zoo.tasks import get_task, sums_to_host
from zoo.tasks.anomaly import auroc, auroc_from_histograms, check_contamination, flag_anomalies
from zoo.tasks.forecasting import mase, smape


def test_mase_and_smape_by_hand():
    actual, forecast = np.array([10.0, 12.0, 14.0]), np.array([11.0, 12.0, 10.0])
    # |e| = 1, 0, 4 -> mean 5/3; scale 2 -> 5/6
    assert mase(actual, forecast, 2.0) == pytest.approx(5 / 6)
    # 200 |e| / (|a| + |f|): 200/21, 0, 800/24 -> mean
    assert smape(actual, forecast) == pytest.approx((200 / 21 + 0 + 800 / 24) / 3)
    assert smape(np.zeros(2), np.zeros(2)) == 0.0
    with pytest.raises(ValueError, match="differ in shape"):
        mase(actual, forecast[:2], 1.0)
    with pytest.raises(ValueError, match="scale must be positive"):
        mase(actual, forecast, 0.0)


def test_forecasting_eval_sums_give_mase_and_smape_in_series_units():
    task = get_task("forecasting")
    # two windows, H = 2, normalised: value = loc + scale * x
    batch = {"target": np.array([[0.0, 1.0], [1.0, -1.0]], np.float32), "loc": np.array([10.0, 20.0], np.float32),
             "scale": np.array([2.0, 4.0], np.float32), "mase_weight": np.array([2.0, 4.0], np.float32) / 3.0}
    outputs = np.array([[0.5, 1.0], [0.0, -1.0]], np.float32)
    actual = np.array([[10.0, 12.0], [24.0, 16.0]])
    forecast = np.array([[11.0, 12.0], [20.0, 16.0]])
    want = {"mase": mase(actual, forecast, 3.0), "smape": smape(actual, forecast)}
    split = {**batch, "inputs": np.zeros((2, 3, 1), np.float32)}
    totals = {}
    for b in eval_batches({**split, "out": outputs}, 3):  # padded to 3 rows: the padding row must not count
        out = b.pop("out")
        for k, v in sums_to_host(task.eval_sums(jnp.asarray(out), b, jnp.asarray(b["mask"]))).items():
            totals[k] = totals.get(k, 0.0) + v
    got = task.metrics(totals)
    assert got["mase"] == pytest.approx(want["mase"], rel=1e-6)
    assert got["smape"] == pytest.approx(want["smape"], rel=1e-6)


def test_auroc_by_hand_and_against_sklearn():
    # positives 0.8, 0.4; negatives 0.5, 0.1, 0.4: pairs won 0.8>all (3), 0.4>0.1 (1), 0.4=0.4 (half) -> 4.5/6
    labels, scores = np.array([1, 1, 0, 0, 0]), np.array([0.8, 0.4, 0.5, 0.1, 0.4])
    assert auroc(labels, scores) == pytest.approx(4.5 / 6)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300)
    scores = np.round(rng.normal(size=300) + labels, 1)  # with ties
    assert auroc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    with pytest.raises(ValueError, match="both normal and anomalous"):
        auroc(np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match="must be 0 .* or 1"):
        auroc(np.array([0, 2]), np.ones(2))


def test_histogram_auroc_of_the_task_matches_sklearn_over_padded_batches():
    task = get_task("anomaly_reconstruction")
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(37, 4)).astype(np.float32)
    recon = (x + rng.normal(scale=0.3, size=x.shape)).astype(np.float32)
    labels = rng.integers(0, 2, 37).astype(np.int32)
    recon[labels == 1] += 0.3
    scores = np.mean((recon - x) ** 2, axis=1)
    totals = {}
    for b in eval_batches({"inputs": x, "label": labels, "out": recon}, 16):
        out = b.pop("out")
        for k, v in sums_to_host(task.eval_sums(jnp.asarray(out), b, jnp.asarray(b["mask"]))).items():
            totals[k] = totals.get(k, 0.0) + v
    metrics = task.metrics(totals)
    assert totals["count"] == 37
    # distinct scores 0.9% apart or more land in distinct bins: exact
    assert metrics["auroc"] == pytest.approx(roc_auc_score(labels, scores), abs=2e-3)
    assert auroc_from_histograms([0, 1], [1, 0]) == 1.0 and auroc_from_histograms([1], [1]) == 0.5


def test_vae_and_svdd_scores():
    x = jnp.array([[1.0, 2.0]])
    vae = get_task("anomaly_vae")
    # recon (1, 0): 0.5 * (0 + 4) = 2; mean 1, log_var 0: KL = 0.5 * (1 + 1 - 1 - 0) = 0.5
    out = jnp.array([[1.0, 0.0, 1.0, 0.0]])
    assert float(vae.scores(out, {"inputs": x})[0]) == pytest.approx(2.5)
    svdd = get_task("anomaly_svdd")
    assert float(svdd.scores(jnp.array([[3.0, 4.0]]), {"inputs": x})[0]) == pytest.approx(25.0)


@pytest.mark.parametrize("bad", [0, 0.0, -0.1, 0.51, 1.0, True, "0.1"])
def test_contamination_outside_zero_half_is_refused(bad):
    with pytest.raises(ValueError, match=r"contamination .* must be in \(0, 0.5\]"):
        check_contamination(bad)


def test_flag_anomalies_flags_the_top_fraction():
    flags = flag_anomalies(np.array([0.1, 0.9, 0.3, 0.8, 0.2]), 0.4)
    np.testing.assert_array_equal(flags, [False, True, False, True, False])
    with pytest.raises(ValueError, match="contamination"):
        flag_anomalies(np.ones(3), 0.6)


def test_anomaly_eval_needs_labels():
    task = get_task("anomaly_reconstruction")
    with pytest.raises(ValueError, match="evaluates on batches with 'label'"):
        task.eval_sums(jnp.ones((2, 3)), {"inputs": jnp.ones((2, 3))}, jnp.ones(2))
