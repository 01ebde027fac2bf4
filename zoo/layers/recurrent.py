"""LSTM layer with Keras's parameter layout, scanned with ``jax.lax.scan``.

Parameters (gate order i, f, c, o, as Keras):
  ``kernel [D, 4H]``, ``recurrent_kernel [H, 4H]``, ``bias [4H]``.
That is ``4 * (H * (D + H) + H)`` parameters: the count Keras reports, so the
seed's ``LSTM(128)`` layers match Keras exactly, and weights convert from
Keras by copy and from ``torch.nn.LSTM`` (gate order i, f, g, o; two biases)
by transpose and bias sum.

The input projection of all time steps is one GEMM before the scan; only the
recurrent product runs inside it.
"""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from zoo.layers import axes


def _keras_bias_init(hidden: int, param_dtype):
    """Zeros with the forget-gate slice set to one (Keras's ``unit_forget_bias``)."""

    def init(key, shape, dtype=param_dtype):
        del key
        return jnp.zeros(shape, dtype).at[hidden:2 * hidden].set(1)

    return init


def lstm_scan(x_proj, recurrent_kernel, *, unroll: int | bool = 1):
    """Runs the LSTM recurrence over projected inputs.

    Args:
      x_proj: ``[B, T, 4H]`` = ``x @ kernel + bias`` for every step.
      recurrent_kernel: ``[H, 4H]``.
      unroll: how many steps ``lax.scan`` unrolls (``True`` = all).

    Returns:
      ``[B, T, H]`` hidden states.
    """
    batch, hidden = x_proj.shape[0], recurrent_kernel.shape[0]
    init = (jnp.zeros((batch, hidden), x_proj.dtype), jnp.zeros((batch, hidden), x_proj.dtype))

    def step(carry, z_t):  # z_t [B, 4H]
        h, c = carry
        z = z_t + h @ recurrent_kernel
        i, f, g, o = jnp.split(z, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h

    _, hs = jax.lax.scan(step, init, jnp.swapaxes(x_proj, 0, 1), unroll=unroll)  # [T, B, H]
    return jnp.swapaxes(hs, 0, 1)


class LSTM(nn.Module):
    """A Keras-compatible LSTM layer: ``[B, T, D] -> [B, T, H]`` or ``[B, H]``.

    Attributes:
      features: hidden size H.
      return_sequences: return every step's hidden state, else only the last.
      unroll: ``lax.scan`` unroll factor (``True`` unrolls fully: fastest for
        short sequences).
      dtype: compute dtype; param_dtype: storage dtype.
    """

    features: int
    return_sequences: bool = False
    unroll: int | bool = True
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32
    kernel_init: Callable = nn.initializers.glorot_uniform()
    recurrent_init: Callable = nn.initializers.orthogonal()

    @nn.compact
    def __call__(self, x):  # [B, T, D]
        hidden = self.features
        kernel = self.param(
            "kernel", nn.with_logical_partitioning(self.kernel_init, (axes.EMBED, axes.GATES)),
            (x.shape[-1], 4 * hidden), self.param_dtype,
        )
        recurrent_kernel = self.param(
            "recurrent_kernel", nn.with_logical_partitioning(self.recurrent_init, (axes.MLP, axes.GATES)),
            (hidden, 4 * hidden), self.param_dtype,
        )
        bias = self.param(
            "bias", nn.with_logical_partitioning(_keras_bias_init(hidden, self.param_dtype), (axes.GATES,)),
            (4 * hidden,), self.param_dtype,
        )
        x = x.astype(self.dtype)
        x_proj = x @ jnp.asarray(kernel, self.dtype) + jnp.asarray(bias, self.dtype)  # [B, T, 4H]
        hs = lstm_scan(x_proj, jnp.asarray(recurrent_kernel, self.dtype), unroll=self.unroll)  # [B, T, H]
        return hs if self.return_sequences else hs[:, -1]
