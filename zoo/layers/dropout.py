"""Dropout that also runs under Explicit mesh axes (the mask is drawn with its input's sharding)."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from zoo.layers.explicit import sharding_spec


class Dropout(nn.Module):
    """``flax.linen.Dropout`` with the same fields, names and random numbers: ``[...] -> [...]``.

    The one difference: under a mesh with Explicit axes the keep mask is drawn
    with the input's sharding (``flax.linen.Dropout`` draws it replicated, and
    the select of a replicated mask with a sharded input is a ``ShardingTypeError``).

    Attributes:
      rate: the probability of zeroing an element; kept ones are scaled by ``1 / (1 - rate)``.
      deterministic: no dropout (set here or at the call).
      rng_collection: the rng stream of the mask.
    """

    rate: float
    deterministic: bool | None = None
    rng_collection: str = "dropout"

    @nn.compact
    def __call__(self, inputs, deterministic: bool | None = None, rng: jax.Array | None = None):
        deterministic = nn.merge_param("deterministic", self.deterministic, deterministic)
        if self.rate == 0.0 or deterministic:
            return inputs
        if self.rate == 1.0:  # no 0 / 0 in the gradient
            return jnp.zeros_like(inputs)
        keep_prob = 1.0 - self.rate
        if rng is None:
            rng = self.make_rng(self.rng_collection)
        mask = jax.random.bernoulli(rng, p=keep_prob, shape=inputs.shape, out_sharding=sharding_spec(inputs))
        return lax.select(mask, inputs / keep_prob, jnp.zeros_like(inputs))


__all__ = ["Dropout"]
