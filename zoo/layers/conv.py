"""2-D convolution and pooling with CPU-friendly hand-written gradients.

XLA's CPU backend computes the backward pass of ``lax.conv_general_dilated``
slowly (the filter gradient especially), fuses elementwise producers into dot
operands (which turns a fast library GEMM into a slow loop nest), and gives
``reduce_window`` max pooling a slow ``select_and_scatter`` gradient.  The
``matmul`` implementation below computes the same convolution
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

Strides and explicit zero padding (PyTorch's ``padding=p`` included) work on
every path: the padding is a ``jnp.pad`` in front, the patches are taken with
the stride, and the input gradient is XLA's transposed convolution.  A 1x1
convolution is a single GEMM of the (strided) pixels.  Max pooling also takes
overlapping strided windows with ``-inf`` padding (ResNet's 3x3 stride-2 stem
pool), keeping the same int8-argmax backward.

Shapes: ``x [B, H, W, C]``, ``kernel [KH, KW, C, F]`` (HWIO, as Keras and
``flax.linen.Conv``), output ``[B, (H + pad - KH) // SH + 1, (W + pad - KW) // SW + 1, F]``.
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
from zoo.layers.explicit import keep_batch_sharding, with_logical_constraint

CONV_IMPLS = ("auto", "matmul", "xla")
_DIMENSION_NUMBERS = ("NHWC", "HWIO", "NHWC")
_barrier = lax.optimization_barrier
# Up to this many taps x input channels the forward pass is elementwise.
_ELEMENTWISE_MAX_TAPS = 27
# Below this many input channels (and above the elementwise path) the im2col row gather moves rows too
# short to be efficient: a 3x3 conv of 16 channels at 28x28, batch 128, ran 3x faster as lax.conv on
# XLA CPU (forward + backward), one of 32 channels at 13x13 1.6x faster as GEMMs.
_GEMM_MIN_CHANNELS = 32


def _after(x, dep):
    """``x`` with a data dependence on ``dep``, so XLA schedules its users after ``dep`` exists.

    (Optimization barriers are dropped before scheduling, so they cannot order work.)
    Adds a zero computed from ``dep`` (exact; a zero even where ``dep`` is not finite).
    """
    d = dep.reshape(-1)[0]
    return x + (jnp.where(jnp.isfinite(d), d, 0) * 0).astype(x.dtype)


def _offsets(kh: int, kw: int):
    return [(i, j) for i in range(kh) for j in range(kw)]


def _out_size(n: int, k: int, s: int) -> int:
    """Output length of a VALID window ``k`` with stride ``s`` over ``n`` positions."""
    return (n - k) // s + 1


def _window(x, i: int, j: int, ho: int, wo: int, strides=(1, 1)):
    sh, sw = strides
    return x[:, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw, :]  # [B, Ho, Wo, C]


def _patch_rows(h: int, w: int, kh: int, kw: int, strides=(1, 1)) -> np.ndarray:
    """Row indices into ``x.reshape(B, H*W, C)`` of the ``[Ho*Wo*KH*KW]`` patch entries."""
    sh, sw = strides
    ho, wo = _out_size(h, kh, sh), _out_size(w, kw, sw)
    oh, ow = np.arange(ho)[:, None, None, None], np.arange(wo)[None, :, None, None]
    di, dj = np.arange(kh)[None, None, :, None], np.arange(kw)[None, None, None, :]
    return ((oh * sh + di) * w + ow * sw + dj).reshape(-1).astype(np.int32)


def _im2col(x, kh: int, kw: int, strides=(1, 1)):
    """``[B, H, W, C] -> [B * Ho * Wo, KH * KW * C]`` patches (tap-major, channel-minor)."""
    b, h, w, c = x.shape
    ho, wo = _out_size(h, kh, strides[0]), _out_size(w, kw, strides[1])
    rows = jnp.asarray(_patch_rows(h, w, kh, kw, strides))
    patches = jnp.take(x.reshape(b, h * w, c), rows, axis=1, mode="clip")  # [B, Ho*Wo*KH*KW, C]
    return patches.reshape(b * ho * wo, kh * kw * c)


def _conv_transpose_input(g, kernel, x_shape, strides, dtype):
    """Gradient of a VALID conv with ``strides`` w.r.t. its ``x_shape`` input (XLA's transposed conv)."""
    kh, kw = kernel.shape[:2]
    if strides == (1, 1):
        return lax.conv_general_dilated(
            g, jnp.swapaxes(kernel[::-1, ::-1], 2, 3), (1, 1), ((kh - 1, kh - 1), (kw - 1, kw - 1)),
            dimension_numbers=_DIMENSION_NUMBERS,
        ).astype(dtype)

    def forward(x):
        return lax.conv_general_dilated(x, kernel, strides, "VALID", dimension_numbers=_DIMENSION_NUMBERS)

    (dx,) = jax.linear_transpose(forward, jax.ShapeDtypeStruct(x_shape, g.dtype))(g)
    return dx.astype(dtype)


# --------------------------------------------------------------------------
# few input channels: elementwise forward, GEMM filter gradient


def _conv_elementwise(x, kernel, bias, strides):
    kh, kw, c, _ = kernel.shape
    ho, wo = _out_size(x.shape[1], kh, strides[0]), _out_size(x.shape[2], kw, strides[1])
    acc = jnp.promote_types(x.dtype, jnp.float32)  # accumulate bf16 / f16 in f32, as a GEMM does
    y = None
    for i, j in _offsets(kh, kw):
        win = _window(x, i, j, ho, wo, strides).astype(acc)
        for ch in range(c):
            term = win[..., ch:ch + 1] * kernel[i, j, ch].astype(acc)  # [B, Ho, Wo, F]
            y = term if y is None else y + term
    return (y + bias.astype(acc)).astype(x.dtype)


def _tap_major_patches_and_ones(x, kh: int, kw: int, strides):
    """``[KH*KW*C + 1, B*Ho*Wo]``: one contiguous row per (tap, channel), then a row of ones
    (so a GEMM against ``g`` also yields the bias gradient)."""
    b, h, w, c = x.shape
    (sh, sw) = strides
    ho, wo = _out_size(h, kh, sh), _out_size(w, kw, sw)
    xt = jnp.moveaxis(x, 3, 0)  # [C, B, H, W]
    rows = [xt[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw]
            for i, j in _offsets(kh, kw)]  # KH*KW x [C, B, Ho, Wo]
    rows.append(jnp.ones((1, b, ho, wo), x.dtype))
    return jnp.concatenate(rows, axis=0).reshape(-1, b * ho * wo)


@partial(jax.custom_vjp, nondiff_argnums=(3,))
def _conv_small_bias(x, kernel, bias, strides):
    return _conv_elementwise(x, kernel, bias, strides)


def _conv_small_bias_fwd(x, kernel, bias, strides):
    return _conv_elementwise(x, kernel, bias, strides), (x, kernel, bias)


def _conv_small_bias_bwd(strides, residuals, g):
    """Filter and bias gradients from one GEMM of the late-built patches (plus a row of ones)
    against ``g``, instead of a second pass over ``g`` for the bias; input gradient by XLA."""
    x, kernel, bias = residuals
    kh, kw, c, f = kernel.shape
    x = _after(x, g)
    g2 = _barrier(g.reshape(-1, f))  # [N, F], materialised once
    patches_t = _barrier(_tap_major_patches_and_ones(x, kh, kw, strides))  # [KH*KW*C + 1, N]
    dkb = patches_t @ g2  # [KH*KW*C + 1, F]
    dkernel, dbias = dkb[:-1].reshape(kernel.shape), dkb[-1]
    dx = _conv_transpose_input(g, kernel, x.shape, strides, x.dtype)
    return dx, dkernel.astype(kernel.dtype), dbias.astype(bias.dtype)


_conv_small_bias.defvjp(_conv_small_bias_fwd, _conv_small_bias_bwd)


# --------------------------------------------------------------------------
# general case: im2col GEMMs


def _conv_gemm_fwd_impl(x, kernel, strides):
    kh, kw, c, f = kernel.shape
    b, h, w, _ = x.shape
    ho, wo = _out_size(h, kh, strides[0]), _out_size(w, kw, strides[1])
    patches = _barrier(_im2col(x, kh, kw, strides))  # [N, KH*KW*C]
    y = patches @ kernel.reshape(kh * kw * c, f)
    return y.reshape(b, ho, wo, f), patches


@partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv_gemm(x, kernel, strides, x_shape):
    return _conv_gemm_fwd_impl(x, kernel, strides)[0]


def _conv_gemm_fwd(x, kernel, strides, x_shape):
    y, patches = _conv_gemm_fwd_impl(x, kernel, strides)
    return y, (kernel, patches)  # not x: the patches hold all of it


def _conv_gemm_bwd(strides, x_shape, residuals, g):
    kernel, patches = residuals
    kh, kw, c, f = kernel.shape
    g = _barrier(g)
    dx = _conv_transpose_input(g, kernel, x_shape, strides, patches.dtype)
    dx, g = _barrier((dx, g))  # one big operation at a time keeps the scratch arena small
    g_t = _barrier(g.reshape(-1, f).T)  # [F, N]: both GEMM operands row-major (a transposed
    # operand sends XLA CPU to a much slower dot); patches [N, KH*KW*C]
    dkernel = _barrier(g_t @ patches).T.reshape(kernel.shape)
    return dx, dkernel.astype(kernel.dtype)


_conv_gemm.defvjp(_conv_gemm_fwd, _conv_gemm_bwd)


Padding = Any  # "VALID" | "SAME" | int | ((top, bottom), (left, right))


def _pairs(value, name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in pair):
        raise ValueError(f"{name} must be a positive int or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


def _explicit_padding(padding: Padding, in_hw, kernel_hw, strides) -> tuple[tuple[int, int], tuple[int, int]]:
    """``padding`` as ``((top, bottom), (left, right))`` zero padding."""
    if isinstance(padding, str):
        if padding not in ("VALID", "SAME"):
            raise ValueError(f"padding must be 'VALID', 'SAME', an int or ((top, bottom), (left, right)), "
                             f"got {padding!r}")
        return tuple(tuple(p) for p in lax.padtype_to_pads(in_hw, kernel_hw, strides, padding))
    if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool) and padding >= 0:
        return ((int(padding),) * 2,) * 2
    try:
        pads = tuple(tuple(int(v) for v in pair) for pair in padding)
    except TypeError:
        pads = ()
    if len(pads) != 2 or any(len(p) != 2 or min(p) < 0 for p in pads):
        raise ValueError(f"padding must be 'VALID', 'SAME', an int >= 0 or ((top, bottom), (left, right)) of "
                         f"ints >= 0, got {padding!r}")
    return pads


def conv2d(x, kernel, *, strides=1, padding: Padding = "VALID", impl: str = "auto"):
    """2-D convolution (cross-correlation, as Keras / PyTorch / Flax).

    Args:
      x: ``[B, H, W, C]`` input.
      kernel: ``[KH, KW, C, F]`` filters.
      strides: an int or ``(SH, SW)``.
      padding: ``"VALID"``, ``"SAME"`` (TensorFlow's: output ``ceil(H / SH)``, the odd
        pixel at the bottom/right), an int ``p`` (``p`` zeros on every side, PyTorch's
        ``padding=p``) or ``((top, bottom), (left, right))``.
      impl: ``"matmul"`` (GEMMs with a GEMM backward, fast on CPU),
        ``"xla"`` (``lax.conv_general_dilated``: cuDNN on GPU) or ``"auto"``
        (``matmul`` on the CPU backend where it is faster: few taps x channels,
        1x1 kernels, or >= 32 input channels; ``xla`` otherwise and on GPU/TPU).

    Returns:
      ``[B, Ho, Wo, F]`` with ``Ho = (H + top + bottom - KH) // SH + 1`` (likewise ``Wo``).
    """
    return _conv2d(x, kernel, None, strides=strides, padding=padding, impl=impl)


def _conv2d(x, kernel, bias, *, strides=1, padding: Padding = "VALID", impl: str = "auto"):
    # the GEMM paths reshape the batch dim together with others and have custom VJPs: under
    # Explicit mesh axes they run with the axes made Auto, the output sharded on B as x
    conv = partial(_conv2d_any_mesh, strides=strides, padding=padding, impl=impl)
    if bias is None:
        return keep_batch_sharding(lambda x, k: conv(x, k, None), x, kernel, out_ndim=4)
    return keep_batch_sharding(conv, x, kernel, bias, out_ndim=4)


def _conv2d_any_mesh(x, kernel, bias, *, strides=1, padding: Padding = "VALID", impl: str = "auto"):
    """:func:`conv2d` plus an optional ``[F]`` bias (fused into the few-channel path's custom VJP)."""
    if impl not in CONV_IMPLS:
        raise ValueError(f"conv impl must be one of {CONV_IMPLS}, got {impl!r}")
    if x.ndim != 4 or kernel.ndim != 4 or x.shape[-1] != kernel.shape[2]:
        raise ValueError(
            f"conv2d expects x [B, H, W, C] and kernel [KH, KW, C, F] with matching C, "
            f"got x {x.shape} and kernel {kernel.shape}"
        )
    strides = _pairs(strides, "strides")
    kh, kw, c, _ = kernel.shape
    pads = _explicit_padding(padding, x.shape[1:3], (kh, kw), strides)
    if x.shape[1] + sum(pads[0]) < kh or x.shape[2] + sum(pads[1]) < kw:
        raise ValueError(f"input spatial size {x.shape[1:3]} with padding {pads} is smaller than the kernel "
                         f"{kernel.shape[:2]}")
    if impl == "auto":
        gemm_friendly = kh * kw * c <= _ELEMENTWISE_MAX_TAPS or kh == kw == 1 or c >= _GEMM_MIN_CHANNELS
        impl = "matmul" if jax.default_backend() == "cpu" and gemm_friendly else "xla"
    if impl == "xla":
        y = lax.conv_general_dilated(x, kernel, strides, pads, dimension_numbers=_DIMENSION_NUMBERS)
        return y if bias is None else y + bias
    if any(p for pair in pads for p in pair):
        x = jnp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    if kh == kw == 1:  # a pointwise conv is one GEMM of the (strided) pixels
        b = x.shape[0]
        x = x[:, ::strides[0], ::strides[1], :]
        y = (x.reshape(-1, c) @ kernel.reshape(c, -1)).reshape(b, x.shape[1], x.shape[2], -1)
        return y if bias is None else y + bias
    if kh * kw * c <= _ELEMENTWISE_MAX_TAPS:
        return _conv_small_bias(x, kernel, jnp.zeros(kernel.shape[-1], kernel.dtype) if bias is None else bias,
                                strides)
    y = _conv_gemm(x, kernel, strides, tuple(x.shape))
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


@partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def _max_pool_taps(x, window: int, stride: int):  # x [B, H, W, C], already padded
    return _max_pool_taps_fwd(x, window, stride)[0]


def _max_pool_taps_fwd(x, window, stride):
    ho, wo = _out_size(x.shape[1], window, stride), _out_size(x.shape[2], window, stride)
    taps = [_window(x, i, j, ho, wo, (stride, stride)) for i, j in _offsets(window, window)]
    # first maximum in scan order (as PyTorch and XLA) from a running comparison, not `tap == max`
    # (see _max_pool_fwd: XLA may round a fused producer differently on the two sides)
    idx_dtype = jnp.int8 if len(taps) <= 127 else jnp.int32
    running = taps[0]
    best = jnp.zeros(running.shape, idx_dtype)
    for pos in range(1, len(taps)):
        best = jnp.where(taps[pos] > running, jnp.asarray(pos, idx_dtype), best)
        running = jnp.maximum(taps[pos], running)
    return running, (best, x.shape)


def _max_pool_taps_bwd(window, stride, residuals, g):
    best, x_shape = residuals
    _, ho, wo, _ = g.shape
    zero = jnp.zeros((), g.dtype)
    dx = None
    for pos, (i, j) in enumerate(_offsets(window, window)):
        # scatter this tap's share back to its strided positions: an interior-padded (dilated) copy, elementwise
        part = lax.pad(jnp.where(best == pos, g, zero), zero, (
            (0, 0, 0), (i, x_shape[1] - i - stride * (ho - 1) - 1, stride - 1),
            (j, x_shape[2] - j - stride * (wo - 1) - 1, stride - 1), (0, 0, 0)))
        dx = part if dx is None else dx + part
    return (dx,)


_max_pool_taps.defvjp(_max_pool_taps_fwd, _max_pool_taps_bwd)


def max_pool(x, window: int, *, strides: int | None = None, padding: int = 0):
    """``window x window`` max pooling, floor mode like Keras and PyTorch.

    The gradient goes to the first maximum of each window (as XLA's
    ``reduce_window`` and PyTorch); it is computed from an ``int8`` argmax
    saved by the forward pass, an elementwise select instead of XLA CPU's
    slow ``select_and_scatter``.

    Args:
      x: ``[B, H, W, C]``.
      window: pool size.
      strides: step between windows (default ``window``: non-overlapping).
      padding: ``-inf`` pixels added on every side (PyTorch's ``MaxPool2d(padding=p)``).

    Returns:
      ``[B, (H + 2p - window) // strides + 1, (W + 2p - window) // strides + 1, C]``
      (``[B, H // window, W // window, C]`` by default).
    """
    stride = window if strides is None else strides
    for name, value, low in (("window", window, 1), ("strides", stride, 1), ("padding", padding, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"max_pool {name} must be an int >= {low}, got {value!r}")
    if padding * 2 >= window:
        raise ValueError(f"max_pool padding must be less than half the window ({window}), got {padding}")
    b, h, w, c = x.shape
    if h + 2 * padding < window or w + 2 * padding < window:
        raise ValueError(f"max_pool window {window} is larger than the input's spatial size {(h, w)}")
    return keep_batch_sharding(partial(_max_pool_any_mesh, window=int(window), stride=int(stride),
                                       padding=int(padding)), x, out_ndim=4)


def _max_pool_any_mesh(x, *, window: int, stride: int, padding: int):
    _, h, w, _ = x.shape
    if stride == window and padding == 0:
        ho, wo = h // window, w // window
        return _max_pool(x[:, :ho * window, :wo * window, :], window)
    if padding:
        x = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)), constant_values=-jnp.inf)
    return _max_pool_taps(x, window, stride)


class Conv2D(nn.Module):
    """Convolution layer with Keras/Flax-compatible ``kernel`` and ``bias``.

    Attributes:
      features: output channels F.
      kernel_size: (KH, KW) or an int.
      strides: an int or (SH, SW).
      padding: "VALID", "SAME", an int or ((top, bottom), (left, right)); see :func:`conv2d`.
      impl: see :func:`conv2d`.
      dtype: compute dtype; param_dtype: storage dtype of the parameters.
    """

    features: int
    kernel_size: int | Sequence[int] = (3, 3)
    strides: int | Sequence[int] = 1
    padding: Padding = "VALID"
    impl: str = "auto"
    use_bias: bool = True
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32
    kernel_init: Callable = nn.initializers.glorot_uniform()
    bias_init: Callable = nn.initializers.zeros

    @nn.compact
    def __call__(self, x):  # [B, H, W, C] -> [B, Ho, Wo, F]
        kh, kw = _pairs(self.kernel_size, "kernel_size")
        # Tensor parallelism splits a conv's output channels (CONV_OUT), so the next conv's input
        # arrives split on C.  Each conv takes its input whole on C instead (column-parallel, an
        # all-gather forward and a reduce-scatter backward): left to itself, XLA's SPMD partitioner
        # (jax 0.10.2) miscompiles the input gradient of a conv whose input is split on C over
        # `tensor` while the batch is split over `data` and `fsdp` and the kernel over `fsdp` and
        # `tensor` (resnet_tiny's gradients were off by ~100% on a 2x2x2 mesh; the forward was exact).
        x = with_logical_constraint(x, (axes.BATCH, axes.HEIGHT, axes.WIDTH, None))
        kernel = self.param(
            "kernel",
            axes.with_logical_partitioning(self.kernel_init,
                                           (axes.CONV_WINDOW, axes.CONV_WINDOW, axes.CONV_IN, axes.CONV_OUT)),
            (kh, kw, x.shape[-1], self.features),
            self.param_dtype,
        )
        x, kernel = x.astype(self.dtype), jnp.asarray(kernel, self.dtype)
        bias = None
        if self.use_bias:
            bias = self.param(
                "bias", axes.with_logical_partitioning(self.bias_init, (axes.CONV_OUT,)), (self.features,),
                self.param_dtype)
            bias = jnp.asarray(bias, self.dtype)
        return _conv2d(x, kernel, bias, strides=self.strides, padding=self.padding, impl=self.impl)
