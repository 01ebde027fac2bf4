"""Series data (rolling origin, scaling, clear errors) and the anomaly datasets."""

import numpy as np
import pytest

import zoo
from zoo.data import load_dataset
from zoo.data.tabular import breast_cancer, digits_one_vs_rest
from zoo.data.timeseries import (SERIES, check_series, forecast_origins, load_series_values, make_split,
                                 seasonal_naive_scale, series_split)
from zoo.tasks.forecasting import denormalize


def test_rolling_origin_windows_hold_out_the_tail():
    values = np.arange(40, dtype=float) + np.tile([0.0, 5.0], 20)
    split = make_split(values, name="toy", period=2, context=6, horizon=3, holdout=8, stride=2)
    np.testing.assert_array_equal(split.origins, [32, 34, 36])
    train, test = split.train_windows(), split.test_windows()
    # training windows end (context + horizon) at or before the first origin
    assert train["inputs"].shape == (32 - 3 - 6 + 1, 6, 1) and test["target"].shape == (3, 3)
    np.testing.assert_allclose(denormalize(test["target"], test), split.actuals(), rtol=1e-5)
    np.testing.assert_allclose(denormalize(train["inputs"][-1, :, 0][None], {k: train[k][-1:] for k in ("loc", "scale")})[0],
                               values[23:29], rtol=1e-5)
    assert split.mase_scale == pytest.approx(seasonal_naive_scale(values[:32], 2)) == 2.0
    np.testing.assert_allclose(test["mase_weight"], test["scale"] / 2.0)


def test_horizon_longer_than_the_tail_and_missing_values_are_refused():
    with pytest.raises(ValueError, match=r"horizon \(12 steps\) is longer than the held-out tail \(8 points\)"):
        forecast_origins(100, horizon=12, holdout=8, stride=1)
    with pytest.raises(ValueError, match=r"has 2 missing or non-finite values \(at positions 1, 3\)"):
        check_series([1.0, np.nan, 2.0, np.inf])
    with pytest.raises(ValueError, match="missing"):
        make_split(load_series_values("co2", raw=True), name="co2 weekly", period=52, context=104, horizon=52,
                   holdout=104)
    model = zoo.create_model("nbeats_tiny", horizon=400, input_shape=(16, 1))
    with pytest.raises(ValueError, match="longer than the held-out tail"):
        load_dataset("series:airpassengers", model.config)
    with pytest.raises(ValueError, match="unknown series 'nope'"):
        series_split("nope")


def test_catalogue_has_eight_real_series_of_different_frequencies():
    assert len(SERIES) == 8 and len({s.frequency for s in SERIES.values()}) == 5
    split = series_split("airpassengers")
    assert len(split.values) == 144 and split.values[0] == 112.0  # the classic first value
    assert not np.isnan(load_series_values("co2")).any()


def test_series_dataset_follows_the_model():
    model = zoo.create_model("nbeats_tiny")
    data = load_dataset("series:ausbeer", model.config)
    assert data.train["inputs"].shape[1:] == (16, 1) and data.test["target"].shape[1:] == (4,)
    with pytest.raises(ValueError, match="serves forecasting"):
        load_dataset("series:ausbeer", zoo.create_model("mlp").config)


def test_anomaly_datasets():
    x_train, x_test, y_test = digits_one_vs_rest(3)
    assert x_train.shape[1] == 64 and 0.85 < y_test.mean() < 0.95  # 9 of 10 test classes are anomalies
    x_train, x_test, y_test = breast_cancer()
    np.testing.assert_allclose(x_train.mean(0), 0, atol=1e-5)
    assert y_test.sum() == 64  # 30% of the 212 malignant
    clean = len(x_train)
    x_train, _, _ = breast_cancer(contamination=0.1)
    assert len(x_train) == clean + round(0.1 * clean / 0.9)
    with pytest.raises(ValueError, match=r"must be in \(0, 0.5\]"):
        breast_cancer(contamination=0.7)
    config = zoo.create_model("autoencoder").config
    with pytest.raises(ValueError, match=r"contamination .* must be in \(0, 0.5\]"):
        load_dataset("digits_ovr:3,contamination=0", config)
    with pytest.raises(ValueError, match=r"breast_cancer has 30 features .* --set input_shape=\[30\]"):
        load_dataset("breast_cancer", config)
    assert load_dataset("digits_ovr:3", config).test["label"].dtype == np.int32
