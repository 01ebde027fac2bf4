"""Train state: step, params, optimizer state, mutable model collections and the RNG."""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from zoo.registry import example_input
from zoo.tasks import Task, task_for


class TrainState(struct.PyTreeNode):
    """Everything a training step reads and writes.

    ``rng`` holds raw ``uint32`` key data (``jax.random.key_data``) so it
    checkpoints like any array; the dropout key of step ``s`` is
    ``fold_in(rng, s)``, so restoring ``rng`` and ``step`` restores the noise.
    """

    step: jax.Array  # int32 []
    params: Any
    opt_state: Any
    model_state: Any  # non-parameter variable collections, e.g. {"batch_stats": ...}; {} if none
    rng: jax.Array  # uint32 key data
    apply_fn: Callable = struct.field(pytree_node=False)
    tx: optax.GradientTransformation = struct.field(pytree_node=False)
    task: Task = struct.field(pytree_node=False, default=None)  # zoo.tasks: the batch schema, loss and metrics

    def apply_gradients(self, grads, **changes) -> "TrainState":
        updates, opt_state = self.tx.update(grads, self.opt_state, self.params)
        return self.replace(step=self.step + 1, params=optax.apply_updates(self.params, updates),
                            opt_state=opt_state, **changes)

    def checkpoint_items(self) -> dict:
        """The arrays a checkpoint stores."""
        return {"step": self.step, "params": self.params, "opt_state": self.opt_state,
                "model_state": self.model_state, "rng": self.rng}

    def with_checkpoint_items(self, items: dict) -> "TrainState":
        return self.replace(**items)


def create_train_state(model: nn.Module, tx: optax.GradientTransformation, seed: int) -> TrainState:
    """Initialises parameters and optimizer state.

    Args:
      model: a registry model (``model.config.input_shape`` gives the example input).
      tx: the optax optimizer.
      seed: seeds both initialisation and the dropout stream.
    """
    init_key, dropout_key = jax.random.split(jax.random.key(seed))
    variables = nn.meta.unbox(
        model.init({"params": init_key, "dropout": init_key}, example_input(model.config), train=False)
    )
    variables = dict(variables)
    params = variables.pop("params")
    variables.pop("intermediates", None)
    return TrainState(
        step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params), model_state=variables,
        rng=jax.random.key_data(dropout_key), apply_fn=model.apply, tx=tx, task=task_for(model),
    )


def with_initial_params(state: TrainState, params) -> TrainState:
    """``state`` starting from ``params`` (fresh optimizer state); ValueError unless tree and shapes match."""
    want = jax.tree.map(lambda x: (tuple(x.shape), jnp.dtype(x.dtype).name), state.params)
    got = jax.tree.map(lambda x: (tuple(jnp.shape(x)), jnp.dtype(jnp.result_type(x)).name), params)
    if jax.tree.structure(want) != jax.tree.structure(got) or want != got:
        flat_want = dict(jax.tree_util.tree_flatten_with_path(want)[0])
        flat_got = dict(jax.tree_util.tree_flatten_with_path(got)[0])
        diffs = [f"{jax.tree_util.keystr(k)}: model {flat_want.get(k)}, given {flat_got.get(k)}"
                 for k in sorted(set(flat_want) | set(flat_got), key=str) if flat_want.get(k) != flat_got.get(k)]
        raise ValueError("initial params do not match the model: " + "; ".join(diffs[:20]))
    params = jax.tree.map(jnp.asarray, params)
    return state.replace(params=params, opt_state=state.tx.init(params))
