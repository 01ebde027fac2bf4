"""Whisper (Radford et al. 2022): a log-mel speech encoder and a causal text decoder with cross-attention.

``inputs [B, T, M]`` log-mel frames (``zoo.layers.audio.whisper_log_mel``; frames first, the
transpose of Hugging Face's ``input_features [B, M, T]``) and ``decoder_input_ids [B, L]`` ->
``[B, L, V]`` next-token logits.  The encoder is two GELU convolutions (the second with
stride 2: ``T / 2`` positions), learned positions and pre-norm blocks; the decoder is
pre-norm blocks of causal self-attention, cross-attention over the encoder output and a
GELU MLP; the output projection is tied to the token embedding.  As in Hugging Face, key
projections have no bias and queries are scaled by ``head_dim ** -0.5``.

Without ``decoder_input_ids`` the decoder reads the start token followed by
``target_length - 1`` pad tokens (a shape probe: registry tests).  :func:`greedy_decode`
transcribes.

Variants::

    name           enc/dec layers  width  heads  mels  frames  vocab   params
    whisper_tiny        4 / 4        384      6    80   3,000  51,865  37,760,640 (openai/whisper-tiny)
    whisper_micro       1 / 1         32      2    16      64      64  tests
    (FSDD_OVERRIDES)    2 / 2         96      4    40     100      29  FSDD words as characters, 421,536
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from zoo import registry
from zoo.layers import Dense, Dropout, Embed, LayerNorm, axes, check_input, check_positive_ints, normalize_config
from zoo.layers.checks import check_common_fields


@dataclasses.dataclass(frozen=True, kw_only=True)
class WhisperConfig:
    """Config of :class:`Whisper` (defaults: openai/whisper-tiny).

    Attributes:
      variant: registry name, for messages.
      vocab_size, hidden_size, num_heads, mlp_dim: sizes (encoder and decoder alike).
      encoder_layers, decoder_layers: blocks.  num_layers: unused alias kept None.
      num_mel_bins: M.  max_source_positions: encoder positions (input frames = 2x).
      max_target_positions: decoder positions.  target_length: L of training batches (<= max_target_positions).
      decoder_start_token_id, pad_token_id, eos_token_id: special tokens.
      dropout_rate, attention_dropout_rate: as Hugging Face's ``dropout`` / ``attention_dropout``.
    """

    variant: str = "whisper_tiny"
    vocab_size: int = 51865
    hidden_size: int = 384
    num_heads: int = 6
    mlp_dim: int = 1536
    encoder_layers: int = 4
    decoder_layers: int = 4
    num_mel_bins: int = 80
    max_source_positions: int = 1500
    max_target_positions: int = 448
    target_length: int = 448
    input_shape: tuple[int, ...] = (3000, 80)
    decoder_start_token_id: int = 50257
    pad_token_id: int = 50257
    eos_token_id: int = 50257
    dropout_rate: float = 0.0
    attention_dropout_rate: float = 0.0
    layer_norm_eps: float = 1e-5
    task: str = "transcription"
    layout: str = "sequence"
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        normalize_config(self)
        name = type(self).__name__
        check_common_fields(self)
        check_positive_ints(self, "encoder_layers", "decoder_layers", "num_mel_bins", "max_source_positions",
                            "max_target_positions", "target_length", "vocab_size")
        if tuple(self.input_shape) != (2 * self.max_source_positions, self.num_mel_bins):
            raise ValueError(f"{name}.input_shape must be (2 * max_source_positions, num_mel_bins) = "
                             f"({2 * self.max_source_positions}, {self.num_mel_bins}), got {self.input_shape!r}")
        if self.target_length > self.max_target_positions:
            raise ValueError(f"{name}.target_length {self.target_length} exceeds max_target_positions "
                             f"{self.max_target_positions}")
        for field in ("decoder_start_token_id", "pad_token_id", "eos_token_id"):
            if not 0 <= getattr(self, field) < self.vocab_size:
                raise ValueError(f"{name}.{field} must be in [0, vocab_size={self.vocab_size}), got "
                                 f"{getattr(self, field)!r}")
        if self.task != "transcription":
            raise ValueError(f"{name}.task must be 'transcription', got {self.task!r}")
        if self.layout != "sequence":
            raise ValueError(f"{name}.layout must be 'sequence', got {self.layout!r}")


class WhisperAttention(nn.Module):
    """Multi-head attention as Whisper has it: ``q``/``v``/``out`` with bias, ``k`` without.

    ``x [B, T, D]`` (queries) and ``kv [B, S, D]`` (None: self-attention) -> ``[B, T, D]``.
    """

    num_heads: int
    causal: bool = False
    dropout_rate: float = 0.0
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, kv=None, *, train: bool = False):
        b, t, d = x.shape
        kv = x if kv is None else kv
        h = d // self.num_heads
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        q = Dense(d, name="q", **kw)(x).reshape(b, t, self.num_heads, h) * (h ** -0.5)  # [B, T, N, H]
        k = Dense(d, use_bias=False, name="k", **kw)(kv).reshape(b, kv.shape[1], self.num_heads, h)
        v = Dense(d, name="v", **kw)(kv).reshape(b, kv.shape[1], self.num_heads, h)
        scores = jnp.einsum("btnh,bsnh->bnts", q, k).astype(jnp.float32)  # [B, N, T, S]
        if self.causal:
            allowed = jnp.tril(jnp.ones((t, kv.shape[1]), bool))
            scores = jnp.where(allowed, scores, jnp.finfo(jnp.float32).min)
        weights = jax.nn.softmax(scores, -1).astype(self.dtype)
        weights = Dropout(self.dropout_rate, deterministic=not train)(weights)
        out = jnp.einsum("bnts,bsnh->btnh", weights, v).reshape(b, t, d)
        return Dense(d, logical_axes=(axes.MLP, axes.EMBED), name="out", **kw)(out)


class _MLP(nn.Module):
    mlp_dim: int
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        h = nn.gelu(Dense(self.mlp_dim, name="fc1", **kw)(x), approximate=False)
        return Dense(x.shape[-1], logical_axes=(axes.MLP, axes.EMBED), name="fc2", **kw)(h)


class WhisperBlock(nn.Module):
    """Pre-norm block: self-attention (causal in the decoder), cross-attention (decoder only), MLP."""

    config: WhisperConfig
    decoder: bool = False

    @nn.compact
    def __call__(self, x, encoded=None, *, train: bool = False):
        cfg = self.config
        kw = dict(dtype=cfg.dtype, param_dtype=cfg.param_dtype)
        drop = Dropout(cfg.dropout_rate, deterministic=not train)
        x = x + drop(WhisperAttention(cfg.num_heads, causal=self.decoder, dropout_rate=cfg.attention_dropout_rate,
                                      name="self_attn", **kw)(
            LayerNorm(cfg.layer_norm_eps, name="self_attn_norm", **kw)(x), train=train))
        if self.decoder:
            x = x + drop(WhisperAttention(cfg.num_heads, dropout_rate=cfg.attention_dropout_rate,
                                          name="cross_attn", **kw)(
                LayerNorm(cfg.layer_norm_eps, name="cross_attn_norm", **kw)(x), encoded, train=train))
        return x + drop(_MLP(cfg.mlp_dim, name="mlp", **kw)(LayerNorm(cfg.layer_norm_eps, name="mlp_norm", **kw)(x)))


class Whisper(nn.Module):
    """``inputs [B, T, M]`` log-mels, ``decoder_input_ids [B, L]`` -> ``[B, L, V]`` logits."""

    config: WhisperConfig

    def setup(self):
        cfg = self.config
        kw = dict(dtype=cfg.dtype, param_dtype=cfg.param_dtype)
        conv_init = axes.with_logical_partitioning(nn.initializers.lecun_normal(),
                                                   (axes.CONV_WINDOW, axes.CONV_IN, axes.CONV_OUT))
        self.conv1 = nn.Conv(cfg.hidden_size, (3,), padding=((1, 1),), kernel_init=conv_init, **kw)
        self.conv2 = nn.Conv(cfg.hidden_size, (3,), strides=(2,), padding=((1, 1),), kernel_init=conv_init, **kw)
        self.encoder_positions = Embed(cfg.max_source_positions, cfg.hidden_size, (axes.POSITIONS, axes.EMBED), **kw)
        self.encoder_blocks = [WhisperBlock(cfg, name=f"encoder_{i}") for i in range(cfg.encoder_layers)]
        self.encoder_norm = LayerNorm(cfg.layer_norm_eps, **kw)
        self.embed_tokens = Embed(cfg.vocab_size, cfg.hidden_size, (axes.VOCAB, axes.EMBED), **kw)
        self.decoder_positions = Embed(cfg.max_target_positions, cfg.hidden_size, (axes.POSITIONS, axes.EMBED), **kw)
        self.decoder_blocks = [WhisperBlock(cfg, decoder=True, name=f"decoder_{i}") for i in range(cfg.decoder_layers)]
        self.decoder_norm = LayerNorm(cfg.layer_norm_eps, **kw)
        self.dropout = Dropout(cfg.dropout_rate)

    def encode(self, x, *, train: bool = False):
        """``[B, T, M]`` log-mels -> ``[B, T / 2, D]`` encoder states."""
        cfg = self.config
        check_input(x, cfg.input_shape, model=cfg.variant, dims="[B, T, M]")
        h = nn.gelu(self.conv1(x.astype(cfg.dtype)), approximate=False)
        h = nn.gelu(self.conv2(h), approximate=False)  # [B, T / 2, D]
        h = h + self.encoder_positions.embedding[None, :h.shape[1]].astype(cfg.dtype)
        h = self.dropout(h, deterministic=not train)
        for block in self.encoder_blocks:
            h = block(h, train=train)
        return self.encoder_norm(h)

    def decode(self, ids, encoded, *, train: bool = False):
        """``ids [B, L]``, ``encoded [B, S, D]`` -> ``[B, L, V]`` logits."""
        cfg = self.config
        if ids.ndim != 2 or not jnp.issubdtype(ids.dtype, jnp.integer) or ids.shape[1] > cfg.max_target_positions:
            raise ValueError(f"{cfg.variant}: decoder_input_ids must be int [B, L] with L <= max_target_positions "
                             f"({cfg.max_target_positions}), got {ids.dtype} {tuple(ids.shape)}")
        h = self.embed_tokens(ids) + self.decoder_positions.embedding[None, :ids.shape[1]].astype(cfg.dtype)
        h = self.dropout(h, deterministic=not train)
        for block in self.decoder_blocks:
            h = block(h, encoded, train=train)
        h = self.decoder_norm(h)
        self.sow("intermediates", "pre_logits", h)
        return self.embed_tokens.attend(h)  # [B, L, V], tied to the token embedding

    def __call__(self, x, *, decoder_input_ids=None, train: bool = False):
        cfg = self.config
        encoded = self.encode(x, train=train)
        if decoder_input_ids is None:
            decoder_input_ids = jnp.full((x.shape[0], cfg.target_length), cfg.pad_token_id, jnp.int32)
            decoder_input_ids = decoder_input_ids.at[:, 0].set(cfg.decoder_start_token_id)
        return self.decode(decoder_input_ids, encoded, train=train)

    @staticmethod
    def head_linear(params) -> tuple[jax.Array, jax.Array]:
        """``(embed_tokensᵀ [D, V], zeros [V])``: the tied output map from ``pre_logits`` to logits."""
        table = params["embed_tokens"]["embedding"]
        return table.T, jnp.zeros((table.shape[0],), table.dtype)


@functools.partial(jax.jit, static_argnames=("model", "max_length"))
def _greedy(model, params, x, prompt, *, max_length):
    cfg = model.config
    encoded = model.apply({"params": params}, x, method=Whisper.encode)
    b, start = prompt.shape
    ids = jnp.full((b, max_length), cfg.pad_token_id, jnp.int32).at[:, :start].set(prompt)
    done = jnp.zeros((b,), bool)

    def step(i, carry):
        ids, done = carry
        logits = model.apply({"params": params}, ids, encoded, method=Whisper.decode)  # [B, L, V]
        nxt = jnp.argmax(logits[:, i - 1], -1).astype(jnp.int32)
        nxt = jnp.where(done, cfg.pad_token_id, nxt)
        return ids.at[:, i].set(nxt), done | (nxt == cfg.eos_token_id)

    ids, _ = jax.lax.fori_loop(start, max_length, step, (ids, done))
    return ids


def greedy_decode(model: Whisper, variables: dict, x, *, max_length: int, prompt=None):
    """Greedy transcription: ``[B, T, M]`` log-mels -> ``[B, max_length]`` ids (prompt first, pad after EOS).

    Args:
      model: a :class:`Whisper`.  variables: ``{"params": ...}``.
      x: ``[B, T, M]`` log-mel frames.
      max_length: total length of the returned ids, prompt included (``<= max_target_positions``).
      prompt: ``[B, P]`` int ids the decoder starts from (default: the start token).

    Each step re-runs the decoder over the whole fixed-length buffer (causal attention makes
    the later pad positions irrelevant): no key/value cache, fine for short transcripts.
    """
    cfg = model.config
    x = jnp.asarray(x)
    prompt = jnp.full((x.shape[0], 1), cfg.decoder_start_token_id, jnp.int32) if prompt is None else jnp.asarray(
        prompt, jnp.int32)
    if prompt.ndim != 2 or prompt.shape[0] != x.shape[0]:
        raise ValueError(f"prompt must be int ids [B={x.shape[0]}, P], got shape {tuple(prompt.shape)}")
    if not prompt.shape[1] < max_length <= cfg.max_target_positions:
        raise ValueError(f"max_length must be in ({prompt.shape[1]}, max_target_positions="
                         f"{cfg.max_target_positions}], got {max_length}")
    return _greedy(model, variables["params"], x, prompt, max_length=max_length)


registry.register_model(
    "whisper_tiny", module=Whisper, config=WhisperConfig(),
    description="Whisper tiny (openai/whisper-tiny, 39M): log-mel encoder + text decoder, 4/4 layers, 384 wide",
)
registry.register_model(
    "whisper_micro", module=Whisper,
    config=WhisperConfig(variant="whisper_micro", vocab_size=64, hidden_size=32, num_heads=2, mlp_dim=64,
                         encoder_layers=1, decoder_layers=1, num_mel_bins=16, max_source_positions=32,
                         max_target_positions=16, target_length=8, input_shape=(64, 16), decoder_start_token_id=1,
                         pad_token_id=0, eos_token_id=2),
    description="Whisper, micro: tests",
)
# The FSDD transcriber (examples/speech_to_text.py): whisper_micro with these overrides, a config rather
# than a registered name so that the registry-wide tests (which run every small model) stay cheap.
FSDD_OVERRIDES = dict(variant="whisper_fsdd", vocab_size=29, hidden_size=96, num_heads=4, mlp_dim=192,
                      encoder_layers=2, decoder_layers=2, num_mel_bins=40, max_source_positions=50,
                      max_target_positions=8, target_length=8, input_shape=(100, 40), decoder_start_token_id=1,
                      pad_token_id=0, eos_token_id=2, dropout_rate=0.1)
