"""Recommendation peers (numpy only): a global+user+item bias baseline for rating, most-popular for ranking.

Metrics: ``rmse`` as an exact float64 sum of squared errors; ``hit_ratio_ndcg`` by the NCF protocol (the held-out
item ranked among its sampled negatives; a tie counts against the held-out item).
"""

from __future__ import annotations

import numpy as np

from zoo.data.ratings import Ratings


def rmse(predicted: np.ndarray, target: np.ndarray) -> float:
    err = np.asarray(predicted, np.float64) - np.asarray(target, np.float64)
    return float(np.sqrt(np.sum(err * err) / len(err)))


def hit_ratio_ndcg(pos_scores: np.ndarray, neg_scores: np.ndarray, k: int = 10) -> tuple[float, float]:
    """``pos_scores`` (n,), ``neg_scores`` (n, m): HR@k and NDCG@k of the held-out item."""
    pos = np.asarray(pos_scores, np.float64)[:, None]
    neg = np.asarray(neg_scores, np.float64)
    if neg.ndim != 2 or neg.shape[0] != pos.shape[0]:
        raise ValueError(f"neg_scores must be (n, m) with n={pos.shape[0]}, got {neg.shape}")
    rank = np.sum(neg >= pos, axis=1)  # 0-based rank of the held-out item
    hit = rank < k
    return float(hit.mean()), float(np.where(hit, 1.0 / np.log2(rank + 2.0), 0.0).mean())


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
