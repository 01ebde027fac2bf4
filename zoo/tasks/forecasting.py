"""Forecasting: predict the next ``H`` values of a series from its last ``L``.

Batch (``zoo.data.timeseries`` builds it; every window normalised by its context)::

    inputs       [B, L, 1] float32   normalised context
    target       [B, H]    float32   normalised future values
    loc, scale   [B]       float32   the window's normalisation: value = loc + scale * normalised
    mase_weight  [B]       float32   scale / (in-sample seasonal naive MAE of the series)

The model (``config.horizon`` = H) returns ``[B, H]`` normalised forecasts.  The
training loss is their mean absolute error.  Evaluation metrics:

* ``mase``: mean over all forecast points of ``|y - yhat| / MAE_seasonal_naive`` (the
  best-checkpoint metric, lower is better); 1.0 = as good in-sample as the seasonal
  naive forecast.
* ``smape``: mean of ``200 |y - yhat| / (|y| + |yhat|)`` (percent), on the de-normalised values.
* ``mae``: mean absolute error of the normalised values.

:func:`mase` and :func:`smape` compute the same on plain arrays (the statistical peers use them).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from zoo.tasks.base import ArraySpec, Task, padded_mask, register_task


def mase(actual, forecast, scale: float) -> float:
    """Mean absolute scaled error: ``mean |actual - forecast| / scale`` (scale: in-sample seasonal naive MAE)."""
    actual, forecast = np.asarray(actual, np.float64), np.asarray(forecast, np.float64)
    if actual.shape != forecast.shape:
        raise ValueError(f"mase: actual {actual.shape} and forecast {forecast.shape} differ in shape")
    if not scale > 0:
        raise ValueError(f"mase: the scale must be positive, got {scale}")
    return float(np.mean(np.abs(actual - forecast)) / scale)


def smape(actual, forecast) -> float:
    """Symmetric MAPE in percent: ``mean 200 |a - f| / (|a| + |f|)`` (a point with a = f = 0 counts 0)."""
    actual, forecast = np.asarray(actual, np.float64), np.asarray(forecast, np.float64)
    if actual.shape != forecast.shape:
        raise ValueError(f"smape: actual {actual.shape} and forecast {forecast.shape} differ in shape")
    denom = np.abs(actual) + np.abs(forecast)
    return float(np.mean(np.where(denom > 0, 200.0 * np.abs(actual - forecast) / np.where(denom > 0, denom, 1), 0)))


def need_horizon(task: str, config) -> int:
    horizon = getattr(config, "horizon", None)
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        raise ValueError(f"task {task!r} needs a model config with horizon (a positive int); "
                         f"{type(config).__name__} has {horizon!r}")
    return horizon


@dataclasses.dataclass(frozen=True)
class Forecasting(Task):
    """``inputs [B, L, 1]`` -> ``[B, H]`` normalised forecasts, scored by MASE and sMAPE."""

    name = "forecasting"
    best_metric = "mase"
    best_mode = "min"

    def check_model(self, config):
        need_horizon(self.name, config)
        if config.layout != "sequence" or len(config.input_shape) != 2:
            raise ValueError(f"task 'forecasting' needs a sequence model with input_shape (L, C); "
                             f"{type(config).__name__} has layout {config.layout!r}, input_shape "
                             f"{tuple(config.input_shape)}")

    def schema(self, config):
        return {"inputs": ArraySpec(tuple(config.input_shape), "float32"),
                "target": ArraySpec((config.horizon,), "float32"),
                "loc": ArraySpec((), "float32"), "scale": ArraySpec((), "float32"),
                "mase_weight": ArraySpec((), "float32")}

    def example_batch(self, config, key, batch_size=1):
        kx, ky = jax.random.split(key)
        return {"inputs": jax.random.normal(kx, (batch_size, *config.input_shape), jnp.float32),
                "target": jax.random.normal(ky, (batch_size, config.horizon), jnp.float32),
                "loc": jnp.full((batch_size,), 10.0), "scale": jnp.ones((batch_size,)),
                "mase_weight": jnp.ones((batch_size,))}

    def output_shape(self, config, batch_size=1):
        return (batch_size, config.horizon)

    def model_inputs(self, batch):
        return batch["inputs"], {}

    def loss(self, outputs, batch, *, label_smoothing: float = 0.0):
        if label_smoothing:
            raise ValueError("label_smoothing is implemented for classification, not task 'forecasting'")
        return jnp.mean(jnp.abs(outputs.astype(jnp.float32) - batch["target"]))

    def eval_sums(self, outputs, batch, mask):
        errors = jnp.abs(outputs.astype(jnp.float32) - batch["target"])  # [B, H] normalised
        weights = padded_mask(mask, errors) * jnp.ones_like(errors)
        loc, scale = batch["loc"][:, None], batch["scale"][:, None]
        actual, forecast = loc + scale * batch["target"], loc + scale * outputs.astype(jnp.float32)
        denom = jnp.abs(actual) + jnp.abs(forecast)
        smapes = jnp.where(denom > 0, 200.0 * jnp.abs(actual - forecast) / jnp.where(denom > 0, denom, 1.0), 0.0)
        return {"mase_sum": jnp.sum(errors * batch["mase_weight"][:, None] * weights),
                "smape_sum": jnp.sum(smapes * weights), "abs_sum": jnp.sum(errors * weights),
                "count": jnp.sum(weights)}

    def metrics(self, sums):
        count = sums["count"]
        if not count:
            raise ValueError("no forecast points to evaluate (the eval sums count 0 points)")
        return {"mase": sums["mase_sum"] / count, "smape": sums["smape_sum"] / count, "mae": sums["abs_sum"] / count}


FORECASTING = register_task(Forecasting())


def denormalize(forecasts, windows: dict) -> np.ndarray:
    """``[K, H]`` normalised model forecasts in the series' units (``loc + scale * forecast``)."""
    return np.asarray(windows["loc"])[:, None] + np.asarray(windows["scale"])[:, None] * np.asarray(forecasts)


__all__ = ["FORECASTING", "Forecasting", "denormalize", "mase", "need_horizon", "smape"]
