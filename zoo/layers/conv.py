"""2-D convolution and pooling whose gradients are matrix products.

XLA's CPU backend computes the backward pass of ``lax.conv_general_dilated``
slowly (the filter gradient especially), and fuses elementwise producers into
dot operands, which turns a fast library GEMM into a slow loop nest.  The
``matmul`` implementation below writes a stride-1 convolution as a sum of
``kh * kw`` shifted matrix products and gives it a hand-written VJP made of
matrix products too; optimization barriers keep the GEMM operands
materialised.  The result is the same convolution (same parameters, same
outputs up to float summation order), so weights move freely between
implementations and to Keras / PyTorch.

Shapes: ``x [B, H, W, C]``, ``kernel [KH, KW, C, F]`` (HWIO, as Keras and
``flax.linen.Conv``), output ``[B, H - KH + 1, W - KW + 1, F]`` for VALID.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from zoo.layers import axes

CONV_IMPLS = ("matmul", "xla")
_DIMENSION_NUMBERS = ("NHWC", "HWIO", "NHWC")
_barrier = lax.optimization_barrier


def _offsets(kh: int, kw: int):
    return [(i, j) for i in range(kh) for j in range(kw)]


def _window(x, i: int, j: int, ho: int, wo: int):
    return x[:, i:i + ho, j:j + wo, :]  # [B, Ho, Wo, C]


def _conv_shifted_matmuls(x, kernel):
    kh, kw = kernel.shape[:2]
    ho, wo = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    y = None
    for i, j in _offsets(kh, kw):
        term = _barrier(_window(x, i, j, ho, wo)) @ kernel[i, j]  # [B, Ho, Wo, F]
        y = term if y is None else y + term
    return y


@jax.custom_vjp
def _conv_matmul(x, kernel):
    return _conv_shifted_matmuls(x, kernel)


def _conv_matmul_fwd(x, kernel):
    return _conv_shifted_matmuls(x, kernel), (x, kernel)


def _conv_matmul_bwd(residuals, g):
    x, kernel = residuals
    kh, kw = kernel.shape[:2]
    height, width = x.shape[1], x.shape[2]
    ho, wo = g.shape[1], g.shape[2]
    g = _barrier(g)  # [B, Ho, Wo, F]
    dkernel = jnp.stack([
        jnp.einsum("bhwc,bhwf->cf", _barrier(_window(x, i, j, ho, wo)), g)
        for i, j in _offsets(kh, kw)
    ]).reshape(kernel.shape)
    dx = None
    for i, j in _offsets(kh, kw):
        part = _barrier(g @ kernel[i, j].T)  # [B, Ho, Wo, C]
        part = jnp.pad(part, ((0, 0), (i, height - ho - i), (j, width - wo - j), (0, 0)))
        dx = part if dx is None else dx + part
    return dx.astype(x.dtype), dkernel.astype(kernel.dtype)


_conv_matmul.defvjp(_conv_matmul_fwd, _conv_matmul_bwd)


def conv2d(x, kernel, *, padding: str = "VALID", impl: str = "matmul"):
    """Stride-1 2-D convolution (cross-correlation, as Keras / PyTorch / Flax).

    Args:
      x: ``[B, H, W, C]`` input.
      kernel: ``[KH, KW, C, F]`` filters.
      padding: ``"VALID"`` or ``"SAME"`` (zero padding, output keeps ``H, W``).
      impl: ``"matmul"`` (shifted GEMMs with a GEMM backward, fast on CPU) or
        ``"xla"`` (``lax.conv_general_dilated``).

    Returns:
      ``[B, Ho, Wo, F]``.
    """
    if impl not in CONV_IMPLS:
        raise ValueError(f"conv impl must be one of {CONV_IMPLS}, got {impl!r}")
    if padding not in ("VALID", "SAME"):
        raise ValueError(f"padding must be 'VALID' or 'SAME', got {padding!r}")
    if x.ndim != 4 or kernel.ndim != 4 or x.shape[-1] != kernel.shape[2]:
        raise ValueError(
            f"conv2d expects x [B, H, W, C] and kernel [KH, KW, C, F] with matching C, "
            f"got x {x.shape} and kernel {kernel.shape}"
        )
    if impl == "xla":
        return lax.conv_general_dilated(x, kernel, (1, 1), padding, dimension_numbers=_DIMENSION_NUMBERS)
    if padding == "SAME":
        kh, kw = kernel.shape[:2]
        x = jnp.pad(x, ((0, 0), ((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2), (0, 0)))
    if x.shape[1] < kernel.shape[0] or x.shape[2] < kernel.shape[1]:
        raise ValueError(f"input spatial size {x.shape[1:3]} is smaller than the kernel {kernel.shape[:2]}")
    return _conv_matmul(x, kernel)


def max_pool(x, window: int):
    """Non-overlapping ``window x window`` max pooling, VALID (floor) like Keras.

    Written as reshape + max so that its gradient is elementwise (XLA's CPU
    ``select_and_scatter`` for ``reduce_window`` is slow).

    Args:
      x: ``[B, H, W, C]``.
      window: pool size and stride.

    Returns:
      ``[B, H // window, W // window, C]``.
    """
    b, h, w, c = x.shape
    ho, wo = h // window, w // window
    if ho == 0 or wo == 0:
        raise ValueError(f"max_pool window {window} is larger than the input's spatial size {(h, w)}")
    x = x[:, :ho * window, :wo * window, :]
    return x.reshape(b, ho, window, wo, window, c).max(axis=(2, 4))


class Conv2D(nn.Module):
    """Stride-1 convolution layer with Keras/Flax-compatible ``kernel`` and ``bias``.

    Attributes:
      features: output channels F.
      kernel_size: (KH, KW).
      padding: "VALID" or "SAME".
      impl: see :func:`conv2d`.
      dtype: compute dtype; param_dtype: storage dtype of the parameters.
    """

    features: int
    kernel_size: Sequence[int] = (3, 3)
    padding: str = "VALID"
    impl: str = "matmul"
    use_bias: bool = True
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32
    kernel_init: Callable = nn.initializers.glorot_uniform()
    bias_init: Callable = nn.initializers.zeros

    @nn.compact
    def __call__(self, x):  # [B, H, W, C] -> [B, Ho, Wo, F]
        kh, kw = self.kernel_size
        kernel = self.param(
            "kernel",
            nn.with_logical_partitioning(self.kernel_init, (axes.CONV_WINDOW, axes.CONV_WINDOW, axes.CONV_IN, axes.CONV_OUT)),
            (kh, kw, x.shape[-1], self.features),
            self.param_dtype,
        )
        x, kernel = x.astype(self.dtype), jnp.asarray(kernel, self.dtype)
        y = conv2d(x, kernel, padding=self.padding, impl=self.impl)
        if self.use_bias:
            bias = self.param(
                "bias", nn.with_logical_partitioning(self.bias_init, (axes.CONV_OUT,)), (self.features,), self.param_dtype
            )
            y = y + jnp.asarray(bias, self.dtype)
        return y
