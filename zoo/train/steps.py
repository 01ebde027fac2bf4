"""The train / eval steps (pure functions; the loop jits them).  Loss and metrics come from the state's task."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from zoo.tasks import accuracy, cross_entropy_loss  # noqa: F401  (re-exported: zoo.train.accuracy, ...)
from zoo.train.state import TrainState


def dropout_key(state: TrainState) -> jax.Array:
    """The dropout key of the state's current step (restored exactly on resume)."""
    return jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)


def _task(state: TrainState):
    if state.task is None:
        raise ValueError("this TrainState has no task: build it with create_train_state(model, tx, seed), or pass "
                         "task=zoo.tasks.task_for(model) to TrainState(...)")
    return state.task


def loss_fn(params, state: TrainState, batch: dict, key: jax.Array, label_smoothing: float = 0.0):
    """Training loss of ``params`` on ``batch`` (the task's schema); returns ``(loss, (outputs, new_model_state))``.

    ``label_smoothing`` applies to classification only (ValueError for other tasks).
    """
    mutable = list(state.model_state)
    variables = {"params": params, **state.model_state}
    out = _task(state).apply(state.apply_fn, variables, batch, train=True, rngs={"dropout": key},
                           mutable=mutable or False)
    outputs, new_model_state = out if mutable else (out, state.model_state)
    return state.task.loss(outputs, batch, label_smoothing=label_smoothing), (outputs, new_model_state)


def _device_loss(params, state, batch, key, label_smoothing, axis_name):
    """:func:`loss_fn`, under ``pmap`` weighted by this device's share of the task's ``loss_weight`` (tokens), so
    the mean over devices of the weighted losses is the global batch's mean; returns ``(loss, (outputs,
    model_state, scale))``."""
    loss, (outputs, new_model_state) = loss_fn(params, state, batch, key, label_smoothing)
    weight = state.task.loss_weight(outputs, batch) if axis_name is not None else None
    if weight is None:
        return loss, (outputs, new_model_state, 1.0)
    weight = jax.lax.stop_gradient(weight)
    scale = weight / jnp.maximum(jax.lax.pmean(weight, axis_name), 1e-9)
    return loss * scale, (outputs, new_model_state, scale)


def train_step(state: TrainState, batch: dict, *, label_smoothing: float = 0.0,
               axis_name: str | None = None) -> tuple[TrainState, dict]:
    """One optimizer step on a batch of the state's task (classification: ``{"inputs": [B, ...], "label": [B]}``).

    Args:
      axis_name: under ``pmap``, the device axis: gradients, metrics and mutable
        model state (BatchNorm running averages) are averaged over it, each
        device folds its index into the dropout key, and a task whose loss is a
        mean over tokens (``Task.loss_weight``) is averaged over the global batch's tokens.

    Returns:
      the new state and ``{"loss", "grad_norm", **task.train_metrics}`` of this batch
      (``accuracy`` for the classification and language-model tasks).
    """
    key = dropout_key(state)
    if axis_name is not None:
        key = jax.random.fold_in(key, jax.lax.axis_index(axis_name))
    (loss, (outputs, new_model_state, scale)), grads = jax.value_and_grad(_device_loss, has_aux=True)(
        state.params, state, batch, key, label_smoothing, axis_name)
    metrics = jax.tree.map(lambda m: m * scale, state.task.train_metrics(outputs, batch))
    if axis_name is not None:
        grads, loss, metrics, new_model_state = jax.lax.pmean((grads, loss, metrics, new_model_state), axis_name)
    new_state = state.apply_gradients(grads, model_state=dict(new_model_state))
    return new_state, {"loss": loss, **metrics, "grad_norm": optax.tree.norm(grads)}


def with_batch_transform(step_fn, transform):
    """``step_fn(state, batch, axis_name=None)`` with on-device augmentation applied to the batch first.

    Args:
      step_fn: a train step ``(state, batch) -> (state, metrics)`` (e.g. :func:`train_step`).
      transform: ``transform(key, batch) -> batch`` (``zoo.data.images.make_batch_transform``).

    The key is ``fold_in(dropout_key(state), 0x5A)``: a function of the state's RNG and
    step only, so a resumed run augments exactly as an uninterrupted one.
    """
    def step(state, batch, axis_name=None):
        key = jax.random.fold_in(dropout_key(state), 0x5A)
        if axis_name is None:
            return step_fn(state, transform(key, batch))
        # pmap: each device augments its own slice, with its own draws
        key = jax.random.fold_in(key, jax.lax.axis_index(axis_name))
        return step_fn(state, transform(key, batch), axis_name=axis_name)

    return step


def eval_step(state: TrainState, batch: dict) -> dict:
    """The task's metric sums over the real examples of an eval batch (its schema plus ``"mask" [B]``)."""
    outputs = _task(state).apply(state.apply_fn, {"params": state.params, **state.model_state}, batch, train=False)
    return state.task.eval_sums(outputs, batch, batch["mask"])
