"""Optimizer factory: schedules, clipping, weight decay, config validation."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from zoo.train import OptimizerConfig, make_optimizer, make_schedule


def test_warmup_then_cosine_reaches_the_floor():
    cfg = OptimizerConfig(learning_rate=1.0, schedule="cosine", warmup_steps=10, min_lr_ratio=0.1)
    lr = make_schedule(cfg, total_steps=110)
    np.testing.assert_allclose([lr(0), lr(5), lr(10), lr(60), lr(110)], [0.0, 0.5, 1.0, 0.55, 0.1], atol=1e-6)


def test_constant_schedule_with_warmup():
    lr = make_schedule(OptimizerConfig(learning_rate=0.2, warmup_steps=4), total_steps=100)
    np.testing.assert_allclose([lr(0), lr(2), lr(4), lr(99)], [0.0, 0.1, 0.2, 0.2], atol=1e-7)


def _one_update(cfg, grads, params):
    tx = make_optimizer(cfg, total_steps=10)
    updates, _ = tx.update(grads, tx.init(params), params)
    return updates


def test_sgd_update_is_minus_lr_times_grad():
    params, grads = {"w": jnp.ones(3)}, {"w": jnp.array([1.0, -2.0, 0.5])}
    out = _one_update(OptimizerConfig(name="sgd", learning_rate=0.1, momentum=0.0), grads, params)
    np.testing.assert_allclose(out["w"], [-0.1, 0.2, -0.05], rtol=1e-6)


def test_global_norm_clipping():
    params, grads = {"w": jnp.zeros(2)}, {"w": jnp.array([3.0, 4.0])}  # norm 5
    out = _one_update(OptimizerConfig(name="sgd", learning_rate=1.0, momentum=0.0, clip_norm=1.0), grads, params)
    np.testing.assert_allclose(out["w"], [-0.6, -0.8], rtol=1e-6)


def test_weight_decay_l2_for_sgd_and_decoupled_for_adamw():
    params, grads = {"w": jnp.array([2.0])}, {"w": jnp.array([0.0])}
    sgd = _one_update(OptimizerConfig(name="sgd", learning_rate=0.5, momentum=0.0, weight_decay=0.1), grads, params)
    np.testing.assert_allclose(sgd["w"], [-0.5 * 0.1 * 2.0], rtol=1e-6)
    adamw = _one_update(OptimizerConfig(name="adamw", learning_rate=0.5, weight_decay=0.1), grads, params)
    np.testing.assert_allclose(adamw["w"], [-0.5 * 0.1 * 2.0], rtol=1e-6)  # zero grad: only the decay moves w


def test_adam_uses_keras_epsilon():
    params, grads = {"w": jnp.zeros(1)}, {"w": jnp.array([1e-3])}
    out = _one_update(OptimizerConfig(learning_rate=1.0), grads, params)
    ref_tx = optax.adam(1.0, eps=1e-7)
    ref, _ = ref_tx.update(grads, ref_tx.init(params), params)
    np.testing.assert_allclose(out["w"], ref["w"], rtol=1e-6)


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "lion"}, "optimizer must be one of"),
    ({"schedule": "step"}, "schedule must be one of"),
    ({"learning_rate": 0.0}, "learning_rate must be > 0"),
    ({"momentum": 1.0}, r"momentum must be in \[0, 1\)"),
    ({"clip_norm": -1.0}, "clip_norm must be > 0"),
    ({"warmup_steps": -3}, "warmup_steps must be >= 0"),
])
def test_bad_optimizer_config(kwargs, message):
    with pytest.raises(ValueError, match=message):
        OptimizerConfig(**kwargs)
