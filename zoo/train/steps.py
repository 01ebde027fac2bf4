"""Loss, metrics and the train / eval steps (pure functions; the loop jits them)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from zoo.train import tasks
from zoo.train.state import TrainState


def cross_entropy_loss(logits, labels, label_smoothing: float = 0.0):
    """Mean softmax cross-entropy of ``[B, K]`` logits against ``[B]`` int labels, in float32.

    ``labels`` may also be ``[B, K]`` soft targets (smoothed or mixed up by the image
    pipeline, ``zoo.data.images``).  ``label_smoothing`` = s trains against
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


def dropout_key(state: TrainState) -> jax.Array:
    """The dropout key of the state's current step (restored exactly on resume)."""
    return jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)


def loss_fn(params, state: TrainState, batch: dict, key: jax.Array, label_smoothing: float = 0.0):
    """Training loss of ``params`` on ``batch``; returns ``(loss, (logits, new_model_state))``.

    ``label_smoothing`` applies to classification only (ValueError for other tasks).
    """
    mutable = list(state.model_state)
    variables = {"params": params, **state.model_state}
    out = state.apply_fn(variables, batch["x"], train=True, rngs={"dropout": key}, mutable=mutable or False,
                         **tasks.model_kwargs(batch))
    logits, new_model_state = out if mutable else (out, state.model_state)
    if state.task != "classification":
        if label_smoothing:
            raise ValueError(f"label_smoothing is implemented for classification, not task {state.task!r}")
        return tasks.loss(state.task, logits, batch["y"]), (logits, new_model_state)
    return cross_entropy_loss(logits, batch["y"], label_smoothing), (logits, new_model_state)


def batch_accuracy(state: TrainState, logits, labels):
    """Accuracy of a training batch for the state's task."""
    return accuracy(logits, labels) if state.task == "classification" else tasks.accuracy(state.task, logits, labels)


def train_step(state: TrainState, batch: dict, *, label_smoothing: float = 0.0,
               axis_name: str | None = None) -> tuple[TrainState, dict]:
    """One optimizer step on ``batch = {"x": [B, ...], "y": [B]}`` (other tasks: see ``zoo.train.tasks``).

    Args:
      axis_name: under ``pmap``, the device axis: gradients, metrics and mutable
        model state (BatchNorm running averages) are averaged over it, and each
        device folds its index into the dropout key.

    Returns:
      the new state and ``{"loss", "accuracy", "grad_norm"}`` of this batch.
    """
    key = dropout_key(state)
    if axis_name is not None:
        key = jax.random.fold_in(key, jax.lax.axis_index(axis_name))
    (loss, (logits, new_model_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params, state, batch, key, label_smoothing)
    acc = batch_accuracy(state, logits, batch["y"])
    if axis_name is not None:
        grads, loss, acc, new_model_state = jax.lax.pmean((grads, loss, acc, new_model_state), axis_name)
    new_state = state.apply_gradients(grads, model_state=dict(new_model_state))
    metrics = {"loss": loss, "accuracy": acc, "grad_norm": optax.tree.norm(grads)}
    return new_state, metrics


def with_batch_transform(step_fn, transform):
    """``step_fn(state, batch)`` with on-device augmentation applied to the batch first.

    Args:
      step_fn: a train step ``(state, batch) -> (state, metrics)`` (e.g. :func:`train_step`).
      transform: ``transform(key, batch) -> batch`` (``zoo.data.images.make_batch_transform``).

    The key is ``fold_in(dropout_key(state), 0x5A)``: a function of the state's RNG and
    step only, so a resumed run augments exactly as an uninterrupted one.
    """
    def step(state, batch):
        return step_fn(state, transform(jax.random.fold_in(dropout_key(state), 0x5A), batch))

    return step


def eval_step(state: TrainState, batch: dict) -> dict:
    """Sums over ``batch = {"x", "y", "mask"}``: ``loss_sum``, ``correct`` and ``count`` of real examples."""
    logits = state.apply_fn({"params": state.params, **state.model_state}, batch["x"], train=False,
                            **tasks.model_kwargs(batch))
    mask = batch["mask"]
    if state.task != "classification":
        return tasks.eval_sums(state.task, logits, batch["y"], mask)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), batch["y"])
    correct = (jnp.argmax(logits, -1) == batch["y"]).astype(jnp.float32)
    return {"loss_sum": jnp.sum(losses * mask), "correct": jnp.sum(correct * mask), "count": jnp.sum(mask)}
