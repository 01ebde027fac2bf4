"""Multi-head scaled dot-product attention: ``softmax(Q Kᵀ / √d_k) V``.

Two implementations give the same numbers (tested on CPU with padding and
causal masks):

- ``"explicit"``: the formula written out with einsums, softmax in float32,
  optional dropout on the attention weights;
- ``"dot_product"``: ``jax.nn.dot_product_attention``, which lowers to cuDNN
  flash attention on NVIDIA GPUs (bfloat16 / float16) and to XLA elsewhere. It
  has no dropout on the attention weights, so training with
  ``dropout_rate > 0`` through it is an error rather than silently undropped.

Shapes use ``B`` batch, ``T`` query length, ``S`` key length, ``N`` heads,
``H`` head features, ``D`` model width.  Masks are boolean, ``True`` = may
attend, broadcastable to ``[B, N, T, S]``.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from zoo.layers import axes
from zoo.layers.explicit import sharding_spec, with_logical_constraint

ATTENTION_IMPLS = ("explicit", "dot_product")


def padding_mask(attention_mask) -> jax.Array:
    """``[B, S]`` (1 / True = real token, 0 = padding) -> boolean key mask ``[B, 1, 1, S]``."""
    attention_mask = jnp.asarray(attention_mask)
    if attention_mask.ndim != 2:
        raise ValueError(f"attention_mask must be [B, S] (1 = token, 0 = padding), got shape {attention_mask.shape}")
    return attention_mask.astype(bool)[:, None, None, :]


def causal_mask(query_length: int, key_length: int | None = None, offset=0) -> jax.Array:
    """Boolean ``[1, 1, T, S]``: query ``i`` (at absolute position ``offset + i``) sees keys ``j <= offset + i``."""
    key_length = query_length if key_length is None else key_length
    q = jnp.arange(query_length)[:, None] + offset
    return (jnp.arange(key_length)[None, :] <= q)[None, None]


def combine_masks(*masks) -> jax.Array | None:
    """Logical AND of the given boolean masks (``None`` entries ignored); ``None`` if there are none."""
    masks = [m for m in masks if m is not None]
    if not masks:
        return None
    out = masks[0]
    for m in masks[1:]:
        out = jnp.logical_and(out, m)
    return out


def dot_product_attention(query, key, value, mask=None, *, causal: bool = False, impl: str = "explicit",
                          dropout_rate: float = 0.0, dropout_rng=None, deterministic: bool = True,
                          dtype: Any = None) -> jax.Array:
    """``softmax(Q Kᵀ / √H + mask) V`` per head.

    Args:
      query: ``[B, T, N, H]``.
      key, value: ``[B, S, N, H]``.
      mask: boolean, broadcastable to ``[B, N, T, S]`` (``True`` = attend), or None.
      causal: also mask keys after each query (query ``i`` sees keys ``j <= i + S - T``,
        i.e. the queries are the last ``T`` positions of the keys).
      impl: ``"explicit"`` or ``"dot_product"`` (``jax.nn.dot_product_attention``).
      dropout_rate: dropout on the attention weights (explicit path only).
      dropout_rng: PRNG key for that dropout; deterministic: no dropout.
      dtype: compute dtype (default: the query's).

    Returns:
      ``[B, T, N, H]``.
    """
    if impl not in ATTENTION_IMPLS:
        raise ValueError(f"attention impl must be one of {ATTENTION_IMPLS}, got {impl!r}")
    if query.ndim != 4 or key.shape != value.shape or key.ndim != 4 or query.shape[-1] != key.shape[-1] \
            or query.shape[0] != key.shape[0] or query.shape[2] != key.shape[2]:
        raise ValueError(f"expected query [B, T, N, H] and key/value [B, S, N, H], got {query.shape}, "
                         f"{key.shape}, {value.shape}")
    dtype = dtype or query.dtype
    query, key, value = (jnp.asarray(a, dtype) for a in (query, key, value))
    t, s = query.shape[1], key.shape[1]
    use_dropout = dropout_rate > 0.0 and not deterministic
    if impl == "dot_product":
        if use_dropout:
            raise ValueError("impl='dot_product' (jax.nn.dot_product_attention) has no dropout on the attention "
                             f"weights, but dropout_rate={dropout_rate} in training; set the attention dropout to 0 "
                             "or use impl='explicit'")
        if causal and t != s:  # queries are the last T keys: is_causal assumes aligned starts
            mask, causal = combine_masks(mask, causal_mask(t, s, offset=s - t)), False
        return jax.nn.dot_product_attention(query, key, value, mask=mask, is_causal=causal)
    if causal:
        mask = combine_masks(mask, causal_mask(t, s, offset=s - t))
    depth = query.shape[-1]
    logits = jnp.einsum("btnh,bsnh->bnts", query / jnp.asarray(math.sqrt(depth), dtype), key)  # [B, N, T, S]
    logits = logits.astype(jnp.float32)
    if mask is not None:
        logits = jnp.where(mask, logits, jnp.finfo(jnp.float32).min)
    weights = jax.nn.softmax(logits, axis=-1).astype(dtype)
    if use_dropout:
        if dropout_rng is None:
            raise ValueError("attention dropout in training needs a dropout_rng")
        keep = jax.random.bernoulli(dropout_rng, 1.0 - dropout_rate, weights.shape, out_sharding=sharding_spec(weights))
        weights = jnp.where(keep, weights / jnp.asarray(1.0 - dropout_rate, dtype), jnp.zeros((), dtype))
    return jnp.einsum("bnts,bsnh->btnh", weights, value)  # [B, T, N, H]


class MultiHeadAttention(nn.Module):
    """Multi-head attention with Q/K/V/output projections and an optional key/value cache.

    Parameters: ``query``, ``key``, ``value`` each ``kernel [D, N, H]`` (logical
    ``embed, heads, kv``) and ``bias [N, H]``; ``out`` ``kernel [N, H, D]`` and
    ``bias [D]``.

    Decoding (``decode=True``): the first call on un-initialised variables (i.e.
    ``model.init(..., x_of_max_length, decode=True)``) creates the ``"cache"``
    collection ``cached_key``/``cached_value [B, S_max, N, H]`` and
    ``cache_index []``; later calls append their ``T`` new positions at
    ``cache_index`` and attend causally over everything cached so far.  The
    caller keeps ``cache_index + T <= S_max`` (``generate`` checks it).

    Attributes:
      num_heads: N.  head_dim: H (default ``D // N``).  out_features: default D.
      dropout_rate: dropout on the attention weights.  impl: see ``ATTENTION_IMPLS``.
      causal: mask future positions.  dtype / param_dtype: compute / storage dtypes.
    """

    num_heads: int
    head_dim: int | None = None
    out_features: int | None = None
    dropout_rate: float = 0.0
    impl: str = "explicit"
    causal: bool = False
    use_bias: bool = True
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32
    kernel_init: Callable = nn.initializers.normal(0.02)
    bias_init: Callable = nn.initializers.zeros

    @nn.compact
    def __call__(self, x, mask=None, *, inputs_kv=None, train: bool = False, decode: bool = False):
        """``[B, T, D]`` (and ``inputs_kv [B, S, D]``, default ``x``) -> ``[B, T, out_features]``.

        Args:
          x: queries' inputs ``[B, T, D]``.
          mask: boolean broadcastable to ``[B, N, T, S]`` (see :func:`padding_mask`), or None.
          inputs_kv: keys' / values' inputs for cross-attention; None = self-attention.
          train: enables dropout (needs the ``"dropout"`` RNG).
          decode: use and update the key/value cache (self-attention only).
        """
        if x.ndim != 3:
            raise ValueError(f"MultiHeadAttention expects x [B, T, D], got shape {x.shape}")
        d = x.shape[-1]
        head_dim = self.head_dim or d // self.num_heads
        if self.head_dim is None and d % self.num_heads:
            raise ValueError(f"model width {d} is not divisible by num_heads={self.num_heads}")
        inputs_kv = x if inputs_kv is None else inputs_kv
        if decode and inputs_kv is not x:
            raise ValueError("decode=True caches self-attention only; inputs_kv must be None")

        def project(name, inputs):  # [B, L, D] -> [B, L, N, H]
            return _HeadsProjection(self.num_heads, head_dim, self.use_bias, self.dtype, self.param_dtype,
                                    self.kernel_init, self.bias_init, name=name)(inputs)

        query = project("query", x)
        key = project("key", inputs_kv)
        value = project("value", inputs_kv)
        qkv_axes = (axes.BATCH, axes.LENGTH, axes.HEADS, axes.KV)
        query = with_logical_constraint(query, qkv_axes)
        key = with_logical_constraint(key, qkv_axes)
        value = with_logical_constraint(value, qkv_axes)

        causal = self.causal
        if decode:
            initialised = self.has_variable("cache", "cached_key")
            cached_key = self.variable("cache", "cached_key", jnp.zeros, key.shape, key.dtype)
            cached_value = self.variable("cache", "cached_value", jnp.zeros, value.shape, value.dtype)
            cache_index = self.variable("cache", "cache_index", lambda: jnp.zeros((), jnp.int32))
            if initialised:
                t, s_max = query.shape[1], cached_key.value.shape[1]
                index = cache_index.value
                key = jax.lax.dynamic_update_slice(cached_key.value, key.astype(cached_key.value.dtype),
                                                   (0, index, 0, 0))
                value = jax.lax.dynamic_update_slice(cached_value.value, value.astype(cached_value.value.dtype),
                                                     (0, index, 0, 0))
                cached_key.value, cached_value.value = key, value
                cache_index.value = index + t
                # Cached positions < index + T are filled; query i sits at position index + i.
                mask = combine_masks(mask, causal_mask(t, s_max, offset=index))
                causal = False

        dropout_rng = self.make_rng("dropout") if train and self.dropout_rate > 0 else None
        out = dot_product_attention(query, key, value, mask, causal=causal, impl=self.impl,
                                    dropout_rate=self.dropout_rate, dropout_rng=dropout_rng,
                                    deterministic=not train, dtype=self.dtype)  # [B, T, N, H]
        out = with_logical_constraint(out, qkv_axes)
        features = self.out_features or d
        return _OutProjection(features, self.use_bias, self.dtype, self.param_dtype, self.kernel_init,
                              self.bias_init, name="out")(out)


class _HeadsProjection(nn.Module):
    """``[B, L, D] -> [B, L, N, H]`` with ``kernel [D, N, H]`` and ``bias [N, H]``."""

    num_heads: int
    head_dim: int
    use_bias: bool
    dtype: Any
    param_dtype: Any
    kernel_init: Callable
    bias_init: Callable

    @nn.compact
    def __call__(self, x):
        kernel = self.param("kernel", axes.with_logical_partitioning(self.kernel_init,
                                                                     (axes.EMBED, axes.HEADS, axes.KV)),
                            (x.shape[-1], self.num_heads, self.head_dim), self.param_dtype)
        y = jnp.einsum("bld,dnh->blnh", x.astype(self.dtype), jnp.asarray(kernel, self.dtype))
        if self.use_bias:
            bias = self.param("bias", axes.with_logical_partitioning(self.bias_init, (axes.HEADS, axes.KV)),
                              (self.num_heads, self.head_dim), self.param_dtype)
            y = y + jnp.asarray(bias, self.dtype)
        return y


class _OutProjection(nn.Module):
    """``[B, T, N, H] -> [B, T, F]`` with ``kernel [N, H, F]`` and ``bias [F]``."""

    features: int
    use_bias: bool
    dtype: Any
    param_dtype: Any
    kernel_init: Callable
    bias_init: Callable

    @nn.compact
    def __call__(self, x):
        kernel = self.param("kernel", axes.with_logical_partitioning(self.kernel_init,
                                                                     (axes.HEADS, axes.KV, axes.EMBED)),
                            (x.shape[-2], x.shape[-1], self.features), self.param_dtype)
        y = jnp.einsum("btnh,nhf->btf", x.astype(self.dtype), jnp.asarray(kernel, self.dtype))
        if self.use_bias:
            bias = self.param("bias", axes.with_logical_partitioning(self.bias_init, (axes.EMBED,)),
                              (self.features,), self.param_dtype)
            y = y + jnp.asarray(bias, self.dtype)
        return y


__all__ = ["ATTENTION_IMPLS", "MultiHeadAttention", "causal_mask", "combine_masks", "dot_product_attention",
           "padding_mask"]
