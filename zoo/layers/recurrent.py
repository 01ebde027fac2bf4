"""LSTM layer with Keras's parameter layout, scanned with ``jax.lax.scan``.

Parameters (gate order i, f, c, o, as Keras):
  ``kernel [D, 4H]``, ``recurrent_kernel [H, 4H]``, ``bias [4H]``.
That is ``4 * (H * (D + H) + H)`` parameters: the count Keras reports, so the
seed's ``LSTM(128)`` layers match Keras exactly, and weights convert from
Keras by copy and from ``torch.nn.LSTM`` (gate order i, f, g, o; two biases)
by transpose and bias sum.

The layer has a hand-written VJP (the classic LSTM
backward pass, checked against autodiff of a plain loop): the forward pass keeps
the gate activations, cell states and ``tanh`` of the cell states; the backward
pass does one GEMM per step, and the weight gradients are one
``[x | h_{t-1} | 1]^T @ dz`` GEMM over all steps instead of a small product per
step.  With ``unroll`` covering the sequence (the default), the layer runs
straight-line code with one ``[x_t | h_{t-1}] @ [kernel; recurrent_kernel]``
GEMM per step (and ``dz_t @ [kernel; recurrent_kernel]^T`` backward), so the
steps of stacked layers interleave; otherwise the input projection of all
steps is one GEMM and the recurrence a ``lax.scan``.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from zoo.layers import axes
from zoo.layers.explicit import keep_batch_sharding

_barrier = lax.optimization_barrier


def _keras_bias_init(hidden: int, param_dtype):
    """Zeros with the forget-gate slice set to one (Keras's ``unit_forget_bias``)."""

    def init(key, shape, dtype=param_dtype):
        del key
        return jnp.zeros(shape, dtype).at[hidden:2 * hidden].set(1)

    return init


def _runtime_one(like):
    """A 1.0 that XLA cannot constant-fold (``0 * like[0, 0] + 1``, finite-guarded).

    Dividing a loop-carried elementwise chain by it is exact, and makes the chain
    "expensive" for XLA's fusion heuristics, so XLA materialises each step's value
    instead of fusing the whole unrolled chain into every consumer and recomputing
    it (quadratic work).  ``lax.optimization_barrier`` does not prevent that fusion
    on XLA CPU.
    """
    v = like.reshape(-1)[0]
    return jnp.where(jnp.isfinite(v), v, 0) * 0 + 1


_GATE_SCALE = (0.5, 0.5, 1.0, 0.5)  # sigmoid(z) = 0.5 + 0.5 * tanh(z / 2); gate c is tanh(z)
_GATE_SHIFT = (0.5, 0.5, 0.0, 0.5)


def _activations(z):
    """Pre-activations ``[B, 4H]`` (i, f, c, o) -> activations ``[B, 4, H]``: sigmoid, tanh for c.

    One ``tanh`` per element (the sigmoids as ``0.5 + 0.5 * tanh(z / 2)``): XLA CPU's
    tanh is a cheap polynomial, its logistic an exp and a divide.
    """
    batch, width = z.shape
    scale = jnp.asarray(_GATE_SCALE, z.dtype).reshape(1, 4, 1)
    shift = jnp.asarray(_GATE_SHIFT, z.dtype).reshape(1, 4, 1)
    return jnp.tanh(z.reshape(batch, 4, width // 4) * scale) * scale + shift


def _cell(z, c, one):
    """One forward step from pre-activations ``z [B, 4H]`` and cell ``c [B, H]`` (None = zeros)."""
    a = _activations(z)  # [B, 4, H]
    i, f, g, o = a[:, 0], a[:, 1], a[:, 2], a[:, 3]
    c_new = i * g if c is None else f * c + i * g
    c_new = c_new / one  # materialise the cell state (see _runtime_one)
    tc = jnp.tanh(c_new)
    return o * tc, c_new, a, tc


def _cell_backward(dh, dc_next, a, c_prev, tc, one):
    """Backward of one step: -> (dz [B, 4H], cotangent of the previous cell state)."""
    batch, _, hidden = a.shape
    i, f, g, o = a[:, 0], a[:, 1], a[:, 2], a[:, 3]
    dc = dh * o * (1 - tc * tc)
    if dc_next is not None:
        dc = dc + dc_next
    # Stacked on a middle axis (one loop writing [B, 4, H]); a last-axis concatenate or
    # per-gate selects are 3-5x slower on XLA CPU.
    dz = jnp.stack([dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g * g),
                    dh * tc * o * (1 - o)], axis=1).reshape(batch, 4 * hidden)
    return dz, (dc * f) / one  # materialise the cell carry (see _runtime_one)


def _scan_forward(x_proj, recurrent_kernel, unroll: int):
    """``lax.scan`` forward: ``x_proj [T, B, 4H]`` -> ``hs [T, B, H]`` and residuals (a, c, tanh c)."""
    batch, hidden = x_proj.shape[1], recurrent_kernel.shape[0]
    one = _runtime_one(recurrent_kernel)

    def step(carry, z_t):
        h, c = carry
        h, c, a, tc = _cell(z_t + h @ recurrent_kernel, c, one)
        return (h, c), (h, a, c, tc)

    zeros = jnp.zeros((batch, hidden), x_proj.dtype)
    _, (hs, acts, cs, tcs) = lax.scan(step, (zeros, zeros), x_proj, unroll=unroll)
    return hs, acts, cs, tcs


def _scan_backward(acts, cs, tcs, recurrent_kernel, dhs, unroll: int):
    """``lax.scan`` backward -> ``dz [T, B, 4H]`` (gradient of the pre-activations)."""
    rk_t = recurrent_kernel.T  # [4H, H]
    one = _runtime_one(recurrent_kernel)
    batch, hidden = cs.shape[1:]
    c_prev = jnp.concatenate([jnp.zeros_like(cs[:1]), cs[:-1]])  # c_{t-1}

    def step(carry, inputs):
        dh_next, dc_next = carry
        dh_t, a_t, cp_t, tc_t = inputs
        dz, dc = _cell_backward(dh_t + dh_next, dc_next, a_t, cp_t, tc_t, one)
        return (dz @ rk_t, dc), dz

    zeros = jnp.zeros((batch, hidden), dhs.dtype)
    _, dz = lax.scan(step, (zeros, zeros), (dhs, acts, c_prev, tcs), reverse=True, unroll=unroll)
    return dz


def _shifted_hidden(hs):
    """``[T, B, H]`` -> ``[T*B, H]`` of h_{t-1} (zeros at t = 0)."""
    steps, batch, hidden = hs.shape
    return jnp.concatenate([jnp.zeros_like(hs[:1]), hs[:-1]]).reshape(steps * batch, hidden)


# -- whole layer: projection + recurrence (LSTM) ------------------------------


def _project(x, kernel, bias):
    steps, batch, features = x.shape
    return (x.reshape(steps * batch, features) @ kernel + bias).reshape(steps, batch, kernel.shape[1])


def _forward_steps(x, kernel, recurrent_kernel, bias):
    """Unrolled layer forward with one ``[x_t | h_{t-1}] @ [kernel; recurrent_kernel]`` GEMM per step.

    Per-step products (instead of one projection GEMM up front) let step t of this layer
    start as soon as step t of the layer below is done: stacked layers then run as two
    interleaved chains, which keeps both cores busy; and a GEMM with the longer
    ``D + H`` contraction is cheaper than the two it replaces.
    """
    one = _runtime_one(recurrent_kernel)
    weights = jnp.concatenate([kernel, recurrent_kernel], axis=0)  # [D + H, 4H]
    h = c = None
    outs = []
    for t in range(x.shape[0]):
        u = x[t] if h is None else jnp.concatenate([x[t], h], axis=1)
        z = u @ (kernel if h is None else weights) + bias
        h, c, a, tc = _cell(z, c, one)
        outs.append((h, a, c, tc))
    hs, acts, cs, tcs = (list(xs) for xs in zip(*outs))
    return jnp.stack(hs), acts, cs, tcs


def _backward_steps(acts, cs, tcs, kernel, recurrent_kernel, dhs):
    """Unrolled layer backward: ``dz [T, B, 4H]`` and ``dx [T, B, D]``, one GEMM per step."""
    features = kernel.shape[0]
    weights = jnp.concatenate([kernel, recurrent_kernel], axis=0)  # [D + H, 4H]
    one = _runtime_one(recurrent_kernel)
    steps = len(cs)
    dh_next = dc_next = None
    dzs, dxs = [None] * steps, [None] * steps
    for t in reversed(range(steps)):
        dh = dhs[t] if dh_next is None else dhs[t] + dh_next
        c_prev = cs[t - 1] if t else jnp.zeros_like(cs[0])
        dzs[t], dc_next = _cell_backward(dh, dc_next, acts[t], c_prev, tcs[t], one)
        if t:
            du = dzs[t] @ weights.T  # [B, D + H] = [dx_t | dh_{t-1}]
            dxs[t], dh_next = du[:, :features], du[:, features:]
        else:
            dxs[t] = dzs[t] @ kernel.T
    return jnp.stack(dzs), jnp.stack(dxs)


@partial(jax.custom_vjp, nondiff_argnums=(4,))
def _lstm_layer(x, kernel, recurrent_kernel, bias, unroll):  # x [T, B, D] -> hs [T, B, H]
    if unroll >= x.shape[0]:
        return _forward_steps(x, kernel, recurrent_kernel, bias)[0]
    return _scan_forward(_project(x, kernel, bias), recurrent_kernel, unroll)[0]


def _lstm_layer_fwd(x, kernel, recurrent_kernel, bias, unroll):
    if unroll >= x.shape[0]:
        hs, acts, cs, tcs = _forward_steps(x, kernel, recurrent_kernel, bias)
    else:
        hs, acts, cs, tcs = _scan_forward(_project(x, kernel, bias), recurrent_kernel, unroll)
    return hs, (x, kernel, hs, acts, cs, tcs, recurrent_kernel)


def _lstm_layer_bwd(unroll, residuals, dhs):
    x, kernel, hs, acts, cs, tcs, recurrent_kernel = residuals
    steps, batch, features = x.shape
    hidden = hs.shape[-1]
    if unroll >= steps:
        dz, dx = _backward_steps(acts, cs, tcs, kernel, recurrent_kernel, dhs)
    else:
        dz = _scan_backward(acts, cs, tcs, recurrent_kernel, dhs, unroll)
        dx = None
    dz = dz.reshape(steps * batch, 4 * hidden)
    # [dkernel; drecurrent_kernel; dbias] = [x | h_{t-1} | 1]^T dz: one GEMM over all steps.
    lhs = _barrier(jnp.concatenate([
        x.reshape(steps * batch, features), _shifted_hidden(hs), jnp.ones((steps * batch, 1), dz.dtype),
    ], axis=1).T)  # [D + H + 1, T*B]
    dw = lhs @ dz  # [D + H + 1, 4H]
    if dx is None:
        dx = (dz @ kernel.T).reshape(steps, batch, features)
    return (dx, dw[:features].astype(kernel.dtype),
            dw[features:features + hidden].astype(recurrent_kernel.dtype), dw[-1].astype(kernel.dtype))


_lstm_layer.defvjp(_lstm_layer_fwd, _lstm_layer_bwd)


def _normalize_unroll(unroll, steps: int) -> int:
    if unroll is True:
        return max(steps, 1)
    if unroll is False:
        return 1
    return int(unroll)


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
            "kernel", axes.with_logical_partitioning(self.kernel_init, (axes.EMBED, axes.GATES)),
            (x.shape[-1], 4 * hidden), self.param_dtype,
        )
        recurrent_kernel = self.param(
            "recurrent_kernel", axes.with_logical_partitioning(self.recurrent_init, (axes.MLP, axes.GATES)),
            (hidden, 4 * hidden), self.param_dtype,
        )
        bias = self.param(
            "bias", axes.with_logical_partitioning(_keras_bias_init(hidden, self.param_dtype), (axes.GATES,)),
            (4 * hidden,), self.param_dtype,
        )
        unroll = _normalize_unroll(self.unroll, x.shape[1])

        def layer(x, kernel, recurrent_kernel, bias):
            # Time-major inside: transpose the narrow input / output, not the 4H-wide projections.
            hs = _lstm_layer(jnp.swapaxes(x, 0, 1), kernel, recurrent_kernel, bias, unroll)  # [T, B, H]
            return jnp.swapaxes(hs, 0, 1) if self.return_sequences else hs[-1]

        # its custom VJP merges T and B in reshapes: under Explicit mesh axes it runs with them Auto
        return keep_batch_sharding(layer, x.astype(self.dtype), jnp.asarray(kernel, self.dtype),
                                   jnp.asarray(recurrent_kernel, self.dtype), jnp.asarray(bias, self.dtype),
                                   out_ndim=3 if self.return_sequences else 2)
