"""FedAvg: non-IID shards, one client = plain SGD, averaging weighted by client data size."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import zoo
from zoo.techniques.federated import dirichlet_split, fedavg_round, weighted_average
from zoo.train import create_train_state, train_step


@pytest.fixture(scope="module")
def template():
    return create_train_state(zoo.create_model("mlp", hidden_sizes=(32,)), optax.sgd(0.1), seed=0)


def data(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 64), np.float32), rng.integers(0, 10, n).astype(np.int32)


def test_dirichlet_split_is_a_label_skewed_partition():
    labels = np.repeat(np.arange(10), 100)
    shards = dirichlet_split(labels, 8, alpha=0.1, seed=0, min_size=20)
    assert np.array_equal(np.sort(np.concatenate(shards)), np.arange(1000))  # disjoint and complete
    assert min(len(s) for s in shards) >= 20
    top_share = [np.bincount(labels[s], minlength=10).max() / len(s) for s in shards]
    assert np.mean(top_share) > 0.5  # alpha 0.1: most of a client's data is one class (IID: 0.1)
    iid = dirichlet_split(labels, 8, alpha=1000.0, seed=0)
    assert max(np.bincount(labels[s], minlength=10).max() / len(s) for s in iid) < 0.2
    with pytest.raises(ValueError, match="exceeds the 1000 examples"):
        dirichlet_split(labels, 8, alpha=0.1, min_size=200)


def test_one_client_one_local_step_equals_plain_sgd(template):
    x, y = data(16)
    rng = template.rng
    batches = {"inputs": x[None, None], "label": y[None, None]}
    new_global = jax.jit(fedavg_round)(template, template.params, rng[None], batches, np.ones((1, 1), bool),
                                       jnp.array([16.0]))
    reference, _ = jax.jit(train_step)(template, {"inputs": x, "label": y})  # same params, same dropout key
    chex.assert_trees_all_close(new_global, reference.params, atol=1e-6, rtol=1e-6)


def test_averaging_is_weighted_by_client_data_size(template):
    # client 0 holds 3 batches of data and client 1 one batch; each makes one local epoch
    x, y = data(64, seed=1)
    xs = np.zeros((2, 3, 16, 64), np.float32)
    ys = np.zeros((2, 3, 16), np.int32)
    xs[0], ys[0] = x[:48].reshape(3, 16, 64), y[:48].reshape(3, 16)
    xs[1, 0], ys[1, 0] = x[48:], y[48:]
    active = np.array([[True, True, True], [True, False, False]])
    rngs = jnp.stack([template.rng, template.rng])
    new_global = jax.jit(fedavg_round)(template, template.params, rngs, {"inputs": xs, "label": ys}, active,
                                       jnp.array([48.0, 16.0]))

    step = jax.jit(train_step)
    client0 = template
    for s in range(3):
        client0, _ = step(client0, {"inputs": xs[0, s], "label": ys[0, s]})
    client1, _ = step(template, {"inputs": xs[1, 0], "label": ys[1, 0]})
    expected = jax.tree.map(lambda a, b: 0.75 * a + 0.25 * b, client0.params, client1.params)
    chex.assert_trees_all_close(new_global, expected, atol=1e-6, rtol=1e-5)
    unweighted = jax.tree.map(lambda a, b: 0.5 * a + 0.5 * b, client0.params, client1.params)
    assert not np.allclose(new_global["head"]["kernel"], unweighted["head"]["kernel"], atol=1e-5)


def test_weighted_average():
    stacked = {"w": jnp.array([[1.0, 2.0], [5.0, 10.0]])}
    np.testing.assert_allclose(weighted_average(stacked, jnp.array([3.0, 1.0]))["w"], [2.0, 4.0])
