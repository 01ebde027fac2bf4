"""T5 (Raffel et al. 2020): an encoder-decoder transformer with relative position buckets.

``x [B, S]`` source token ids and ``decoder_input_ids [B, L]`` -> ``[B, L, V]`` next-token
logits.  Both stacks are pre-norm blocks with an RMS norm (scale only), no biases anywhere,
and attention logits ``q·k`` (no ``1/√H`` scaling) plus a learned relative-position bias:
relative distances fall into ``relative_attention_num_buckets`` buckets (exact for short
distances, logarithmic up to ``relative_attention_max_distance``; bidirectional in the
encoder, causal in the decoder), one bias table per stack, computed once and shared by
every layer of that stack.  The decoder blocks add cross-attention over the encoder
output (no position bias there).  The token embedding ``shared`` is used by both stacks
and, when ``tie_word_embeddings``, as the output projection (v1.0 scales the decoder
output by ``hidden_size ** -0.5`` first: ``scale_decoder_outputs``).

Feed-forward: v1.0 ``relu(x W_i) W_o``; v1.1 (``gated_mlp=True``, ``activation="gelu_tanh"``)
``(gelu(x W_i0) * x W_i1) W_o``.

``decode=True`` runs the decoder one step at a time on key/value caches (the ``"cache"``
collection): self-attention keys/values grow by one position per call; cross-attention
keys/values are projected from the encoder output once, when the cache is built
(:func:`init_cache`).  :func:`zoo.layers.decoding` drives greedy search, sampling and beam
search over it (:func:`generate`).

Without ``decoder_input_ids`` the decoder reads the start token followed by
``target_length - 1`` pad tokens (a shape probe: registry tests).

Variants::

    name       layers (enc/dec)  width  heads  head_dim  mlp    feed-forward  params
    t5_small        6 / 6          512      8        64  2,048  relu          60,506,624 (google-t5/t5-small)
    t5_base        12 / 12         768     12        64  3,072  relu          222,903,552 (google-t5/t5-base)
    t5_tiny         2 / 2           64      4        16    128  gated gelu    tests and examples (vocab 512, tied
                                                                             and scaled output as v1.0)

Checkpoints: :func:`zoo.from_pretrained` / :func:`zoo.save_pretrained` (``zoo.models.t5.hf``).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from zoo import registry
from zoo.layers import (ACTIVATIONS, Dense, Dropout, Embed, activation_fn, axes, check_positive_ints, check_tokens,
                        RMSNorm, decoding, explicit, normalize_config, with_logical_constraint)
from zoo.layers.checks import check_common_fields

_NEG = jnp.finfo(jnp.float32).min
TASKS = ("translation", "summarization")  # zoo.tasks.seq2seq: the same training, BLEU or ROUGE-L picks the best


@dataclasses.dataclass(frozen=True, kw_only=True)
class T5Config:
    """Config of :class:`T5` (defaults: ``t5_small``, the published google-t5/t5-small).

    Attributes:
      variant: the registry name, for messages.
      vocab_size, hidden_size (``d_model``), num_heads, head_dim (``d_kv``), mlp_dim (``d_ff``): sizes.
      num_layers: encoder blocks.  num_decoder_layers: decoder blocks (None: ``num_layers``).
      relative_attention_num_buckets, relative_attention_max_distance: the position buckets.
      input_shape: ``(S,)``, the longest source accepted.  target_length: L of training batches
        (and the default longest output of decoding).
      activation: ``"relu"`` (v1.0) or ``"gelu_tanh"`` (v1.1's "gated-gelu").  gated_mlp: the v1.1
        gated feed-forward.
      scale_decoder_outputs: multiply the decoder output by ``hidden_size ** -0.5`` before the
        tied output projection (v1.0).  tie_word_embeddings: the output projection is ``shared``
        (else a separate ``lm_head``).
      dropout_rate: on embeddings, every residual branch, the feed-forward hidden layer and the
        final norm's output (Hugging Face's ``dropout_rate``).  attention_dropout_rate: on attention
        weights (Hugging Face uses ``dropout_rate`` there too).
      layer_norm_eps: epsilon of the RMS norms.
      pad_token_id, eos_token_id, decoder_start_token_id: special ids (T5 starts from the pad id).
      task: ``"translation"`` or ``"summarization"`` (``zoo.tasks.seq2seq``).
      dtype / param_dtype: compute / storage dtypes.
    """

    variant: str = "t5_small"
    vocab_size: int = 32128
    hidden_size: int = 512
    num_heads: int = 8
    head_dim: int = 64
    mlp_dim: int = 2048
    num_layers: int = 6
    num_decoder_layers: int | None = None
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    input_shape: tuple[int, ...] = (512,)
    target_length: int = 128
    activation: str = "relu"
    gated_mlp: bool = False
    scale_decoder_outputs: bool = True
    tie_word_embeddings: bool = True
    dropout_rate: float = 0.1
    attention_dropout_rate: float = 0.1
    layer_norm_eps: float = 1e-6
    pad_token_id: int = 0
    eos_token_id: int = 1
    decoder_start_token_id: int = 0
    task: str = "translation"
    layout: str = "tokens"
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        normalize_config(self)
        name = type(self).__name__
        check_common_fields(self)
        check_positive_ints(self, "head_dim", "relative_attention_num_buckets", "relative_attention_max_distance",
                            "target_length", *(("num_decoder_layers",) if self.num_decoder_layers is not None else ()))
        if len(self.input_shape) != 1:
            raise ValueError(f"{name}.input_shape must be (S,), the longest source, got {self.input_shape!r}")
        if self.relative_attention_num_buckets < 4:
            raise ValueError(f"{name}.relative_attention_num_buckets must be >= 4 (half exact, half logarithmic, "
                             f"both directions), got {self.relative_attention_num_buckets}")
        if self.relative_attention_max_distance <= self.relative_attention_num_buckets // 4:
            raise ValueError(f"{name}.relative_attention_max_distance must exceed num_buckets // 4 "
                             f"({self.relative_attention_num_buckets // 4}), got {self.relative_attention_max_distance}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"{name}.activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if not self.layer_norm_eps > 0:
            raise ValueError(f"{name}.layer_norm_eps must be > 0, got {self.layer_norm_eps!r}")
        for field in ("pad_token_id", "eos_token_id", "decoder_start_token_id"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < self.vocab_size:
                raise ValueError(f"{name}.{field} must be an id in [0, vocab_size={self.vocab_size}), got {value!r}")
        if self.task not in TASKS:
            raise ValueError(f"{name}.task must be one of {TASKS} (the metric that picks the best checkpoint: BLEU "
                             f"or ROUGE-L), got {self.task!r}")
        if self.layout != "tokens":
            raise ValueError(f"{name}.layout must be 'tokens', got {self.layout!r}")

    @property
    def decoder_layers(self) -> int:
        return self.num_layers if self.num_decoder_layers is None else self.num_decoder_layers


def relative_position_bucket(relative_position, *, bidirectional: bool, num_buckets: int, max_distance: int):
    """T5's bucket of each relative position ``key - query`` (int array) -> ints in ``[0, num_buckets)``.

    Half of the buckets (per direction, when ``bidirectional``) hold distances exactly; the other
    half grow logarithmically up to ``max_distance``, beyond which all distances share the last
    bucket.  Causal (``bidirectional=False``): positive (future) distances fall into bucket 0.
    """
    rp = jnp.asarray(relative_position, jnp.int32)
    n, offset = num_buckets, 0
    if bidirectional:
        n //= 2
        offset = (rp > 0).astype(jnp.int32) * n
        rp = jnp.abs(rp)
    else:
        rp = -jnp.minimum(rp, 0)
    max_exact = n // 2
    # float32 log as the reference implementations compute it (0 is in the exact half: its -inf is not used)
    large = max_exact + (jnp.log(jnp.maximum(rp, 1).astype(jnp.float32) / max_exact)
                         / math.log(max_distance / max_exact) * (n - max_exact)).astype(jnp.int32)
    large = jnp.minimum(large, n - 1)
    return offset + jnp.where(rp < max_exact, rp, large)


class RelativePositionBias(nn.Module):
    """The per-head bias of each (query, key) pair: ``[1, N, T, S]``, from an ``embedding [buckets, N]`` table."""

    num_heads: int
    num_buckets: int
    max_distance: int
    bidirectional: bool
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32
    embedding_init: Any = nn.initializers.normal(1.0)

    @nn.compact
    def __call__(self, query_positions, key_positions):
        """``query_positions [T]``, ``key_positions [S]`` (absolute, int) -> ``[1, N, T, S]``."""
        table = self.param("embedding", axes.with_logical_partitioning(self.embedding_init,
                                                                       (axes.POSITIONS, axes.HEADS)),
                           (self.num_buckets, self.num_heads), self.param_dtype)
        buckets = relative_position_bucket(key_positions[None, :] - query_positions[:, None],
                                           bidirectional=self.bidirectional, num_buckets=self.num_buckets,
                                           max_distance=self.max_distance)  # [T, S]
        return jnp.transpose(jnp.asarray(table, self.dtype)[buckets], (2, 0, 1))[None]


class T5Attention(nn.Module):
    """T5 multi-head attention: no biases, no ``1/√H`` scaling, an additive position bias.

    Parameters ``q``, ``k``, ``v`` ``kernel [D, N, H]`` and ``o`` ``kernel [N, H, D]``.

    ``decode=True`` (decoder only): self-attention appends its new keys/values to
    ``cached_key``/``cached_value [B, S_max, N, H]`` at ``cache_index``; cross-attention
    reads ``cross_key``/``cross_value [B, S, N, H]``, projected from ``kv`` when the cache
    is created (``kv`` may be None afterwards).  The first ``decode=True`` call, on a
    ``[B, S_max]`` decoder input, creates the cache (see :func:`init_cache`).
    """

    num_heads: int
    head_dim: int
    cross: bool = False
    dropout_rate: float = 0.0
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def _project(self, name, x, d_model):  # [B, L, D] -> [B, L, N, H]
        std = (d_model * self.head_dim) ** -0.5 if name == "q" else d_model ** -0.5
        kernel = self.param(name, axes.with_logical_partitioning(nn.initializers.normal(std),
                                                                 (axes.EMBED, axes.HEADS, axes.KV)),
                            (d_model, self.num_heads, self.head_dim), self.param_dtype)
        y = jnp.einsum("bld,dnh->blnh", x.astype(self.dtype), jnp.asarray(kernel, self.dtype))
        return with_logical_constraint(y, (axes.BATCH, axes.LENGTH, axes.HEADS, axes.KV))

    @nn.compact
    def __call__(self, x, kv=None, *, bias=None, mask=None, train: bool = False, decode: bool = False):
        """Args:
          x: ``[B, T, D]`` queries' inputs.  kv: ``[B, S, D]`` keys' inputs (cross-attention), else None.
          bias: ``[1 or B, N, T, S]`` additive position bias, or None.
          mask: boolean broadcastable to ``[B, N, T, S]`` (True = attend), or None.

        Returns:
          ``[B, T, D]``.
        """
        d = x.shape[-1]
        q = self._project("q", x, d)
        if self.cross and decode:
            if not self.has_variable("cache", "cross_key") and kv is None:
                raise ValueError("cross-attention has no cached keys/values yet: build the cache with init_cache")
            # projected once, when the cache is created; read back on every later step
            k = self.variable("cache", "cross_key", lambda: self._project("k", kv, d)).value
            v = self.variable("cache", "cross_value", lambda: self._project("v", kv, d)).value
        else:
            source = kv if self.cross else x
            k, v = self._project("k", source, d), self._project("v", source, d)
        if decode and not self.cross:
            initialised = self.has_variable("cache", "cached_key")
            cached_key = self.variable("cache", "cached_key", jnp.zeros, k.shape, k.dtype)
            cached_value = self.variable("cache", "cached_value", jnp.zeros, v.shape, v.dtype)
            cache_index = self.variable("cache", "cache_index", lambda: jnp.zeros((), jnp.int32))
            if initialised:
                index = cache_index.value
                k = jax.lax.dynamic_update_slice(cached_key.value, k.astype(cached_key.value.dtype), (0, index, 0, 0))
                v = jax.lax.dynamic_update_slice(cached_value.value, v.astype(cached_value.value.dtype),
                                                 (0, index, 0, 0))
                cached_key.value, cached_value.value = k, v
                cache_index.value = index + q.shape[1]
        scores = jnp.einsum("btnh,bsnh->bnts", q, k).astype(jnp.float32)  # [B, N, T, S]
        if bias is not None:
            scores = scores + bias.astype(jnp.float32)
        if mask is not None:
            scores = jnp.where(mask, scores, _NEG)
        weights = jax.nn.softmax(scores, -1).astype(self.dtype)
        weights = Dropout(self.dropout_rate, deterministic=not train)(weights)
        out = jnp.einsum("bnts,bsnh->btnh", weights, v.astype(self.dtype))
        out = with_logical_constraint(out, (axes.BATCH, axes.LENGTH, axes.HEADS, axes.KV))
        kernel = self.param("o", axes.with_logical_partitioning(
            nn.initializers.normal((self.num_heads * self.head_dim) ** -0.5), (axes.HEADS, axes.KV, axes.EMBED)),
            (self.num_heads, self.head_dim, d), self.param_dtype)
        return jnp.einsum("btnh,nhd->btd", out, jnp.asarray(kernel, self.dtype))


class T5FeedForward(nn.Module):
    """``[B, T, D] -> [B, T, D]``: ``act(x wi) wo`` or, gated, ``(act(x wi_0) * x wi_1) wo`` (no biases)."""

    mlp_dim: int
    activation: str
    gated: bool
    dropout_rate: float
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, *, train: bool = False):
        d = x.shape[-1]
        kw = dict(use_bias=False, dtype=self.dtype, param_dtype=self.param_dtype)
        wi = functools.partial(Dense, self.mlp_dim, logical_axes=(axes.EMBED, axes.MLP),
                               kernel_init=nn.initializers.normal(d ** -0.5), **kw)
        act = activation_fn(self.activation)
        h = act(wi(name="wi_0")(x)) * wi(name="wi_1")(x) if self.gated else act(wi(name="wi")(x))
        h = with_logical_constraint(h, (axes.BATCH, axes.LENGTH, axes.MLP))
        h = Dropout(self.dropout_rate, deterministic=not train)(h)
        return Dense(d, logical_axes=(axes.MLP, axes.EMBED), kernel_init=nn.initializers.normal(self.mlp_dim ** -0.5),
                     name="wo", **kw)(h)


class T5Block(nn.Module):
    """Pre-norm block: self-attention (+ cross-attention in the decoder) and feed-forward, each residual."""

    config: T5Config
    decoder: bool = False

    @nn.compact
    def __call__(self, h, *, bias, mask, encoded=None, encoder_mask=None, train: bool = False,
                 decode: bool = False):
        cfg = self.config
        kw = dict(dtype=cfg.dtype, param_dtype=cfg.param_dtype)
        drop = Dropout(cfg.dropout_rate, deterministic=not train)
        attention = functools.partial(T5Attention, cfg.num_heads, cfg.head_dim,
                                      dropout_rate=cfg.attention_dropout_rate, **kw)
        norm = functools.partial(RMSNorm, cfg.layer_norm_eps, **kw)
        h = h + drop(attention(name="self_attention")(norm(name="self_attention_norm")(h), bias=bias, mask=mask,
                                                      train=train, decode=decode))
        if self.decoder:
            h = h + drop(attention(cross=True, name="cross_attention")(
                norm(name="cross_attention_norm")(h), encoded, mask=encoder_mask, train=train, decode=decode))
        h = h + drop(T5FeedForward(cfg.mlp_dim, cfg.activation, cfg.gated_mlp, cfg.dropout_rate, name="mlp", **kw)(
            norm(name="mlp_norm")(h), train=train))
        return with_logical_constraint(h, (axes.BATCH, axes.LENGTH, axes.EMBED))


class T5Stack(nn.Module):
    """The encoder (bidirectional) or decoder (causal, with cross-attention) stack over embedded inputs."""

    config: T5Config
    decoder: bool = False

    @nn.compact
    def __call__(self, h, *, mask=None, encoded=None, encoder_mask=None, train: bool = False, decode: bool = False):
        """``h [B, T, D]`` embedded tokens; ``mask [B, T]`` (1 = token) -> ``[B, T, D]``.

        Decoder: ``encoded [B, S, D]`` and ``encoder_mask [B, S]`` (1 = token) for cross-attention.
        """
        cfg = self.config
        kw = dict(dtype=cfg.dtype, param_dtype=cfg.param_dtype)
        t = h.shape[1]
        positions = key_positions = jnp.arange(t)
        if decode:  # the queries sit at the cache position; the keys are every self-attention slot
            initialised = self.has_variable("cache", "position")
            position = self.variable("cache", "position", lambda: jnp.zeros((), jnp.int32))
            # [B, S_max]: only its static shape is read (the slot count); batch-leading like every cache entry,
            # so reordering beams (zoo.layers.decoding) treats it as the rest
            slots = self.variable("cache", "slots", lambda: jnp.zeros(h.shape[:2], jnp.int8))
            if initialised:
                key_positions = jnp.arange(slots.value.shape[1])
                positions = positions + position.value
                position.value = position.value + t
        if self.decoder and decode:  # the source's mask, kept with the cross-attention keys / values
            if not self.has_variable("cache", "encoder_mask") and encoded is None:
                raise ValueError(f"{cfg.variant}: decode=True needs a cache: build it with init_cache")
            encoder_mask = self.variable("cache", "encoder_mask", lambda: (
                jnp.ones(encoded.shape[:2], bool) if encoder_mask is None else jnp.asarray(encoder_mask, bool))).value
        cross_mask = None if encoder_mask is None else jnp.asarray(encoder_mask).astype(bool)[:, None, None, :]
        bias = RelativePositionBias(cfg.num_heads, cfg.relative_attention_num_buckets,
                                    cfg.relative_attention_max_distance, bidirectional=not self.decoder,
                                    embedding_init=nn.initializers.normal(cfg.hidden_size ** -0.5),
                                    name="relative_attention_bias", **kw)
        attend = None
        if self.decoder:
            attend = positions[:, None] >= key_positions[None, :]  # [T, S] causal
            attend = attend[None, None]
        if mask is not None:
            keys = jnp.asarray(mask).astype(bool)[:, None, None, :]  # [B, 1, 1, S]
            attend = keys if attend is None else attend & keys
        h = Dropout(cfg.dropout_rate, deterministic=not train)(h)
        layers = cfg.decoder_layers if self.decoder else cfg.num_layers
        position_bias = bias(positions, key_positions)
        for i in range(layers):
            h = T5Block(cfg, decoder=self.decoder, name=f"layer_{i}")(
                h, bias=position_bias, mask=attend, encoded=encoded, encoder_mask=cross_mask, train=train,
                decode=decode)
        h = RMSNorm(cfg.layer_norm_eps, name="final_norm", **kw)(h)
        return Dropout(cfg.dropout_rate, deterministic=not train)(h)


class T5(nn.Module):
    """``x [B, S]`` source ids, ``decoder_input_ids [B, L]`` -> ``[B, L, V]`` logits."""

    config: T5Config

    def setup(self):
        cfg = self.config
        kw = dict(dtype=cfg.dtype, param_dtype=cfg.param_dtype)
        self.shared = Embed(cfg.vocab_size, cfg.hidden_size, (axes.VOCAB, axes.EMBED),
                            embedding_init=nn.initializers.normal(1.0), **kw)
        self.encoder = T5Stack(cfg)
        self.decoder = T5Stack(cfg, decoder=True)
        if not cfg.tie_word_embeddings:
            self.lm_head = Dense(cfg.vocab_size, use_bias=False, logical_axes=(axes.EMBED, axes.VOCAB),
                                 kernel_init=nn.initializers.normal(1.0), **kw)

    def encode(self, x, attention_mask=None, *, train: bool = False):
        """``[B, S]`` source ids (``attention_mask [B, S]``: 1 = token, 0 = padding) -> ``[B, S, D]``."""
        cfg = self.config
        check_tokens(x, cfg.input_shape[0], model=cfg.variant, vocab_size=cfg.vocab_size)
        _check_mask(attention_mask, x, cfg.variant, "attention_mask")
        h = with_logical_constraint(self.shared(x), (axes.BATCH, axes.LENGTH, axes.EMBED))
        return self.encoder(h, mask=attention_mask, train=train)

    def decode(self, ids, encoded=None, encoder_mask=None, *, decoder_attention_mask=None, train: bool = False,
               decode: bool = False):
        """``ids [B, L]``, ``encoded [B, S, D]``, ``encoder_mask [B, S]`` (1 = token) -> ``[B, L, V]`` logits.

        With ``decode=True`` (after :func:`init_cache`) ``encoded`` and ``encoder_mask`` come from
        the cache and may be None.
        """
        cfg = self.config
        if ids.ndim != 2 or not jnp.issubdtype(ids.dtype, jnp.integer):
            raise ValueError(f"{cfg.variant}: decoder_input_ids must be int [B, L], got {ids.dtype} "
                             f"{tuple(ids.shape)}")
        if decode:
            if decoder_attention_mask is not None:
                raise ValueError(f"{cfg.variant}: decoder_attention_mask is not supported with decode=True")
        elif encoded is None:
            raise ValueError(f"{cfg.variant}: decode needs the encoder output (encoded [B, S, D])")
        else:
            _check_mask(decoder_attention_mask, ids, cfg.variant, "decoder_attention_mask")
        h = with_logical_constraint(self.shared(ids), (axes.BATCH, axes.LENGTH, axes.EMBED))
        h = self.decoder(h, mask=decoder_attention_mask, encoded=encoded, encoder_mask=encoder_mask, train=train,
                         decode=decode)
        if cfg.scale_decoder_outputs:
            h = h * (cfg.hidden_size ** -0.5)
        self.sow("intermediates", "pre_logits", h)
        logits = self.shared.attend(h) if cfg.tie_word_embeddings else self.lm_head(h)  # [B, L, V]
        return with_logical_constraint(logits, (axes.BATCH, axes.LENGTH, axes.VOCAB))

    def __call__(self, x, *, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
                 train: bool = False):
        """Args:
          x: ``[B, S]`` int source ids.  attention_mask: ``[B, S]`` 1 = token, 0 = padding.
          decoder_input_ids: ``[B, L]`` the target shifted right behind ``decoder_start_token_id``
            (default: the start token then pads, ``L = target_length``).
          decoder_attention_mask: ``[B, L]`` 1 = token (keys only; the loss masks padded labels anyway).
          train: enables dropout (needs the ``"dropout"`` RNG).

        Returns:
          ``[B, L, V]`` logits in ``config.dtype``.
        """
        cfg = self.config
        encoded = self.encode(x, attention_mask, train=train)
        if decoder_input_ids is None:
            decoder_input_ids = jnp.full((x.shape[0], cfg.target_length), cfg.pad_token_id, jnp.int32)
            decoder_input_ids = decoder_input_ids.at[:, 0].set(cfg.decoder_start_token_id)
        return self.decode(decoder_input_ids, encoded, attention_mask, decoder_attention_mask=decoder_attention_mask,
                           train=train)

    @staticmethod
    def head_linear(params) -> tuple[jax.Array, jax.Array]:
        """``(kernel [D, V], zeros [V])``: the output map from ``pre_logits`` (already scaled) to logits."""
        kernel = params["lm_head"]["kernel"] if "lm_head" in params else params["shared"]["embedding"].T
        return kernel, jnp.zeros((kernel.shape[1],), kernel.dtype)


def _check_mask(mask, ids, model: str, name: str) -> None:
    if mask is not None and tuple(jnp.shape(mask)) != tuple(ids.shape):
        raise ValueError(f"{model}: {name} must have the ids' shape {tuple(ids.shape)} (1 = token, 0 = padding), "
                         f"got {tuple(jnp.shape(mask))}")


def init_cache(model: T5, params, encoded, encoder_mask, max_length: int) -> dict:
    """The decoding cache for ``max_length`` decoder positions over ``encoded [B, S, D]``.

    Self-attention slots start empty; cross-attention keys/values are projected from
    ``encoded`` here, once.  ``encoder_mask [B, S]`` (1 = token) or None.
    """
    if max_length < 1:
        raise ValueError(f"max_length must be >= 1, got {max_length}")
    ids = jnp.zeros((encoded.shape[0], max_length), jnp.int32)
    ids = explicit.shard_batch_like(ids, encoded)
    _, mutated = model.apply({"params": params}, ids, encoded, encoder_mask, decode=True, method=T5.decode,
                             mutable=["cache"])
    return mutated["cache"]


def _check_source(model: T5, x, attention_mask):
    cfg = model.config
    x = jnp.asarray(x)
    if x.ndim != 2 or not jnp.issubdtype(x.dtype, jnp.integer) or x.shape[1] < 1:
        raise ValueError(f"{cfg.variant}: source must be int token ids [B, S] with S >= 1, got {x.dtype} "
                         f"{tuple(x.shape)}")
    if x.shape[1] > cfg.input_shape[0]:
        raise ValueError(f"{cfg.variant}: source of {x.shape[1]} tokens exceeds the model's maximum "
                         f"{cfg.input_shape[0]} (input_shape); truncate it (zoo.data.seq2seq encodes with "
                         "truncate=True) or raise input_shape")
    mask = jnp.ones(x.shape, jnp.int32) if attention_mask is None else jnp.asarray(attention_mask, jnp.int32)
    if mask.shape != x.shape:
        raise ValueError(f"{cfg.variant}: attention_mask must have the source's shape {tuple(x.shape)}, got "
                         f"{tuple(mask.shape)}")
    return x.astype(jnp.int32), mask


@functools.partial(jax.jit, static_argnames=("model", "max_length", "num_beams", "top_k", "use_top_p"))
def _generate(model, params, x, mask, key, temperature, top_p, length_penalty, *, max_length, num_beams, top_k,
              use_top_p):
    cfg = model.config
    return decoding.encoder_decoder_search(
        model.apply, params, x, mask, max_length=max_length, start_id=cfg.decoder_start_token_id,
        eos_id=cfg.eos_token_id, pad_id=cfg.pad_token_id, num_beams=num_beams, length_penalty=length_penalty, key=key,
        temperature=temperature, top_k=top_k, top_p=top_p if use_top_p else None)


def generate(model: T5, variables: dict, x, *, attention_mask=None, max_length: int | None = None,
             num_beams: int = 1, length_penalty: float = 1.0, temperature: float = 0.0, top_k: int | None = None,
             top_p: float | None = None, key: jax.Array | None = None):
    """Decodes the target of each source, in one compiled program with key/value caches.

    Greedy (default), sampling (``temperature > 0``, with ``top_k`` / ``top_p``, from ``key``)
    or beam search (``num_beams > 1``: ``length_penalty`` as Hugging Face's ``generate``,
    finished hypotheses kept, the best returned).

    Args:
      model: a :class:`T5`.  variables: ``{"params": ...}``.
      x: ``[B, S]`` int source ids.  attention_mask: ``[B, S]`` 1 = token, 0 = padding.
      max_length: length of the output including the start token (default ``target_length``);
        Hugging Face's ``max_length``.

    Returns:
      ``[B, max_length]`` int32 ids: the start token, the generated tokens, pads after EOS.
    """
    cfg = model.config
    x, mask = _check_source(model, x, attention_mask)
    max_length = cfg.target_length if max_length is None else max_length
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2:
        raise ValueError(f"max_length must be an int >= 2 (the start token and at least one more), got "
                         f"{max_length!r}")
    decoding.check_search_args(num_beams=num_beams, temperature=temperature, top_k=top_k, top_p=top_p, key=key,
                               vocab_size=cfg.vocab_size, length_penalty=length_penalty)
    key = jax.random.key(0) if key is None else key  # unused by greedy and beam search
    out = _generate(model, variables["params"], x, mask, key, jnp.float32(temperature),
                    jnp.float32(1.0 if top_p is None else top_p), jnp.float32(length_penalty), max_length=max_length,
                    num_beams=num_beams, top_k=top_k, use_top_p=top_p is not None)
    start = jnp.full((x.shape[0], 1), cfg.decoder_start_token_id, jnp.int32)
    return jnp.concatenate([explicit.shard_batch_like(start, out), out], 1)


def _register(name, description, **fields):
    registry.register_model(name, module=T5, config=T5Config(variant=name, **fields), description=description)


_register("t5_small", "T5 v1.0 small (google-t5/t5-small): 6/6 layers, 512 wide, 8 heads, ReLU feed-forward")
_register("t5_base", "T5 v1.0 base (google-t5/t5-base): 12/12 layers, 768 wide, 12 heads, ReLU feed-forward",
          hidden_size=768, num_heads=12, mlp_dim=3072, num_layers=12)
# tiny: the v1.1 feed-forward with v1.0's tied, scaled output (logits of unit scale at initialisation)
_register("t5_tiny", "T5 tiny (gated GELU, tied scaled output, 2/2 layers, 64 wide, vocabulary 512): tests, examples",
          vocab_size=512, hidden_size=64, num_heads=4, head_dim=16, mlp_dim=128, num_layers=2,
          relative_attention_num_buckets=16, relative_attention_max_distance=64, input_shape=(64,), target_length=32,
          activation="gelu_tanh", gated_mlp=True, dropout_rate=0.0,
          attention_dropout_rate=0.0)
