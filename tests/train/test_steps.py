"""train_step / eval_step: loss arithmetic, masking, compile-once, dropout RNG stream."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

import zoo
from zoo.train import create_train_state, cross_entropy_loss, eval_step, train_step


def test_cross_entropy_and_its_float32_upcast():
    logits = jnp.array([[2.0, 0.0], [0.0, 0.0]], jnp.bfloat16)
    loss = cross_entropy_loss(logits, jnp.array([0, 1]))
    expected = (np.log1p(np.exp(-2.0)) + np.log(2.0)) / 2
    assert loss.dtype == jnp.float32
    np.testing.assert_allclose(loss, expected, rtol=1e-6)


def test_eval_step_counts_only_unmasked_examples():
    model = zoo.create_model("mlp")
    state = create_train_state(model, optax.sgd(0.1), seed=0)
    x = np.random.default_rng(0).random((4, 64), dtype=np.float32)
    y = np.array([1, 2, 3, 4], np.int32)
    full = eval_step(state, {"inputs": x, "label": y, "mask": np.ones(4, np.float32)})
    half = eval_step(state, {"inputs": x, "label": y, "mask": np.array([1, 1, 0, 0], np.float32)})
    first_two = eval_step(state, {"inputs": x[:2], "label": y[:2], "mask": np.ones(2, np.float32)})
    assert float(full["count"]) == 4 and float(half["count"]) == 2
    chex.assert_trees_all_close(half, first_two, rtol=1e-6)


def test_train_step_compiles_once_and_draws_new_dropout_noise_each_step():
    model = zoo.create_model("mlp", dropout_rate=0.5)
    state = create_train_state(model, optax.sgd(0.0), seed=0)  # lr 0: params fixed, only the noise moves
    batch = {"inputs": np.ones((8, 64), np.float32), "label": np.zeros(8, np.int32)}
    step = jax.jit(chex.assert_max_traces(train_step, n=1))
    losses = []
    for _ in range(3):
        state, metrics = step(state, batch)
        losses.append(float(metrics["loss"]))
    assert int(state.step) == 3
    assert len(set(losses)) == 3  # fold_in(rng, step) gives each step its own dropout mask
    again = create_train_state(model, optax.sgd(0.0), seed=0)
    _, first = jax.jit(train_step)(again, batch)
    assert float(first["loss"]) == losses[0]  # and the stream is reproducible from the seed
