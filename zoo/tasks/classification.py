"""Classification tasks: one label per example, per token, or a (start, end) span.

=========================  =====================================  ==============  =================
task                       batch                                  model output    ``label``
=========================  =====================================  ==============  =================
``classification``         ``inputs [B, *input_shape]``, label    ``[B, K]``      ``[B]`` int (or
                                                                                  ``[B, K]`` soft)
``token_classification``   ``inputs [B, T]`` int, label           ``[B, T, K]``   ``[B, T]``;
                                                                                  ``IGNORE_INDEX``
                                                                                  = no label
``question_answering``     ``inputs [B, T]`` int, label           ``[B, T, 2]``   ``[B, 2]`` start,
                                                                                  end positions
=========================  =====================================  ==============  =================

Token models may also take ``attention_mask [B, T]`` and ``token_type_ids [B, T]``
entries, passed to the model when the batch has them.  "accuracy" is per
example, per labelled token, or the exact-match rate of (start, end) spans.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax

from zoo.tasks.base import ArraySpec, ItemMeanTask, Task, padded_mask, register_task

IGNORE_INDEX = -100  # token label that takes no part in loss or metrics
TOKEN_INPUT_KEYS = ("attention_mask", "token_type_ids")


def cross_entropy_loss(logits, labels, label_smoothing: float = 0.0):
    """Mean softmax cross-entropy of ``[B, K]`` logits against ``[B]`` int labels, in float32.

    ``labels`` may also be ``[B, K]`` soft targets (mixed up by the image pipeline,
    ``zoo.data.images``).  ``label_smoothing`` = s trains against
    ``(1 - s) * targets + s / K`` (0: plain cross-entropy).
    """
    logits = logits.astype(jnp.float32)
    if labels.ndim == logits.ndim:
        targets = labels.astype(jnp.float32)
    elif not label_smoothing:
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    else:
        targets = jax.nn.one_hot(labels, logits.shape[-1])
    if label_smoothing:
        targets = optax.smooth_labels(targets, label_smoothing)
    return optax.softmax_cross_entropy(logits, targets).mean()


def accuracy(logits, labels):
    """Fraction of ``[B]`` labels (or argmax of ``[B, K]`` soft targets) equal to the argmax of ``[B, K]`` logits."""
    if labels.ndim == logits.ndim:
        labels = jnp.argmax(labels, -1)
    return jnp.mean(jnp.argmax(logits, -1) == labels)


def _input_spec(config) -> ArraySpec:
    return ArraySpec(tuple(config.input_shape), "int32" if config.layout == "tokens" else "float32")


def _random_inputs(config, key, batch_size):
    shape = (batch_size, *config.input_shape)
    if config.layout == "tokens":
        return jax.random.randint(key, shape, 0, config.vocab_size, jnp.int32)
    return jax.random.uniform(key, shape, jnp.float32)


def _need_classes(task: str, config) -> None:
    classes = getattr(config, "num_classes", None)
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
        raise ValueError(f"task {task!r} needs a model config with num_classes (a positive int); "
                         f"{type(config).__name__} has {classes!r}")


def _need_tokens(task: str, config) -> None:
    if config.layout != "tokens":
        raise ValueError(f"task {task!r} needs a token model (layout 'tokens'), got layout {config.layout!r}")


def _masked_sums(losses, correct, weights, mask) -> dict:
    weights = weights * padded_mask(mask, weights)
    return {"loss_sum": jnp.sum(losses * weights), "correct": jnp.sum(correct * weights), "count": jnp.sum(weights)}


def _loss_accuracy(sums: dict) -> dict:
    count = sums["count"]
    if not count:
        raise ValueError("no labelled examples to evaluate (the eval sums count 0 items)")
    return {"loss": sums["loss_sum"] / count, "accuracy": sums["correct"] / count}


@dataclasses.dataclass(frozen=True)
class _LabelTask(ItemMeanTask):
    """Shared by the classification tasks: ``{"inputs", "label"}`` batches, cross-entropy and accuracy."""

    model_input_keys = TOKEN_INPUT_KEYS

    def label_spec(self, config) -> ArraySpec:
        raise NotImplementedError

    def schema(self, config: Any) -> dict[str, ArraySpec]:
        return {"inputs": _input_spec(config), "label": self.label_spec(config)}

    def model_inputs(self, batch: dict):
        return batch["inputs"], {k: batch[k] for k in self.model_input_keys if k in batch}

    def per_item(self, logits, labels):
        """Per-item cross-entropy, correctness and weight (1 = counts): arrays of one shape."""
        raise NotImplementedError

    def items(self, outputs, batch):
        return self.per_item(outputs, batch["label"])

    def eval_sums(self, outputs, batch, mask):
        return _masked_sums(*self.items(outputs, batch), mask)

    def metrics(self, sums):
        return _loss_accuracy(sums)


@dataclasses.dataclass(frozen=True)
class Classification(_LabelTask):
    """One label per example: ``[B, K]`` logits against ``label [B]`` (soft ``[B, K]`` targets in training)."""

    name = "classification"

    def check_model(self, config):
        _need_classes(self.name, config)

    def label_spec(self, config):
        return ArraySpec((), "int32")

    def output_shape(self, config, batch_size=1):
        return (batch_size, config.num_classes)

    def example_batch(self, config, key, batch_size=1):
        kx, ky = jax.random.split(key)
        return {"inputs": _random_inputs(config, kx, batch_size),
                "label": jax.random.randint(ky, (batch_size,), 0, config.num_classes, jnp.int32)}

    def per_item(self, logits, labels):
        logits = logits.astype(jnp.float32)
        losses = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
        return losses, (jnp.argmax(logits, -1) == labels).astype(jnp.float32), jnp.ones_like(losses)

    def loss(self, outputs, batch, *, label_smoothing: float = 0.0):
        return cross_entropy_loss(outputs, batch["label"], label_smoothing)

    def train_metrics(self, outputs, batch):
        return {"accuracy": accuracy(outputs, batch["label"])}


@dataclasses.dataclass(frozen=True)
class TokenClassification(_LabelTask):
    """A label per token: ``[B, T, K]`` logits against ``label [B, T]`` (``IGNORE_INDEX``: no label)."""

    name = "token_classification"

    def check_model(self, config):
        _need_tokens(self.name, config)
        _need_classes(self.name, config)

    def label_spec(self, config):
        return ArraySpec(tuple(config.input_shape[:1]), "int32")

    def output_shape(self, config, batch_size=1):
        return (batch_size, config.input_shape[0], config.num_classes)

    def example_batch(self, config, key, batch_size=1):
        kx, ky = jax.random.split(key)
        return {"inputs": _random_inputs(config, kx, batch_size),
                "label": jax.random.randint(ky, (batch_size, config.input_shape[0]), 0, config.num_classes,
                                            jnp.int32)}

    def per_item(self, logits, labels):
        return token_items(logits, labels)


def token_items(logits, labels):
    """Per-token cross-entropy, correctness and weight of ``[B, T, K]`` logits and ``[B, T]`` labels."""
    logits = logits.astype(jnp.float32)
    valid = labels != IGNORE_INDEX
    safe = jnp.where(valid, labels, 0)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, safe)
    correct = (jnp.argmax(logits, -1) == safe).astype(jnp.float32)
    return losses, correct, valid.astype(jnp.float32)


@dataclasses.dataclass(frozen=True)
class QuestionAnswering(_LabelTask):
    """Extractive QA: ``[B, T, 2]`` start / end logits against ``label [B, 2]`` positions (HF's mean loss)."""

    name = "question_answering"

    def check_model(self, config):
        _need_tokens(self.name, config)

    def label_spec(self, config):
        return ArraySpec((2,), "int32")

    def output_shape(self, config, batch_size=1):
        return (batch_size, config.input_shape[0], 2)

    def example_batch(self, config, key, batch_size=1):
        kx, ky = jax.random.split(key)
        length = config.input_shape[0]
        return {"inputs": _random_inputs(config, kx, batch_size),
                "label": jnp.sort(jax.random.randint(ky, (batch_size, 2), 0, length, jnp.int32), axis=-1)}

    def per_item(self, logits, labels):
        spans = jnp.moveaxis(logits.astype(jnp.float32), -1, 1)  # [B, 2, T]
        losses = optax.softmax_cross_entropy_with_integer_labels(spans, labels).mean(-1)  # [B]
        correct = jnp.all(jnp.argmax(spans, -1) == labels, -1).astype(jnp.float32)
        return losses, correct, jnp.ones_like(losses)


CLASSIFICATION = register_task(Classification())
TOKEN_CLASSIFICATION = register_task(TokenClassification())
QUESTION_ANSWERING = register_task(QuestionAnswering())

__all__ = ["CLASSIFICATION", "Classification", "IGNORE_INDEX", "QUESTION_ANSWERING", "QuestionAnswering",
           "TOKEN_CLASSIFICATION", "TOKEN_INPUT_KEYS", "TokenClassification", "accuracy", "cross_entropy_loss",
           "token_items"]
