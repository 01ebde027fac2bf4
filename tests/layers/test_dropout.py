"""zoo's Dropout is flax.linen.Dropout (same masks for the same rng) that also runs under Explicit mesh axes."""

import chex
import flax.linen as nn
import jax
import numpy as np
from jax.sharding import PartitionSpec as P

from zoo.layers import Dropout


class _Two(nn.Module):
    """Two dropouts in one module: their auto names (Dropout_0, Dropout_1) pick their rng streams."""
    cls: type

    @nn.compact
    def __call__(self, x):
        return self.cls(0.3)(x, deterministic=False) + self.cls(0.6)(x, deterministic=False)


def test_same_masks_as_flax_dropout():
    x = np.ones((8, 16), np.float32)
    rngs = {"dropout": jax.random.key(5)}
    ours = _Two(Dropout).apply({}, x, rngs=rngs)
    chex.assert_trees_all_equal(ours, _Two(nn.Dropout).apply({}, x, rngs=rngs))
    assert 0 < float((ours == 0).mean()) < 1


def test_mask_takes_the_input_sharding_under_explicit_axes():
    x = np.ones((8, 16), np.float32)
    with jax.set_mesh(jax.make_mesh((8,), ("data",))):
        y = jax.jit(lambda x: Dropout(0.5).apply({}, x, deterministic=False, rngs={"dropout": jax.random.key(0)}))(
            jax.device_put(x, P("data")))
    assert y.sharding.spec == P("data", None)
    assert set(np.unique(np.asarray(y))) == {0.0, 2.0}
