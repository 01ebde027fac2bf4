"""Dense layer with logical axis names and separate compute / parameter dtypes."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from zoo.layers import axes


class Dense(nn.Module):
    """``y = x @ kernel + bias`` over the last axis: ``[..., D] -> [..., F]``.

    Parameters are ``kernel [D, F]`` and ``bias [F]``, the layout of Keras's
    and ``flax.linen.Dense``.

    Attributes:
      features: F.
      logical_axes: logical names of (D, F), for sharding rules.
      dtype: compute dtype; param_dtype: storage dtype.
    """

    features: int
    use_bias: bool = True
    logical_axes: Sequence[str] = (axes.EMBED, axes.MLP)
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32
    kernel_init: Callable = nn.initializers.glorot_uniform()
    bias_init: Callable = nn.initializers.zeros

    @nn.compact
    def __call__(self, x):  # [..., D] -> [..., F]
        kernel = self.param(
            "kernel", axes.with_logical_partitioning(self.kernel_init, tuple(self.logical_axes)),
            (x.shape[-1], self.features), self.param_dtype,
        )
        # lax.dot_general (what `@` lowers to) so op-intercepting libraries (qwix quantization) see it
        y = jax.lax.dot_general(x.astype(self.dtype), jnp.asarray(kernel, self.dtype),
                                (((x.ndim - 1,), (0,)), ((), ())))
        if self.use_bias:
            bias = self.param(
                "bias", axes.with_logical_partitioning(self.bias_init, (self.logical_axes[-1],)),
                (self.features,), self.param_dtype,
            )
            y = y + jnp.asarray(bias, self.dtype)
        return y
