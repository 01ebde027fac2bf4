"""Recommendation peers: a global+user+item bias baseline, SVD (surprise, or scikit-learn's TruncatedSVD), and
most-popular for ranking.

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


class SVDPeer:
    """Matrix factorisation by a classic library: ``library="surprise"``: ``surprise``'s SVD (Funk SGD with biases);
    ``"sklearn"``: scikit-learn's TruncatedSVD of the bias baseline's residuals (users x items, unrated cells 0),
    added to the baseline; ``"auto"``: surprise where it is installed, else scikit-learn.

    ``library`` holds the one that ran after ``fit``.  Settings (surprise): 50 factors, 30 epochs, ``reg_all=0.05`` (better on this
    data than its defaults, 100 factors / 20 epochs / 0.02: RMSE 0.8871 against 0.8988 on the 90/10 split).
    """

    def __init__(self, library: str = "auto", *, factors: int = 50, epochs: int = 30, reg: float = 0.05,
                 seed: int = 0):
        if library not in ("auto", "surprise", "sklearn"):
            raise ValueError(f"SVDPeer library must be 'auto', 'surprise' or 'sklearn', got {library!r}")
        self.library, self.factors, self.epochs, self.reg, self.seed = library, factors, epochs, reg, seed

    def fit(self, train: Ratings) -> "SVDPeer":
        if self.library == "sklearn":
            return self._fit_sklearn(train)
        try:
            import pandas as pd
            from surprise import SVD, Dataset, Reader
        except ImportError:
            if self.library == "surprise":
                raise ImportError("SVDPeer('surprise') needs scikit-surprise: pip install 'zoo[recommend]'") from None
            return self._fit_sklearn(train)
        self.library = "surprise"
        frame = pd.DataFrame({"user": train.users, "item": train.items, "rating": train.ratings})
        data = Dataset.load_from_df(frame, Reader(rating_scale=(0.5, 5.0))).build_full_trainset()
        algo = SVD(n_factors=self.factors, n_epochs=self.epochs, reg_all=self.reg, random_state=self.seed).fit(data)
        # surprise's model as dense arrays (unknown users / items keep zero factors and biases, as it predicts them)
        self.mu, self.bu, self.bi = algo.trainset.global_mean, np.zeros(train.num_users), np.zeros(train.num_items)
        self.pu = np.zeros((train.num_users, self.factors))
        self.qi = np.zeros((train.num_items, self.factors))
        for inner in range(data.n_users):
            raw = data.to_raw_uid(inner)
            self.bu[raw], self.pu[raw] = algo.bu[inner], algo.pu[inner]
        for inner in range(data.n_items):
            raw = data.to_raw_iid(inner)
            self.bi[raw], self.qi[raw] = algo.bi[inner], algo.qi[inner]
        return self

    def _fit_sklearn(self, train: Ratings) -> "SVDPeer":
        from scipy.sparse import csr_matrix
        from sklearn.decomposition import TruncatedSVD

        self.library = "sklearn"
        base = BiasBaseline().fit(train)
        self.mu, self.bu, self.bi = base.mu, base.bu, base.bi
        residual = train.ratings - (base.mu + base.bu[train.users] + base.bi[train.items])
        matrix = csr_matrix((residual, (train.users, train.items)), shape=(train.num_users, train.num_items))
        svd = TruncatedSVD(self.factors, random_state=self.seed).fit(matrix)
        self.pu, self.qi = svd.transform(matrix), svd.components_.T
        return self

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        users, items = np.asarray(users), np.asarray(items)
        dots = np.einsum("...d,...d->...", self.pu[users], self.qi[items])
        return np.clip(self.mu + self.bu[users] + self.bi[items] + dots, 0.5, 5.0)
