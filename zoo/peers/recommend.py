"""Recommendation peers (numpy only): a global+user+item bias baseline for rating, most-popular for ranking.

Metrics (``zoo.tasks.recommendation``, re-exported here): ``rmse``; ``hit_ratio_ndcg`` by the NCF protocol (the
held-out item ranked among its sampled negatives; a tie counts against the held-out item).
"""

from __future__ import annotations

import numpy as np

from zoo.data.ratings import Ratings
from zoo.tasks.recommendation import hit_ratio_ndcg, rmse  # noqa: F401  (the metrics the peers are scored by)


class BiasBaseline:
    """r = mu + b_u + b_i, fitted by alternating damped means (regularisation ``reg`` as pseudo-counts)."""

    def __init__(self, reg: float = 5.0, sweeps: int = 10):
        self.reg, self.sweeps = reg, sweeps

    def fit(self, train: Ratings) -> "BiasBaseline":
        r = train.ratings.astype(np.float64)
        self.mu = r.mean()
        self.bu = np.zeros(train.num_users)
        self.bi = np.zeros(train.num_items)
        nu = np.bincount(train.users, minlength=train.num_users)
        ni = np.bincount(train.items, minlength=train.num_items)
        for _ in range(self.sweeps):
            res = r - self.mu - self.bu[train.users]
            self.bi = np.bincount(train.items, res, train.num_items) / (ni + self.reg)
            res = r - self.mu - self.bi[train.items]
            self.bu = np.bincount(train.users, res, train.num_users) / (nu + self.reg)
        return self

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.clip(self.mu + self.bu[users] + self.bi[items], 0.5, 5.0)


class MostPopular:
    """Scores an item by its number of training ratings."""

    def fit(self, train: Ratings) -> "MostPopular":
        self.counts = np.bincount(train.items, minlength=train.num_items).astype(np.float64)
        return self

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.counts[items]
