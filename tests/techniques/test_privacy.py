"""DP-SGD: per-example gradients and clipping, calibrated noise, accounting, and the training extension."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import zoo
from zoo.techniques.privacy import clip_per_example, compute_epsilon, dp_aggregate, per_example_grads, per_example_norms
from zoo.train import create_train_state
from zoo.train.steps import loss_fn


@pytest.fixture(scope="module")
def cnn_state_and_batch():
    model = zoo.create_model("seed_cnn")
    state = create_train_state(model, optax.sgd(0.1), seed=0)
    x = zoo.random_input(model.config, jax.random.key(1), 6) * 4.0
    return state, {"inputs": x, "label": jnp.arange(6, dtype=jnp.int32)}


@pytest.fixture(scope="module")
def cnn_per_example(cnn_state_and_batch):
    state, batch = cnn_state_and_batch
    return jax.jit(per_example_grads)(state, batch)


def test_per_example_grads_average_to_the_batch_gradient(cnn_state_and_batch, cnn_per_example):
    state, batch = cnn_state_and_batch
    grads, losses, _ = cnn_per_example
    chex.assert_shape(grads["conv_0"]["kernel"], (6, 3, 3, 1, 32))
    (loss, _), batch_grad = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(state.params, state, batch,
                                                                                jax.random.key(0))
    chex.assert_trees_all_close(jax.tree.map(lambda g: g.mean(0), grads), batch_grad, atol=1e-6)
    np.testing.assert_allclose(losses.mean(), loss, rtol=1e-6)


def test_every_per_example_gradient_is_clipped_to_the_bound(cnn_per_example):
    grads, _, _ = cnn_per_example
    norms = per_example_norms(grads)
    bound = float(jnp.median(norms))  # half the examples exceed it
    clipped, before = clip_per_example(grads, bound)
    after = per_example_norms(clipped)
    np.testing.assert_allclose(before, norms)
    big = np.asarray(norms > bound)
    assert 0 < big.sum() < 6
    np.testing.assert_allclose(after[big], bound, rtol=1e-5)  # clipped ones sit on the bound
    np.testing.assert_allclose(after[~big], norms[~big], rtol=1e-6)  # the others are untouched


def test_noise_has_the_configured_standard_deviation():
    clip, sigma, batch = 0.5, 1.1, 4
    tx = dp_aggregate(clip, sigma, seed=3)
    grads = {"w": jnp.zeros((batch, 200_000))}
    state = tx.init({"w": jnp.zeros(200_000)})
    noise1, state = tx.update(grads, state)
    noise2, _ = tx.update(grads, state)
    std = sigma * clip / batch  # N(0, sigma^2 C^2) on the sum, divided by the batch size
    assert float(jnp.std(noise1["w"])) == pytest.approx(std, rel=0.01)
    assert abs(float(jnp.mean(noise1["w"]))) < 4 * std / np.sqrt(200_000)
    assert not np.allclose(noise1["w"], noise2["w"])  # a fresh draw each step
    # with no noise it is the mean of the clipped gradients
    exact, _ = dp_aggregate(1.0, 0.0, seed=0).update({"w": jnp.array([[3.0, 4.0], [0.3, 0.4]])},
                                                     dp_aggregate(1.0, 0.0, 0).init(None))
    np.testing.assert_allclose(exact["w"], [(0.6 + 0.3) / 2, (0.8 + 0.4) / 2], rtol=1e-6)


def test_accountant_on_abadi_et_al_2016():
    """Abadi et al.: sigma 1.1, q = 256/60000, 60 epochs (14,062 steps), delta 1e-5; the paper reports eps ~ 3
    with its moments accountant (looser than today's accountants)."""
    setting = dict(noise_multiplier=1.1, sampling_rate=256 / 60000, steps=60 * 60000 // 256, delta=1e-5)
    rdp, pld = compute_epsilon(accountant="rdp", **setting), compute_epsilon(accountant="pld", **setting)
    assert rdp == pytest.approx(2.597, abs=0.005)
    assert pld == pytest.approx(2.382, abs=0.01)
    assert compute_epsilon(**{**setting, "steps": 60 * 60000 // 256 // 2}) < rdp
    assert compute_epsilon(**{**setting, "noise_multiplier": 0.0}) == float("inf")


def test_dp_sgd_under_pmap_trains_like_one_device():
    """Issue 19.7: the DP-SGD step takes pmap's axis_name; the devices gather the per-example
    gradients, so clipping, the one noise draw and the division by the global batch (and each
    example's dropout mask) are those of one device."""
    from zoo.parallel import ParallelConfig
    from zoo.techniques.privacy import DPSGD
    from zoo.train import make_run_strategy, train_step

    model = zoo.create_model("mlp")  # dropout on: its masks must match too
    ext = DPSGD(noise_multiplier=1.0, l2_clip=0.5)
    tx = ext.wrap_optimizer(optax.sgd(0.1), 2)
    step_fn = ext.train_step(train_step, label_smoothing=0.0)
    rng = np.random.default_rng(0)
    batches = [{"inputs": rng.random((16, 64), np.float32), "label": rng.integers(0, 10, 16).astype(np.int32)}
               for _ in range(2)]
    results = []
    for parallel in (ParallelConfig(), ParallelConfig(strategy="pmap")):
        strategy = make_run_strategy(parallel, model, tx, 0, 16, step_fn=step_fn)
        state, losses = strategy.create_state(), []
        for batch in batches:
            state, metrics = strategy.train_step(state, batch)
            losses.append(float(metrics["loss"]))
        results.append((losses, jax.device_get(strategy.checkpoint_items(state)["params"])))
    (ref_losses, ref_params), (losses, params) = results
    assert strategy.data_parallel == 8
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-5)
    chex.assert_trees_all_close(params, ref_params, rtol=1e-5, atol=1e-6)
