"""Loss, metrics and the train / eval steps (pure functions; the loop jits them)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from zoo.train import tasks
from zoo.train.state import TrainState


def cross_entropy_loss(logits, labels):
    """Mean softmax cross-entropy of ``[B, K]`` logits against ``[B]`` int labels, in float32."""
    return optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), labels).mean()


def accuracy(logits, labels):
    """Fraction of ``[B]`` labels equal to the argmax of ``[B, K]`` logits."""
    return jnp.mean(jnp.argmax(logits, -1) == labels)


def train_step(state: TrainState, batch: dict) -> tuple[TrainState, dict]:
    """One optimizer step on ``batch = {"x": [B, ...], "y": [B]}`` (other tasks: see ``zoo.train.tasks``).

    Returns:
      the new state and ``{"loss", "accuracy", "grad_norm"}`` of this batch.
    """
    dropout_key = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)
    mutable = list(state.model_state)

    def loss_fn(params):
        variables = {"params": params, **state.model_state}
        out = state.apply_fn(variables, batch["x"], train=True, rngs={"dropout": dropout_key},
                             mutable=mutable or False, **tasks.model_kwargs(batch))
        logits, new_model_state = out if mutable else (out, state.model_state)
        if state.task != "classification":
            return tasks.loss(state.task, logits, batch["y"]), (logits, new_model_state)
        return cross_entropy_loss(logits, batch["y"]), (logits, new_model_state)

    (loss, (logits, new_model_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    new_state = state.apply_gradients(grads, model_state=dict(new_model_state))
    acc = (accuracy(logits, batch["y"]) if state.task == "classification"
           else tasks.accuracy(state.task, logits, batch["y"]))
    metrics = {"loss": loss, "accuracy": acc, "grad_norm": optax.tree.norm(grads)}
    return new_state, metrics


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
