"""A short in-memory training loop shared by examples/forecast.py and examples/anomaly.py.

(``zoo train`` / ``train_and_evaluate`` is the full loop with checkpoints and resume;
these examples train dozens of small models in one run, so they keep them in memory.)
"""

import jax
import numpy as np
import optax

import zoo
from zoo.data import BatchSchedule, train_batch
from zoo.train import create_train_state, train_step


def fit(model, dataset, *, steps: int, batch_size: int = 64, lr: float = 1e-3, seed: int = 0,
        weight_decay: float = 0.0, decay_mask=None):
    """Trains ``model`` on ``dataset.train`` with Adam(W) and cosine decay; returns the state and the loss curve.

    ``decay_mask``: optax's ``mask`` of the weight decay (a function of the params: True where to decay).
    """
    batch_size = min(batch_size, dataset.num_train)
    schedule = optax.cosine_decay_schedule(lr, steps)
    tx = (optax.adamw(schedule, weight_decay=weight_decay, mask=decay_mask) if weight_decay
          else optax.adam(schedule))
    state = create_train_state(model, tx, seed=seed)
    batches = BatchSchedule(dataset.num_train, batch_size, seed)
    step = jax.jit(train_step)
    losses = []
    for s in range(steps):
        state, metrics = step(state, train_batch(dataset, batches, s))
        losses.append(float(metrics["loss"]))
    return state, np.array(losses)


def predict(state, inputs, batch_size: int = 512) -> np.ndarray:
    """The model's outputs on ``inputs`` ``[N, ...]`` (eval mode), batched."""
    apply = jax.jit(lambda params, model_state, x: state.apply_fn({"params": params, **model_state}, x, train=False))
    return np.concatenate([np.asarray(apply(state.params, state.model_state, inputs[i:i + batch_size]))
                           for i in range(0, len(inputs), batch_size)])


def param_count(model) -> int:
    return zoo.param_count(model)
