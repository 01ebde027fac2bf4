"""Recommendation: rating prediction and top-K ranking over (user, item) id pairs.

Both tasks feed the model ``inputs [B, F]`` int32 ids (layout ``"ids"``; column 0 the user id,
column 1 the item id, further columns other id fields) and read one score per pair, ``[B, 1]``
(a head of one output, as a regression head).
A batch entry ``dense [B, num_dense]`` float32, when present, is passed to the model as ``dense=``
(DLRM's dense features).

``rating``: batches add ``rating [B]`` float32.  Loss: mean squared error.  Metrics (exact sums):
``rmse`` (best checkpoint, lower is better) and ``mae``.

``ranking``: training batches add ``label [B]`` float32, 1 for an observed pair and 0 for a
sampled negative (the data draws the negatives, fixed by seed); the model's score is a logit and
the loss binary cross-entropy.  Evaluation follows the NCF protocol (He et al., 2017): each eval
row is a user's held-out pair ``inputs [F]`` with ``negatives [M]`` item ids the user never rated
(M = 100 in zoo's MovieLens split); the model scores all ``1 + M`` items and the held-out item's
rank is the number of negatives scoring at least as high (a tie counts against it).  Metrics:
``hr@K`` (rank < K) and ``ndcg@K`` (``1 / log2(rank + 2)`` when rank < K), K = 10; best
checkpoint ``ndcg@10`` (higher).  :func:`hit_ratio_ndcg` computes the same on plain arrays.

``retrieval`` (:class:`Retrieval`): a two-tower model's ``[B, 2, D]`` user and item vectors, trained
on observed pairs alone with in-batch negatives (softmax), evaluated as ``ranking``.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from zoo.tasks.base import ArraySpec, Task, register_task, weighted_mean


def rmse(predicted, target) -> float:
    """Root mean squared error (float64)."""
    predicted, target = np.asarray(predicted, np.float64), np.asarray(target, np.float64)
    if predicted.shape != target.shape or not predicted.size:
        raise ValueError(f"rmse takes two non-empty arrays of one shape, got {predicted.shape} and {target.shape}")
    return float(np.sqrt(np.mean(np.square(predicted - target))))


def hit_ratio_ndcg(pos_scores, neg_scores, k: int = 10) -> tuple[float, float]:
    """HR@k and NDCG@k of held-out items: ``pos_scores [N]`` against their ``neg_scores [N, M]`` (ties count against)."""
    pos = np.asarray(pos_scores, np.float64)
    neg = np.asarray(neg_scores, np.float64)
    if pos.ndim != 1 or neg.ndim != 2 or neg.shape[0] != pos.shape[0] or not pos.size:
        raise ValueError(f"hit_ratio_ndcg takes pos_scores [N] and neg_scores [N, M], got {pos.shape} and {neg.shape}")
    rank = np.sum(neg >= pos[:, None], axis=1)  # 0-based rank of the held-out item
    hit = rank < k
    return float(hit.mean()), float(np.where(hit, 1.0 / np.log2(rank + 2.0), 0.0).mean())


def check_id_model(task: str, config) -> None:
    """ValueError unless ``config`` is an id model (layout ``ids``, ``input_shape (F,)`` with F >= 2)."""
    if config.layout != "ids" or len(config.input_shape) != 1 or config.input_shape[0] < 2:
        raise ValueError(f"task {task!r} needs an id model (layout 'ids', input_shape (F,) with user and item "
                         f"columns); {type(config).__name__} has layout {config.layout!r}, input_shape "
                         f"{tuple(config.input_shape)}")


def _random_ids(config, key, batch_size):
    return jax.random.randint(key, (batch_size, *config.input_shape), 0,
                              jnp.asarray(config.table_sizes, jnp.int32), jnp.int32)


@dataclasses.dataclass(frozen=True)
class _PairTask(Task):
    model_input_keys: ClassVar[tuple[str, ...]] = ("dense",)  # DLRM's dense features, when the data has them

    def check_model(self, config):
        check_id_model(self.name, config)

    def output_shape(self, config, batch_size=1):
        return (batch_size, 1)

    @staticmethod
    def scores(outputs):
        """``[B, 1]`` model outputs -> ``[B]`` float32 scores."""
        if outputs.ndim != 2 or outputs.shape[1] != 1:
            raise ValueError(f"a recommender returns one score per pair [B, 1], got shape {tuple(outputs.shape)}")
        return outputs[:, 0].astype(jnp.float32)

    def model_inputs(self, batch):
        return batch["inputs"], {k: batch[k] for k in self.model_input_keys if k in batch}


@dataclasses.dataclass(frozen=True)
class Rating(_PairTask):
    """``inputs [B, F]`` ids -> ``[B, 1]`` predicted ratings; MSE loss, RMSE / MAE."""

    name = "rating"
    best_metric = "rmse"
    best_mode = "min"

    def schema(self, config):
        return {"inputs": ArraySpec(tuple(config.input_shape), "int32"), "rating": ArraySpec((), "float32")}

    def example_batch(self, config, key, batch_size=1):
        ki, kr = jax.random.split(key)
        return {"inputs": _random_ids(config, ki, batch_size),
                "rating": jax.random.randint(kr, (batch_size,), 1, 11).astype(jnp.float32) / 2.0}

    def loss(self, outputs, batch, *, label_smoothing: float = 0.0):
        if label_smoothing:
            raise ValueError("label_smoothing is implemented for classification, not task 'rating'")
        return jnp.mean(jnp.square(self.scores(outputs) - batch["rating"]))

    def eval_sums(self, outputs, batch, mask):
        errors = (self.scores(outputs) - batch["rating"]) * mask
        return {"squared_sum": jnp.sum(jnp.square(errors)), "abs_sum": jnp.sum(jnp.abs(errors)),
                "count": jnp.sum(mask)}

    def metrics(self, sums):
        if not sums["count"]:
            raise ValueError("no ratings to evaluate (the eval sums count 0 pairs)")
        return {"rmse": float(np.sqrt(sums["squared_sum"] / sums["count"])), "mae": float(sums["abs_sum"] / sums["count"])}


@dataclasses.dataclass(frozen=True)
class Ranking(_PairTask):
    """``inputs [B, F]`` ids -> ``[B, 1]`` logits; BCE on sampled negatives; HR@10 / NDCG@10 by the NCF protocol."""

    name = "ranking"
    best_metric = "ndcg@10"
    best_mode = "max"
    k: ClassVar[int] = 10

    def schema(self, config):
        return {"inputs": ArraySpec(tuple(config.input_shape), "int32"), "label": ArraySpec((), "float32")}

    def example_batch(self, config, key, batch_size=1):
        ki, kl = jax.random.split(key)
        return {"inputs": _random_ids(config, ki, batch_size),
                "label": jax.random.bernoulli(kl, 0.25, (batch_size,)).astype(jnp.float32)}

    def _logits_labels(self, outputs, batch):
        return self.scores(outputs), batch["label"].astype(jnp.float32)

    def loss(self, outputs, batch, *, label_smoothing: float = 0.0):
        if label_smoothing:
            raise ValueError("label_smoothing is implemented for classification, not task 'ranking'")
        logits, labels = self._logits_labels(outputs, batch)
        # log(1 + e^x) - y x, stable
        return jnp.mean(jnp.logaddexp(0.0, logits) - labels * logits)

    def train_metrics(self, outputs, batch):
        logits, labels = self._logits_labels(outputs, batch)
        return {"accuracy": weighted_mean(((logits > 0) == (labels > 0.5)).astype(jnp.float32), jnp.ones_like(labels))}

    def apply(self, apply_fn, variables, batch, **kwargs):
        """Training batches: ``[B, 1]`` logits of the pairs.  Eval batches (with ``negatives [B, M]``): ``[B, 1 + M]``,
        column 0 the held-out item's logit, then its negatives'."""
        if "negatives" not in batch:
            return super().apply(apply_fn, variables, batch, **kwargs)
        if "dense" in batch:
            raise ValueError("task 'ranking' scores the sampled negatives from ids alone; its eval batches take no "
                             "'dense' features")
        pairs, negatives = batch["inputs"], batch["negatives"]
        if negatives.ndim != 2 or negatives.shape[0] != pairs.shape[0]:
            raise ValueError(f"task 'ranking': eval entry 'negatives' must be [B, M] item ids with B = "
                             f"{pairs.shape[0]}, got shape {tuple(negatives.shape)}")
        b, m = negatives.shape
        candidates = jnp.concatenate([pairs[:, 1:2], negatives.astype(pairs.dtype)], axis=1)  # [B, 1 + M]
        grid = jnp.broadcast_to(pairs[:, None, :], (b, m + 1, pairs.shape[1])).at[:, :, 1].set(candidates)
        outputs = apply_fn(variables, grid.reshape(b * (m + 1), pairs.shape[1]), **kwargs)
        return self.scores(outputs).reshape(b, m + 1)

    def eval_sums(self, outputs, batch, mask):
        if "negatives" not in batch or outputs.ndim != 2:
            raise ValueError(f"task 'ranking' evaluates on batches with 'negatives' [B, M] (the NCF protocol); the "
                             f"batch has {sorted(batch)}")
        scores = outputs.astype(jnp.float32)
        rank = jnp.sum(scores[:, 1:] >= scores[:, :1], axis=1)  # [B] 0-based rank of the held-out item
        hit = (rank < self.k).astype(jnp.float32) * mask
        ndcg = hit / jnp.log2(rank.astype(jnp.float32) + 2.0)
        return {"hit_sum": jnp.sum(hit), "ndcg_sum": jnp.sum(ndcg), "count": jnp.sum(mask)}

    def metrics(self, sums):
        if not sums["count"]:
            raise ValueError("no held-out users to evaluate (the eval sums count 0 rows)")
        return {f"hr@{self.k}": float(sums["hit_sum"] / sums["count"]),
                f"ndcg@{self.k}": float(sums["ndcg_sum"] / sums["count"])}


@dataclasses.dataclass(frozen=True)
class Retrieval(Ranking):
    """Two-tower retrieval: ``inputs [B, F]`` observed pairs -> ``[B, 2, D]`` (user vector, item vector).

    Loss: softmax cross-entropy of each user against every item of the batch (in-batch negatives; an item
    that appears twice in the batch is not its own negative), scores ``u . v``.  Evaluation: as ``ranking``
    (the NCF protocol, HR@10 / NDCG@10 of ``u . v``).  The loss couples the rows of a batch, so ``pmap``
    (each device its own slice) cannot run it; the jit strategies see the global batch and can.
    """

    name = "retrieval"
    batch_coupled: ClassVar[bool] = True

    def check_model(self, config):
        super().check_model(config)
        if not isinstance(getattr(config, "hidden_size", None), int):
            raise ValueError(f"task 'retrieval' needs a config with hidden_size (the towers' width); "
                             f"{type(config).__name__} has none")

    def schema(self, config):
        return {"inputs": ArraySpec(tuple(config.input_shape), "int32")}

    def example_batch(self, config, key, batch_size=1):
        return {"inputs": _random_ids(config, key, batch_size)}

    def output_shape(self, config, batch_size=1):
        return (batch_size, 2, config.hidden_size)

    @staticmethod
    def scores(outputs):
        """``[B, 2, D]`` tower outputs -> ``[B]`` float32 scores ``u . v``."""
        if outputs.ndim != 3 or outputs.shape[1] != 2:
            raise ValueError(f"a retrieval model returns (user, item) vectors [B, 2, D], got shape "
                             f"{tuple(outputs.shape)}")
        outputs = outputs.astype(jnp.float32)
        return jnp.sum(outputs[:, 0] * outputs[:, 1], axis=-1)

    def _in_batch_logits(self, outputs, batch):
        outputs = outputs.astype(jnp.float32)
        logits = outputs[:, 0] @ outputs[:, 1].T  # [B, B]: user i against item j
        items = batch["inputs"][:, 1]
        duplicate = (items[:, None] == items[None, :]) & ~jnp.eye(len(items), dtype=bool)
        return jnp.where(duplicate, -jnp.inf, logits)

    def loss(self, outputs, batch, *, label_smoothing: float = 0.0):
        if label_smoothing:
            raise ValueError("label_smoothing is implemented for classification, not task 'retrieval'")
        logits = self._in_batch_logits(outputs, batch)
        return jnp.mean(jax.nn.logsumexp(logits, axis=-1) - jnp.diagonal(logits))

    def train_metrics(self, outputs, batch):
        logits = self._in_batch_logits(outputs, batch)
        return {"accuracy": jnp.mean((jnp.argmax(logits, axis=-1) == jnp.arange(len(logits))).astype(jnp.float32))}


RATING = register_task(Rating())
RANKING = register_task(Ranking())
RETRIEVAL = register_task(Retrieval())

__all__ = ["RANKING", "RATING", "RETRIEVAL", "Ranking", "Rating", "Retrieval", "check_id_model", "hit_ratio_ndcg", "rmse"]
