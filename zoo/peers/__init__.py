"""The classic tools the deep forecasters and anomaly scorers are measured against, in the same run.

``forecast_peers``: seasonal naive, statsmodels ExponentialSmoothing (ETS) and SARIMA,
refitted at every rolling origin of a ``zoo.data.timeseries.ForecastSplit``.
``detector_peers``: scikit-learn's IsolationForest, OneClassSVM and LocalOutlierFactor
(novelty mode), fitted on the training set and scoring the test set.
statsmodels and scikit-learn are imported on first use.
"""

from zoo.peers.anomaly import DETECTORS, detector_scores
from zoo.peers.forecast import PEERS, peer_forecasts, seasonal_naive

__all__ = ["DETECTORS", "PEERS", "detector_scores", "peer_forecasts", "seasonal_naive"]
