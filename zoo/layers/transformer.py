"""Shared transformer pieces: layer norm, feed-forward block, embeddings, encoder/decoder block.

BERT (post-norm encoder), GPT-2 (pre-norm causal decoder) and ViT (pre-norm
encoder) are all :class:`TransformerBlock` with different ``norm`` /
``causal`` / ``activation`` settings; parameter names are the same in every
family so weight conversion code shares its patterns.
"""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from zoo.layers import axes
from zoo.layers.explicit import keep_batch_sharding, with_logical_constraint
from zoo.layers.dropout import Dropout
from zoo.layers.attention import ATTENTION_IMPLS, MultiHeadAttention
from zoo.layers.linear import Dense

# "gelu": exact (erf) GELU as in BERT / ViT; "gelu_tanh": the tanh approximation
# GPT-2 uses (Hugging Face "gelu_new").
ACTIVATIONS: dict[str, Callable] = {
    "gelu": lambda x: jax.nn.gelu(x, approximate=False),
    "gelu_tanh": lambda x: jax.nn.gelu(x, approximate=True),
    "relu": jax.nn.relu,
    "silu": jax.nn.silu,
}
NORM_PLACEMENTS = ("pre", "post")


def activation_fn(name: str) -> Callable:
    """The activation called ``name`` (one of ``ACTIVATIONS``); ValueError otherwise."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}") from None


class LayerNorm(nn.Module):
    """Layer norm over the last axis, ``[..., D] -> [..., D]``, statistics in float32.

    Params ``scale [D]`` and ``bias [D]`` (logical ``embed``).  Variance is
    ``mean((x - mean)^2)`` (not ``E[x^2] - E[x]^2``) to match PyTorch closely.
    """

    epsilon: float = 1e-5
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        d = x.shape[-1]
        scale = self.param("scale", axes.with_logical_partitioning(nn.initializers.ones, (axes.EMBED,)), (d,),
                           self.param_dtype)
        bias = self.param("bias", axes.with_logical_partitioning(nn.initializers.zeros, (axes.EMBED,)), (d,),
                          self.param_dtype)
        x32 = x.astype(jnp.float32)
        mean = x32.mean(-1, keepdims=True)
        centred = x32 - mean
        var = jnp.mean(jnp.square(centred), -1, keepdims=True)
        y = centred * jax.lax.rsqrt(var + self.epsilon)
        return (y * scale.astype(jnp.float32) + bias.astype(jnp.float32)).astype(self.dtype)


class FeedForward(nn.Module):
    """``Dense(D -> F) -> activation -> Dense(F -> D)``: ``[B, T, D] -> [B, T, D]``.

    Submodules ``in`` (``kernel [D, F]``, logical ``embed, mlp``) and ``out``
    (``kernel [F, D]``, ``mlp, embed``).
    """

    hidden_dim: int
    activation: str = "gelu"
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32
    kernel_init: Callable = nn.initializers.normal(0.02)

    @nn.compact
    def __call__(self, x):
        d = x.shape[-1]
        h = Dense(self.hidden_dim, logical_axes=(axes.EMBED, axes.MLP), dtype=self.dtype,
                  param_dtype=self.param_dtype, kernel_init=self.kernel_init, name="in")(x)
        h = with_logical_constraint(activation_fn(self.activation)(h), (axes.BATCH, axes.LENGTH, axes.MLP))
        return Dense(d, logical_axes=(axes.MLP, axes.EMBED), dtype=self.dtype, param_dtype=self.param_dtype,
                     kernel_init=self.kernel_init, name="out")(h)


class Embed(nn.Module):
    """A lookup table ``embedding [num_embeddings, D]``: int ``[...]`` -> ``[..., D]``.

    ``attend(x)`` is the transposed map ``[..., D] -> [..., num_embeddings]``
    (tied output logits).  ``logical_axes`` names the table's two axes
    (``vocab, embed`` for tokens; ``positions, embed`` for positions / segments).
    """

    num_embeddings: int
    features: int
    logical_axes: tuple = (axes.VOCAB, axes.EMBED)
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32
    embedding_init: Callable = nn.initializers.normal(0.02)

    def setup(self):
        self.embedding = self.param("embedding", axes.with_logical_partitioning(self.embedding_init,
                                                                              tuple(self.logical_axes)),
                                    (self.num_embeddings, self.features), self.param_dtype)

    def __call__(self, ids):
        if not jnp.issubdtype(jnp.result_type(ids), jnp.integer):
            raise ValueError(f"Embed expects integer ids, got dtype {jnp.result_type(ids)}")
        table = jnp.asarray(self.embedding, self.dtype)
        return keep_batch_sharding(lambda t, i: jnp.take(t, i, axis=0), table, ids, out_ndim=jnp.ndim(ids) + 1,
                                   like=ids)

    def attend(self, x):
        """``[..., D] -> [..., num_embeddings]``: ``x @ embeddingᵀ``."""
        return jnp.einsum("...d,vd->...v", x.astype(self.dtype), jnp.asarray(self.embedding, self.dtype))


class TransformerBlock(nn.Module):
    """One encoder (``causal=False``) or decoder (``causal=True``) self-attention block.

    ``norm="post"`` (BERT)::

        x = LN(x + drop(attn(x)));  x = LN(x + drop(ffn(x)))

    ``norm="pre"`` (GPT-2, ViT)::

        x = x + drop(attn(LN(x)));  x = x + drop(ffn(LN(x)))

    Submodules: ``attention`` (:class:`MultiHeadAttention`), ``attention_norm``,
    ``mlp`` (:class:`FeedForward`), ``mlp_norm``.  ``[B, T, D] -> [B, T, D]``.

    Attributes:
      num_heads, mlp_dim: heads and feed-forward hidden width.
      dropout_rate: dropout on the attention and feed-forward outputs.
      attention_dropout_rate: dropout on the attention weights.
      activation: one of ``ACTIVATIONS``.  norm: ``"pre"`` or ``"post"``.
      layer_norm_eps: epsilon of both norms.  causal: decoder masking.
      attention_impl: one of ``ATTENTION_IMPLS``.
    """

    num_heads: int
    mlp_dim: int
    dropout_rate: float = 0.0
    attention_dropout_rate: float = 0.0
    activation: str = "gelu"
    norm: str = "pre"
    layer_norm_eps: float = 1e-5
    causal: bool = False
    attention_impl: str = "explicit"
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32
    kernel_init: Callable = nn.initializers.normal(0.02)

    @nn.compact
    def __call__(self, x, mask=None, *, train: bool = False, decode: bool = False):
        """``x [B, T, D]``, ``mask`` boolean broadcastable to ``[B, N, T, S]`` -> ``[B, T, D]``."""
        if self.norm not in NORM_PLACEMENTS:
            raise ValueError(f"norm must be one of {NORM_PLACEMENTS}, got {self.norm!r}")
        if self.attention_impl not in ATTENTION_IMPLS:
            raise ValueError(f"attention_impl must be one of {ATTENTION_IMPLS}, got {self.attention_impl!r}")
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        attention = MultiHeadAttention(self.num_heads, dropout_rate=self.attention_dropout_rate,
                                       impl=self.attention_impl, causal=self.causal, kernel_init=self.kernel_init,
                                       name="attention", **kw)
        mlp = FeedForward(self.mlp_dim, self.activation, kernel_init=self.kernel_init, name="mlp", **kw)
        attention_norm = LayerNorm(self.layer_norm_eps, name="attention_norm", **kw)
        mlp_norm = LayerNorm(self.layer_norm_eps, name="mlp_norm", **kw)
        drop = Dropout(self.dropout_rate, deterministic=not train)
        residual_axes = (axes.BATCH, axes.LENGTH, axes.EMBED)

        if self.norm == "pre":
            x = x + drop(attention(attention_norm(x), mask, train=train, decode=decode))
            x = with_logical_constraint(x, residual_axes)
            x = x + drop(mlp(mlp_norm(x)))
        else:
            x = attention_norm(x + drop(attention(x, mask, train=train, decode=decode)))
            x = with_logical_constraint(x, residual_axes)
            x = mlp_norm(x + drop(mlp(x)))
        return with_logical_constraint(x, residual_axes)


__all__ = ["ACTIVATIONS", "NORM_PLACEMENTS", "Embed", "FeedForward", "LayerNorm", "TransformerBlock",
           "activation_fn"]
