"""2-D convolution and pooling with CPU-friendly hand-written gradients.

XLA's CPU backend computes the backward pass of ``lax.conv_general_dilated``
slowly (the filter gradient especially), fuses elementwise producers into dot
operands (which turns a fast library GEMM into a slow loop nest), and gives
``reduce_window`` max pooling a slow ``select_and_scatter`` gradient.  The
``matmul`` implementation below computes the same stride-1 convolution
(same parameters, same outputs up to float summation order, so weights move
freely between implementations and to Keras / PyTorch) with a custom VJP:

* few input channels (``KH * KW * C`` small, e.g. a grayscale / RGB first
  layer): the forward pass is a sum of ``KH * KW`` shifted broadcast products,
  one elementwise loop that XLA fuses with the bias, ReLU and pooling that
  follow; the filter gradient is one GEMM against the ``[KH*KW*C, N]`` patches.
  :class:`Conv2D` passes its bias into this custom VJP, and a row of ones appended
  to the patches makes the same GEMM return the bias gradient (else XLA spends a
  second full pass over the output gradient, recomputing it, on the bias sum).
* otherwise: ``im2col`` built with a single row gather (much faster on XLA CPU
  than a channel concatenate), one ``[N, KH*KW*C] @ [KH*KW*C, F]`` GEMM
  forward, one GEMM for the filter gradient and XLA's own transposed
  convolution for the input gradient.

Peak scratch memory matters as much as the arithmetic: XLA CPU allocates a
jitted program's temporaries as one arena per call, and once that exceeds
glibc's largest mmap threshold (32 MiB) every call page-faults all of it (the
seed CNN at batch 128 spent ~40% of its step in the kernel).  So the backward
passes rebuild cheap operands late instead of keeping them alive (see
:func:`_after`) and the pooling keeps only an ``int8`` argmax.  Both GEMM
operands are kept row-major: a transposed operand sends XLA CPU to a much
slower dot.

Shapes: ``x [B, H, W, C]``, ``kernel [KH, KW, C, F]`` (HWIO, as Keras and
``flax.linen.Conv``), output ``[B, H - KH + 1, W - KW + 1, F]`` for VALID.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from zoo.layers import axes

CONV_IMPLS = ("auto", "matmul", "xla")
_DIMENSION_NUMBERS = ("NHWC", "HWIO", "NHWC")
_barrier = lax.optimization_barrier
# Up to this many taps x input channels the forward pass is elementwise.
_ELEMENTWISE_MAX_TAPS = 27


def _after(x, dep):
    """``x`` with a data dependence on ``dep``, so XLA schedules its users after ``dep`` exists.

    (Optimization barriers are dropped before scheduling, so they cannot order work.)
    Adds a zero computed from ``dep`` (exact; a zero even where ``dep`` is not finite).
    """
    d = dep.reshape(-1)[0]
    return x + (jnp.where(jnp.isfinite(d), d, 0) * 0).astype(x.dtype)


def _offsets(kh: int, kw: int):
    return [(i, j) for i in range(kh) for j in range(kw)]


def _window(x, i: int, j: int, ho: int, wo: int):
    return x[:, i:i + ho, j:j + wo, :]  # [B, Ho, Wo, C]


def _patch_rows(h: int, w: int, kh: int, kw: int) -> np.ndarray:
    """Row indices into ``x.reshape(B, H*W, C)`` of the ``[Ho*Wo*KH*KW]`` patch entries."""
    ho, wo = h - kh + 1, w - kw + 1
    oh, ow = np.arange(ho)[:, None, None, None], np.arange(wo)[None, :, None, None]
    di, dj = np.arange(kh)[None, None, :, None], np.arange(kw)[None, None, None, :]
    return ((oh + di) * w + ow + dj).reshape(-1).astype(np.int32)


def _im2col(x, kh: int, kw: int):
    """``[B, H, W, C] -> [B * Ho * Wo, KH * KW * C]`` patches (tap-major, channel-minor)."""
    b, h, w, c = x.shape
    ho, wo = h - kh + 1, w - kw + 1
    rows = jnp.asarray(_patch_rows(h, w, kh, kw))
    patches = jnp.take(x.reshape(b, h * w, c), rows, axis=1, mode="clip")  # [B, Ho*Wo*KH*KW, C]
    return patches.reshape(b * ho * wo, kh * kw * c)


def _conv_transpose_input(g, kernel, dtype):
    """Gradient of a VALID stride-1 conv w.r.t. its input (XLA's transposed conv)."""
    kh, kw = kernel.shape[:2]
    return lax.conv_general_dilated(
        g, jnp.swapaxes(kernel[::-1, ::-1], 2, 3), (1, 1), ((kh - 1, kh - 1), (kw - 1, kw - 1)),
        dimension_numbers=_DIMENSION_NUMBERS,
    ).astype(dtype)


# --------------------------------------------------------------------------
# few input channels: elementwise forward, GEMM filter gradient


def _conv_elementwise(x, kernel, bias):
    kh, kw, c, _ = kernel.shape
    ho, wo = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    acc = jnp.promote_types(x.dtype, jnp.float32)  # accumulate bf16 / f16 in f32, as a GEMM does
    y = None
    for i, j in _offsets(kh, kw):
        win = _window(x, i, j, ho, wo).astype(acc)
        for ch in range(c):
            term = win[..., ch:ch + 1] * kernel[i, j, ch].astype(acc)  # [B, Ho, Wo, F]
            y = term if y is None else y + term
    return (y + bias.astype(acc)).astype(x.dtype)


def _tap_major_patches_and_ones(x, kh: int, kw: int):
    """``[KH*KW*C + 1, B*Ho*Wo]``: one contiguous row per (tap, channel), then a row of ones
    (so a GEMM against ``g`` also yields the bias gradient)."""
    b, h, w, c = x.shape
    ho, wo = h - kh + 1, w - kw + 1
    xt = jnp.moveaxis(x, 3, 0)  # [C, B, H, W]
    rows = [xt[:, :, i:i + ho, j:j + wo] for i, j in _offsets(kh, kw)]  # KH*KW x [C, B, Ho, Wo]
    rows.append(jnp.ones((1, b, ho, wo), x.dtype))
    return jnp.concatenate(rows, axis=0).reshape(-1, b * ho * wo)


@jax.custom_vjp
def _conv_small_bias(x, kernel, bias):
    return _conv_elementwise(x, kernel, bias)


def _conv_small_bias_fwd(x, kernel, bias):
    return _conv_elementwise(x, kernel, bias), (x, kernel, bias)


def _conv_small_bias_bwd(residuals, g):
    """Filter and bias gradients from one GEMM of the late-built patches (plus a row of ones)
    against ``g``, instead of a second pass over ``g`` for the bias; input gradient by XLA."""
    x, kernel, bias = residuals
    kh, kw, c, f = kernel.shape
    x = _after(x, g)
    g2 = _barrier(g.reshape(-1, f))  # [N, F], materialised once
    patches_t = _barrier(_tap_major_patches_and_ones(x, kh, kw))  # [KH*KW*C + 1, N]
    dkb = patches_t @ g2  # [KH*KW*C + 1, F]
    dkernel, dbias = dkb[:-1].reshape(kernel.shape), dkb[-1]
    dx = _conv_transpose_input(g, kernel, x.dtype)
    return dx, dkernel.astype(kernel.dtype), dbias.astype(bias.dtype)


_conv_small_bias.defvjp(_conv_small_bias_fwd, _conv_small_bias_bwd)


# --------------------------------------------------------------------------
# general case: im2col GEMMs


def _conv_gemm_fwd_impl(x, kernel):
    kh, kw, c, f = kernel.shape
    b, h, w, _ = x.shape
    ho, wo = h - kh + 1, w - kw + 1
    patches = _barrier(_im2col(x, kh, kw))  # [N, KH*KW*C]
    y = patches @ kernel.reshape(kh * kw * c, f)
    return y.reshape(b, ho, wo, f), patches


@jax.custom_vjp
def _conv_gemm(x, kernel):
    return _conv_gemm_fwd_impl(x, kernel)[0]


def _conv_gemm_fwd(x, kernel):
    y, patches = _conv_gemm_fwd_impl(x, kernel)
    return y, (kernel, patches)  # not x: the patches hold all of it


def _conv_gemm_bwd(residuals, g):
    kernel, patches = residuals
    kh, kw, c, f = kernel.shape
    g = _barrier(g)
    dx = _conv_transpose_input(g, kernel, patches.dtype)
    dx, g = _barrier((dx, g))  # one big operation at a time keeps the scratch arena small
    g_t = _barrier(g.reshape(-1, f).T)  # [F, N]: both GEMM operands row-major (a transposed
    # operand sends XLA CPU to a much slower dot); patches [N, KH*KW*C]
    dkernel = _barrier(g_t @ patches).T.reshape(kernel.shape)
    return dx, dkernel.astype(kernel.dtype)


_conv_gemm.defvjp(_conv_gemm_fwd, _conv_gemm_bwd)


def conv2d(x, kernel, *, padding: str = "VALID", impl: str = "auto"):
    """Stride-1 2-D convolution (cross-correlation, as Keras / PyTorch / Flax).

    Args:
      x: ``[B, H, W, C]`` input.
      kernel: ``[KH, KW, C, F]`` filters.
      padding: ``"VALID"`` or ``"SAME"`` (zero padding, output keeps ``H, W``).
      impl: ``"matmul"`` (GEMMs with a GEMM backward, fast on CPU),
        ``"xla"`` (``lax.conv_general_dilated``: cuDNN on GPU) or ``"auto"``
        (``matmul`` on the CPU backend, ``xla`` elsewhere).

    Returns:
      ``[B, Ho, Wo, F]``.
    """
    return _conv2d(x, kernel, None, padding=padding, impl=impl)


def _conv2d(x, kernel, bias, *, padding: str, impl: str):
    """:func:`conv2d` plus an optional ``[F]`` bias (fused into the few-channel path's custom VJP)."""
    if impl not in CONV_IMPLS:
        raise ValueError(f"conv impl must be one of {CONV_IMPLS}, got {impl!r}")
    if padding not in ("VALID", "SAME"):
        raise ValueError(f"padding must be 'VALID' or 'SAME', got {padding!r}")
    if x.ndim != 4 or kernel.ndim != 4 or x.shape[-1] != kernel.shape[2]:
        raise ValueError(
            f"conv2d expects x [B, H, W, C] and kernel [KH, KW, C, F] with matching C, "
            f"got x {x.shape} and kernel {kernel.shape}"
        )
    if impl == "auto":
        impl = "matmul" if jax.default_backend() == "cpu" else "xla"
    if impl == "xla":
        y = lax.conv_general_dilated(x, kernel, (1, 1), padding, dimension_numbers=_DIMENSION_NUMBERS)
        return y if bias is None else y + bias
    kh, kw, c, _ = kernel.shape
    if padding == "SAME":
        x = jnp.pad(x, ((0, 0), ((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2), (0, 0)))
    if x.shape[1] < kh or x.shape[2] < kw:
        raise ValueError(f"input spatial size {x.shape[1:3]} is smaller than the kernel {kernel.shape[:2]}")
    if kh * kw * c <= _ELEMENTWISE_MAX_TAPS:
        return _conv_small_bias(x, kernel, jnp.zeros(kernel.shape[-1], kernel.dtype) if bias is None else bias)
    y = _conv_gemm(x, kernel)
    return y if bias is None else y + bias


# --------------------------------------------------------------------------
# pooling


def _pool_windows(x, window: int):
    b, h, w, c = x.shape
    return x.reshape(b, h // window, window, w // window, window, c)


@partial(jax.custom_vjp, nondiff_argnums=(1,))
def _max_pool(x, window: int):  # x [B, Ho*k, Wo*k, C]
    return _pool_windows(x, window).max(axis=(2, 4))


def _max_pool_fwd(x, window):
    xw = _pool_windows(x, window)  # [B, Ho, k, Wo, k, C]
    # window position of the first maximum, as int8: the only residual.  It comes from a
    # running comparison of the window's values, not from `xw == max(xw)`: XLA fuses x's
    # producer (the conv) into both sides and may round it differently in each, and a
    # missed equality sent the gradient to the wrong element.
    idx_dtype = jnp.int8 if window * window <= 127 else jnp.int32
    running = xw[:, :, 0, :, 0, :]
    best = jnp.zeros(running.shape, idx_dtype)
    for pos in range(1, window * window):
        a, c = divmod(pos, window)
        value = xw[:, :, a, :, c, :]
        better = value > running
        best = jnp.where(better, jnp.asarray(pos, idx_dtype), best)
        running = jnp.maximum(value, running)
    return xw.max(axis=(2, 4)), best


def _max_pool_bwd(window, best, g):
    b, ho, wo, c = g.shape
    pos = (lax.broadcasted_iota(best.dtype, (1, 1, window, 1, window, 1), 2) * window
           + lax.broadcasted_iota(best.dtype, (1, 1, window, 1, window, 1), 4))
    dx = jnp.where(best[:, :, None, :, None, :] == pos, g[:, :, None, :, None, :], jnp.zeros((), g.dtype))
    return (dx.reshape(b, ho * window, wo * window, c),)


_max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)


def max_pool(x, window: int):
    """Non-overlapping ``window x window`` max pooling, VALID (floor) like Keras.

    The gradient goes to the first maximum of each window (as XLA's
    ``reduce_window`` and PyTorch); it is computed from an ``int8`` argmax
    saved by the forward pass, an elementwise select instead of XLA CPU's
    slow ``select_and_scatter``.

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
    return _max_pool(x[:, :ho * window, :wo * window, :], int(window))


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
    impl: str = "auto"
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
        bias = None
        if self.use_bias:
            bias = self.param(
                "bias", nn.with_logical_partitioning(self.bias_init, (axes.CONV_OUT,)), (self.features,), self.param_dtype
            )
            bias = jnp.asarray(bias, self.dtype)
        return _conv2d(x, kernel, bias, padding=self.padding, impl=self.impl)
