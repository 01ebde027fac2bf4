"""The recommenders: parameter counts, bad configs, and one short MovieLens run per task that learns."""

import jax
import numpy as np
import optax
import pytest

import zoo
from zoo.data import BatchSchedule, load_dataset, train_batch
from zoo.train import create_train_state, eval_step, evaluate, train_step


def test_parameter_counts():
    # mf_tiny: user / item tables 64*8 + 96*8, bias tables 64 + 96, global bias 1
    assert zoo.param_count("mf_tiny") == 64 * 8 + 96 * 8 + 64 + 96 + 1
    # ncf_tiny: GMF tables (64 + 96) * 8, MLP tables (64 + 96) * (16 // 2), MLP 16 -> 8, head (8 + 8) -> 1
    assert zoo.param_count("ncf_tiny") == 160 * 8 + 160 * 8 + (16 * 8 + 8) + (16 + 1)
    # two_tower_tiny: tables (64 + 96) * 8; per tower 8 -> 16 -> 8; global bias
    assert zoo.param_count("two_tower_tiny") == 160 * 8 + 2 * ((8 * 16 + 16) + (16 * 8 + 8)) + 1
    assert zoo.param_count("two_tower_retrieval_tiny") == zoo.param_count("two_tower_tiny") - 1  # no bias
    # dlrm_tiny (no dense features): tables (64 + 96) * 8; top MLP over [e_u | e_i | e_u . e_i] = 17 -> 16; head
    assert zoo.param_count("dlrm_tiny") == 160 * 8 + (17 * 16 + 16) + (16 + 1)
    # dlrm: MovieLens tables padded to multiples of 8 rows (672 users, 9,072 items)
    variables = jax.eval_shape(lambda: zoo.init_variables(zoo.create_model("dlrm"), jax.random.key(0)))
    assert variables["params"]["item_embedding"].shape == (9072, 32)


@pytest.mark.parametrize("overrides, message", [
    ({"task": "classification"}, r"task must be one of \('rating', 'ranking'\)"),
    ({"num_items": 0}, "num_items must be positive"),
    ({"input_shape": (3,)}, r"input_shape must be \(2,\)"),
    ({"num_dense": -1}, "num_dense must be a non-negative int"),
])
def test_bad_configs(overrides, message):
    with pytest.raises(ValueError, match=message):
        zoo.create_model("dlrm_tiny", **overrides)


def test_movielens_needs_tables_that_cover_its_ids():
    with pytest.raises(ValueError, match=r"movielens has 671 users; the model's num_users=64 table is too small"):
        load_dataset("movielens", zoo.get_config("mf_tiny"))
    with pytest.raises(ValueError, match=r"movielens takes one argument, negatives=K"):
        load_dataset("movielens:negatives=x", zoo.get_config("ncf"))


def _train(name, data, steps, lr, **overrides):
    model = zoo.create_model(name, **overrides)
    dataset = load_dataset(data, model.config)
    state = create_train_state(model, optax.adam(lr), seed=0)
    step, schedule = jax.jit(train_step), BatchSchedule(dataset.num_train, 256, 0)
    for s in range(steps):
        state, _ = step(state, train_batch(dataset, schedule, s))
    return dataset, evaluate(jax.jit(eval_step), state, dataset.test, 256)


def test_short_runs_learn_on_movielens():
    dataset, metrics = _train("mf", "movielens", 300, 5e-3, hidden_size=8)
    ratings = dataset.test["rating"]
    global_mean = float(np.sqrt(np.mean((ratings - dataset.train["rating"].mean()) ** 2)))  # 1.05
    assert metrics["rmse"] < global_mean - 0.08
    _, metrics = _train("ncf", "movielens:negatives=1", 300, 2e-3, hidden_size=8, hidden_sizes=(16, 8))
    assert metrics["hr@10"] > 0.3 > 10 / 101  # a random ranking: HR@10 = 10/101
    assert 0 < metrics["ndcg@10"] < metrics["hr@10"]
