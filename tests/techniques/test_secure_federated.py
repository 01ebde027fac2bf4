"""Secure aggregation inside FedAvg: same average as the plain round, dropouts recovered, refusal."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import zoo
from zoo.techniques.federated import FedAvgConfig, client_models, fedavg_round, run_fedavg, secure_fedavg_aggregate
from zoo.train import create_train_state


@pytest.fixture(scope="module")
def clients():
    """Three clients (48, 32, 16 examples) trained one local epoch from one global model."""
    template = create_train_state(zoo.create_model("mlp", hidden_sizes=(32,)), optax.sgd(0.1), seed=0)
    rng = np.random.default_rng(0)
    xs = rng.random((3, 3, 16, 64), np.float32)
    ys = rng.integers(0, 10, (3, 3, 16)).astype(np.int32)
    active = np.array([[1, 1, 1], [1, 1, 0], [1, 0, 0]], bool)
    rngs = jnp.stack([jax.random.key_data(jax.random.key(k)) for k in range(3)])
    batches = {"inputs": xs, "label": ys}
    sizes = np.array([48.0, 32.0, 16.0])
    models = jax.jit(client_models)(template, template.params, rngs, batches, active)
    return template, rngs, batches, active, sizes, models


def test_secure_round_equals_plain_weighted_average(clients):
    template, rngs, batches, active, sizes, models = clients
    plain = jax.jit(fedavg_round)(template, template.params, rngs, batches, active, jnp.asarray(sizes))
    secure = secure_fedavg_aggregate(template.params, models, sizes, round_index=0)
    chex.assert_trees_all_close(secure, plain, atol=1e-6, rtol=0)
    moved = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree.leaves(plain),
                                                               jax.tree.leaves(template.params)))
    assert moved > 1e-3  # the round did change the model, so the match is not trivial


def test_secure_round_with_a_dropped_client_averages_the_survivors(clients):
    template, rngs, batches, active, sizes, models = clients
    keep = np.array([0, 2])
    plain = jax.jit(fedavg_round)(template, template.params, rngs[keep], {k: v[keep] for k, v in batches.items()},
                                  active[keep], jnp.asarray(sizes[keep]))
    secure = secure_fedavg_aggregate(template.params, models, sizes, round_index=3, dropped=(1,))
    chex.assert_trees_all_close(secure, plain, atol=1e-6, rtol=0)


def test_run_fedavg_secure_learns_with_drops_and_refuses_below_threshold():
    cfg = FedAvgConfig(num_clients=6, client_fraction=0.5, rounds=2, dropout_clients=1, batch_size=32)
    secure = run_fedavg("mlp", cfg, centralised=False, secure_aggregation=True)
    assert all(len(r["dropped"]) == 1 and "refused" not in r for r in secure["rounds"])
    assert secure["accuracy"] > 0.2  # it learns (chance: 0.1)

    refused = run_fedavg("mlp", dataclasses.replace(cfg, rounds=1), centralised=False, secure_aggregation=True,
                         secagg_threshold=3)
    assert refused["rounds"][0]["refused"].startswith("round 1 refused: 2 of 3 clients survived")
    init = create_train_state(zoo.create_model("mlp"), optax.sgd(0.05), 0).params
    chex.assert_trees_all_equal(refused["params"], init)  # a refused round leaves the global model as it was
    with pytest.raises(ValueError, match=r"secagg_threshold must be in 2\.\.3"):
        run_fedavg("mlp", cfg, secure_aggregation=True, secagg_threshold=4)
    with pytest.raises(ValueError, match=r"dropout_clients must be in 0\.\.2"):
        FedAvgConfig(num_clients=6, client_fraction=0.5, dropout_clients=3)
