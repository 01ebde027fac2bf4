"""zoo's BatchNorm against flax.linen.BatchNorm: the same numbers, and the same error without a mutable batch_stats."""

import chex
import flax
import flax.linen as nn
import jax
import numpy as np
import pytest

from zoo.layers.norms import BatchNorm


@pytest.fixture
def x():
    return np.asarray(jax.random.normal(jax.random.key(0), (6, 4, 4, 3))) * 2 + 1


def _init(module, x):
    return nn.meta.unbox(module.init(jax.random.key(1), x, **_eval(module)))


def _eval(module):
    return {"train": False} if isinstance(module, BatchNorm) else {"use_running_average": True}


def _train(module):
    return {"train": True} if isinstance(module, BatchNorm) else {"use_running_average": False}


@pytest.mark.parametrize("module", [BatchNorm(), nn.BatchNorm(momentum=0.9, epsilon=1e-5)], ids=["zoo", "flax"])
def test_training_without_mutable_batch_stats_raises(module, x):
    with pytest.raises(flax.errors.ModifyScopeVariableError, match="batch_stats"):
        module.apply(_init(module, x), x, **_train(module))


def test_training_matches_flax_and_updates_the_running_statistics(x):
    ours, theirs = BatchNorm(), nn.BatchNorm(momentum=0.9, epsilon=1e-5)
    y, updated = ours.apply(_init(ours, x), x, train=True, mutable=["batch_stats"])
    y_ref, updated_ref = theirs.apply(_init(theirs, x), x, use_running_average=False, mutable=["batch_stats"])
    chex.assert_trees_all_close(y, y_ref, atol=1e-5)
    chex.assert_trees_all_close(nn.meta.unbox(updated)["batch_stats"], updated_ref["batch_stats"], atol=1e-6)
    chex.assert_trees_all_close(updated["batch_stats"]["mean"], 0.1 * x.mean((0, 1, 2)), atol=1e-6)
