"""Anomaly detection: train on normal examples, score every test example, rank by score.

Training batches hold ``inputs [B, D]`` float32 (normal examples, or a contaminated
set); evaluation batches add ``label [B]`` int32 (1 = anomaly, 0 = normal).  A model
turns an example into a non-negative **anomaly score** (higher = more anomalous), and
the tasks differ in what the model returns and how it is trained:

==========================  =======================  =========================================  ============
task                        model output             training loss                              score
==========================  =======================  =========================================  ============
``anomaly_reconstruction``  ``[B, D]`` reconstruction mean squared error                         per-example
                                                                                                 MSE
``anomaly_vae``             ``[B, D + 2Z]``: recon-  negative ELBO: ``0.5 |x - x'|^2 + KL``      negative
                            struction, mean, log     (unit-variance Gaussian decoder)           ELBO
                            variance of q(z | x)
``anomaly_svdd``            ``[B, K]``: ``phi(x) - c`` mean ``|phi(x) - c|^2`` (Deep SVDD)       ``|phi - c|^2``
==========================  =======================  =========================================  ============

Metric: ``auroc`` (best checkpoint, higher is better).  Evaluation sums are additive,
so AUROC comes from histograms of the scores of normal and anomalous examples on
``AUROC_BINS`` log-spaced bins over ``[1e-8, 1e8]`` (relative width 0.9%): it equals
the exact AUROC (:func:`auroc`) except that a normal and an anomalous score in one bin
count as a tie.  :func:`flag_anomalies` thresholds scores at a contamination rate,
which must lie in (0, 0.5].
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from zoo.tasks.base import ArraySpec, Task, register_task

AUROC_BINS = 4096
LOG10_RANGE = (-8.0, 8.0)


def check_contamination(contamination) -> float:
    """``contamination`` as a float; ValueError unless it is in (0, 0.5]."""
    if isinstance(contamination, bool) or not isinstance(contamination, (int, float, np.floating)) \
            or not 0.0 < float(contamination) <= 0.5:
        raise ValueError(f"contamination (the expected fraction of anomalies) must be in (0, 0.5], got "
                         f"{contamination!r}")
    return float(contamination)


def flag_anomalies(scores, contamination: float) -> np.ndarray:
    """``[N]`` bool: the ``ceil(contamination * N)`` highest scores flagged (ties at the threshold included)."""
    contamination = check_contamination(contamination)
    scores = np.asarray(scores, np.float64)
    if scores.ndim != 1 or not scores.size:
        raise ValueError(f"flag_anomalies takes non-empty scores [N], got shape {scores.shape}")
    k = int(np.ceil(contamination * scores.size))
    threshold = np.sort(scores)[-k]
    return scores >= threshold


def auroc(labels, scores) -> float:
    """Exact area under the ROC curve (Mann-Whitney U, ties count half); ``labels`` 1 = anomaly."""
    labels, scores = np.asarray(labels), np.asarray(scores, np.float64)
    if labels.shape != scores.shape or labels.ndim != 1:
        raise ValueError(f"auroc takes labels [N] and scores [N], got {labels.shape} and {scores.shape}")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError(f"auroc labels must be 0 (normal) or 1 (anomaly), got values {np.unique(labels)[:5]}")
    positives, negatives = int(labels.sum()), int((1 - labels).sum())
    if not positives or not negatives:
        raise ValueError(f"auroc needs both normal and anomalous examples; got {positives} anomalies and "
                         f"{negatives} normal")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(average, counts)
    u = ranks[labels == 1].sum() - positives * (positives + 1) / 2.0
    return float(u / (positives * negatives))


def auroc_from_histograms(positive, negative) -> float:
    """AUROC of scores given as counts per ascending bin (a pair in one bin counts half)."""
    positive, negative = np.asarray(positive, np.float64), np.asarray(negative, np.float64)
    p, n = positive.sum(), negative.sum()
    if not p or not n:
        raise ValueError(f"auroc needs both normal and anomalous examples; the eval split has {p:.0f} anomalies "
                         f"and {n:.0f} normal")
    below = np.concatenate([[0.0], np.cumsum(negative)[:-1]])
    return float(np.sum(positive * (below + 0.5 * negative)) / (p * n))


def score_bins(scores) -> jax.Array:
    """Histogram bin ``[B]`` int32 of non-negative scores (log-spaced, see the module docstring)."""
    low, high = LOG10_RANGE
    logs = jnp.log10(jnp.maximum(scores.astype(jnp.float32), 10.0 ** low))
    return jnp.clip(((logs - low) / (high - low) * AUROC_BINS).astype(jnp.int32), 0, AUROC_BINS - 1)


@dataclasses.dataclass(frozen=True)
class _AnomalyTask(Task):
    """Shared by the anomaly tasks: ``inputs [B, D]`` batches, scores, histogram AUROC."""

    best_metric: ClassVar[str] = "auroc"
    best_mode: ClassVar[str] = "max"

    def check_model(self, config):
        if config.layout != "vector" or len(config.input_shape) != 1:
            raise ValueError(f"task {self.name!r} needs a vector model with input_shape (D,); "
                             f"{type(config).__name__} has layout {config.layout!r}, input_shape "
                             f"{tuple(config.input_shape)}")

    def schema(self, config):
        return {"inputs": ArraySpec(tuple(config.input_shape), "float32")}

    def example_batch(self, config, key, batch_size=1):
        return {"inputs": jax.random.uniform(key, (batch_size, *config.input_shape), jnp.float32)}

    def model_inputs(self, batch):
        return batch["inputs"], {}

    def per_example(self, outputs, batch) -> tuple[jax.Array, jax.Array]:
        """``(training loss [B], anomaly score [B])``."""
        raise NotImplementedError

    def scores(self, outputs, batch) -> jax.Array:
        """Anomaly score ``[B]`` (higher = more anomalous) of the model's outputs."""
        return self.per_example(outputs, batch)[1]

    def loss(self, outputs, batch, *, label_smoothing: float = 0.0):
        if label_smoothing:
            raise ValueError(f"label_smoothing is implemented for classification, not task {self.name!r}")
        return jnp.mean(self.per_example(outputs, batch)[0])

    def eval_sums(self, outputs, batch, mask):
        if "label" not in batch:
            raise ValueError(f"task {self.name!r} evaluates on batches with 'label' [B] (1 = anomaly); the batch "
                             f"has {sorted(batch)}")
        losses, scores = self.per_example(outputs, batch)
        mask = mask.astype(jnp.float32)
        anomalous = batch["label"].astype(jnp.float32) * mask
        bins = jax.nn.one_hot(score_bins(scores), AUROC_BINS, dtype=jnp.float32)  # [B, bins]
        return {"loss_sum": jnp.sum(losses * mask), "count": jnp.sum(mask),
                "positive_hist": anomalous @ bins, "negative_hist": (mask - anomalous) @ bins}

    def metrics(self, sums):
        if not sums["count"]:
            raise ValueError("no examples to evaluate (the eval sums count 0 examples)")
        return {"loss": sums["loss_sum"] / sums["count"],
                "auroc": auroc_from_histograms(sums["positive_hist"], sums["negative_hist"])}


@dataclasses.dataclass(frozen=True)
class AnomalyReconstruction(_AnomalyTask):
    """An autoencoder's ``[B, D]`` reconstruction; loss and score: per-example mean squared error."""

    name = "anomaly_reconstruction"

    def output_shape(self, config, batch_size=1):
        return (batch_size, config.input_shape[0])

    def per_example(self, outputs, batch):
        errors = jnp.mean(jnp.square(outputs.astype(jnp.float32) - batch["inputs"]), axis=-1)
        return errors, errors


@dataclasses.dataclass(frozen=True)
class AnomalyVAE(_AnomalyTask):
    """A VAE's ``[B, D + 2Z]`` (reconstruction, mean, log variance); loss and score: the negative ELBO."""

    name = "anomaly_vae"

    def check_model(self, config):
        super().check_model(config)
        if not isinstance(getattr(config, "latent_dim", None), int):
            raise ValueError(f"task 'anomaly_vae' needs a config with latent_dim; {type(config).__name__} has none")

    def output_shape(self, config, batch_size=1):
        return (batch_size, config.input_shape[0] + 2 * config.latent_dim)

    def per_example(self, outputs, batch):
        x = batch["inputs"]
        dim = x.shape[-1]
        outputs = outputs.astype(jnp.float32)
        recon, stats = outputs[:, :dim], outputs[:, dim:]
        mean, log_var = jnp.split(stats, 2, axis=-1)
        nll = 0.5 * jnp.sum(jnp.square(recon - x), axis=-1)
        kl = 0.5 * jnp.sum(jnp.exp(log_var) + jnp.square(mean) - 1.0 - log_var, axis=-1)
        return nll + kl, nll + kl


@dataclasses.dataclass(frozen=True)
class AnomalySVDD(_AnomalyTask):
    """Deep SVDD's ``[B, K]`` offsets ``phi(x) - c`` from the centre; loss and score: ``|phi(x) - c|^2``."""

    name = "anomaly_svdd"

    def output_shape(self, config, batch_size=1):
        return (batch_size, config.hidden_sizes[-1])

    def per_example(self, outputs, batch):
        distances = jnp.sum(jnp.square(outputs.astype(jnp.float32)), axis=-1)
        return distances, distances


ANOMALY_RECONSTRUCTION = register_task(AnomalyReconstruction())
ANOMALY_VAE = register_task(AnomalyVAE())
ANOMALY_SVDD = register_task(AnomalySVDD())

__all__ = ["ANOMALY_RECONSTRUCTION", "ANOMALY_SVDD", "ANOMALY_VAE", "AUROC_BINS", "AnomalyReconstruction",
           "AnomalySVDD", "AnomalyVAE", "auroc", "auroc_from_histograms", "check_contamination", "flag_anomalies",
           "score_bins"]
