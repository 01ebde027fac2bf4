"""Statistical forecasting peers, refitted at each rolling origin on everything before it."""

from __future__ import annotations

import warnings

import numpy as np

PEERS = ("seasonal_naive", "ets", "sarima")
SARIMA_HISTORY_SEASONS = 10  # SARIMA fits on the last 10 seasons (state size grows with the period)


def seasonal_naive(history: np.ndarray, horizon: int, period: int) -> np.ndarray:
    """``[H]``: the last full season repeated (``yhat_{t+h} = y_{t+h-m(floor((h-1)/m)+1)}``)."""
    season = history[-period:]
    return np.resize(season, horizon) if horizon > period else season[:horizon].copy()


def ets(history: np.ndarray, horizon: int, period: int) -> np.ndarray:
    """statsmodels Holt-Winters: additive damped trend, additive season (when two seasons fit)."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    seasonal = "add" if period > 1 and len(history) >= 2 * period else None
    model = ExponentialSmoothing(history, trend="add", damped_trend=True, seasonal=seasonal,
                                 seasonal_periods=period if seasonal else None, initialization_method="estimated")
    return np.asarray(model.fit().forecast(horizon))


def sarima(history: np.ndarray, horizon: int, period: int) -> np.ndarray:
    """statsmodels SARIMAX (1, 1, 1) x (0, 1, 1, m) (the "airline"-type model) on the last 10 seasons (>= 100 points)."""
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    history = history[-max(SARIMA_HISTORY_SEASONS * period, 100):]
    seasonal = (0, 1, 1, period) if period > 1 else (0, 0, 0, 0)
    model = SARIMAX(history, order=(1, 1, 1), seasonal_order=seasonal)
    return np.asarray(model.fit(disp=False).forecast(horizon))


def peer_forecasts(split, peer: str) -> np.ndarray:
    """``[K, H]`` forecasts of ``peer`` (one of ``PEERS``) at every origin of ``split``."""
    fn = {"seasonal_naive": seasonal_naive, "ets": ets, "sarima": sarima}.get(peer)
    if fn is None:
        raise ValueError(f"unknown forecasting peer {peer!r}; peers: {', '.join(PEERS)}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' convergence chatter
        return np.stack([fn(split.values[:t], split.horizon, split.period) for t in split.origins])
