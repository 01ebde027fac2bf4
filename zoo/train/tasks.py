"""Loss and metrics for each model task (``zoo.registry.TASKS``); ``train_step`` / ``eval_step`` dispatch here.

Batches are dicts: ``"x"`` (model input), ``"y"`` (labels, shaped by the task),
in evaluation ``"mask"`` ``[B]`` (1 = real example, 0 = padding of the last
batch), and optionally model inputs such as ``"attention_mask"`` ``[B, T]``
and ``"token_type_ids"`` which :func:`model_kwargs` passes to the model.

================================  ==============  ===================================
task                              logits          labels ``y``
================================  ==============  ===================================
classification                    ``[B, K]``      ``[B]``
token_classification, causal_lm   ``[B, T, K]``   ``[B, T]``; ``IGNORE_INDEX`` = none
question_answering                ``[B, T, 2]``   ``[B, 2]`` start / end positions
================================  ==============  ===================================

"accuracy" is per example (classification), per labelled token, or the
exact-match rate of (start, end) spans.
"""

from __future__ import annotations

import jax.numpy as jnp
import optax

from zoo.registry import IGNORE_INDEX, TASKS

MODEL_INPUT_KEYS = ("attention_mask", "token_type_ids")


def model_kwargs(batch: dict) -> dict:
    """The optional model inputs a batch carries (``attention_mask``, ``token_type_ids``)."""
    return {k: batch[k] for k in MODEL_INPUT_KEYS if k in batch}


def _check(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")


def _per_item(task: str, logits, labels):
    """Per-item cross-entropy, correctness and weight (1 = counts): arrays of one shape."""
    logits = logits.astype(jnp.float32)
    if task == "classification":
        losses = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
        return losses, (jnp.argmax(logits, -1) == labels).astype(jnp.float32), jnp.ones_like(losses)
    if task == "question_answering":  # logits [B, T, 2], labels [B, 2]
        spans = jnp.moveaxis(logits, -1, 1)  # [B, 2, T]
        losses = optax.softmax_cross_entropy_with_integer_labels(spans, labels).mean(-1)  # [B]
        correct = jnp.all(jnp.argmax(spans, -1) == labels, -1).astype(jnp.float32)
        return losses, correct, jnp.ones_like(losses)
    valid = labels != IGNORE_INDEX  # per-token tasks: logits [B, T, K], labels [B, T]
    safe = jnp.where(valid, labels, 0)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, safe)
    correct = (jnp.argmax(logits, -1) == safe).astype(jnp.float32)
    return losses, correct, valid.astype(jnp.float32)


def loss(task: str, logits, labels):
    """Mean cross-entropy of a training batch over its labelled items."""
    _check(task)
    losses, _, weights = _per_item(task, logits, labels)
    return (losses * weights).sum() / jnp.maximum(weights.sum(), 1.0)


def accuracy(task: str, logits, labels):
    """Accuracy of a training batch over its labelled items."""
    _check(task)
    _, correct, weights = _per_item(task, logits, labels)
    return (correct * weights).sum() / jnp.maximum(weights.sum(), 1.0)


def eval_sums(task: str, logits, labels, mask) -> dict:
    """``loss_sum``, ``correct`` and ``count`` over the real examples (``mask [B]``) of an eval batch."""
    _check(task)
    losses, correct, weights = _per_item(task, logits, labels)
    weights = weights * mask.reshape(mask.shape + (1,) * (weights.ndim - 1))
    return {"loss_sum": jnp.sum(losses * weights), "correct": jnp.sum(correct * weights), "count": jnp.sum(weights)}


__all__ = ["MODEL_INPUT_KEYS", "accuracy", "eval_sums", "loss", "model_kwargs"]
